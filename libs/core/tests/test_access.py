"""Who may call what: every RPC of every gRPC service in protos/, called through a real
server and the real interceptor with a key of each scope, a service credential, and both
refused and allowed as the access table says."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from callcue.core import access, scopes
from callcue.core.api_keys import ApiKeyStore
from callcue.core.auth import ApiKeyAuthenticator
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.server import GrpcServer
from callcue.core.settings import Environment, ServerSettings
from callcue.core.testing import ServiceTrust
from callcue.detector.v1 import detector_service_pb2
from callcue.gateway.v1 import gateway_service_pb2
from callcue.notifier.v1 import notifier_service_pb2
from callcue.telephony.v1 import connector_service_pb2
from callcue.transcriber.v1 import transcriber_service_pb2

# Every file of protos/ that defines gRPC services (the console's are Connect, checked by
# its own login and roles).
FILES = (
    gateway_service_pb2,
    detector_service_pb2,
    notifier_service_pb2,
    transcriber_service_pb2,
    connector_service_pb2,
)
SERVICES: list[ServiceDescriptor] = [
    service for module in FILES for service in module.DESCRIPTOR.services_by_name.values()
]
METHODS: list[MethodDescriptor] = [m for service in SERVICES for m in service.methods]


# The access table written out: changing who may call what must change this too.
READ, WRITE = scopes.PLAYBOOKS_READ, scopes.PLAYBOOKS_WRITE
EXPECTED = {
    "gateway.v1.GatewayService/StreamCall": scopes.CALLS_STREAM,
    "gateway.v1.GatewayService/UploadRecording": scopes.CALLS_STREAM,
    "gateway.v1.GatewayService/GetSession": scopes.CALLS_READ,
    "gateway.v1.GatewayService/ListSessions": scopes.CALLS_READ,
    "gateway.v1.GatewayService/GetTranscript": scopes.CALLS_READ,
    "gateway.v1.GatewayService/GetCallSummary": scopes.CALLS_READ,
    "gateway.v1.GatewayService/ExportTranscript": scopes.SESSIONS_EXPORT,
    "gateway.v1.GatewayService/GetRedactionPolicy": scopes.ADMIN,
    "gateway.v1.GatewayService/UpdateRedactionPolicy": scopes.ADMIN,
    "detector.v1.PlaybookService/CreatePlaybook": WRITE,
    "detector.v1.PlaybookService/GetPlaybook": READ,
    "detector.v1.PlaybookService/ListPlaybooks": READ,
    "detector.v1.PlaybookService/UpdatePlaybook": WRITE,
    "detector.v1.PlaybookService/DeletePlaybook": WRITE,
    "detector.v1.PlaybookService/ImportPlaybook": WRITE,
    "detector.v1.PlaybookService/ExportPlaybook": READ,
    "detector.v1.PlaybookService/TestPlaybook": READ,
    "detector.v1.PlaybookService/CreateKeyword": WRITE,
    "detector.v1.PlaybookService/GetKeyword": READ,
    "detector.v1.PlaybookService/ListKeywords": READ,
    "detector.v1.PlaybookService/UpdateKeyword": WRITE,
    "detector.v1.PlaybookService/DeleteKeyword": WRITE,
    "notifier.v1.SubscriberService/Subscribe": scopes.SUBSCRIBE,
    "notifier.v1.SubscriberService/SubscribeAll": scopes.SUBSCRIBE,
    "telephony.v1.ConnectorService/CreateConnector": scopes.ADMIN,
    "telephony.v1.ConnectorService/GetConnector": scopes.ADMIN,
    "telephony.v1.ConnectorService/ListConnectors": scopes.ADMIN,
    "telephony.v1.ConnectorService/DeleteConnector": scopes.ADMIN,
    "detector.v1.DetectionService/Detect": access.INTERNAL,
    "notifier.v1.PublisherService/Publish": access.INTERNAL,
    "transcriber.v1.TranscriberService/StreamingTranscribe": access.INTERNAL,
    "transcriber.v1.TranscriberService/TranscribeFile": access.INTERNAL,
}


def expected(method: MethodDescriptor) -> str:
    return EXPECTED[path(method).removeprefix("/callcue.")]


def path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def test_the_table_is_the_one_written_here() -> None:
    assert {path(m): access.rule_of(access.RULES, path(m)) for m in METHODS} == {
        path(m): expected(m) for m in METHODS
    }


def test_every_rpc_has_a_rule_and_every_rule_an_rpc() -> None:
    assert {path(m) for m in METHODS} == {
        f"/{service}/{name}" for service, methods in access.RULES.items() for name in methods
    }
    assert set(scopes.ALL) >= {
        rule for methods in access.RULES.values() for rule in methods.values()
    } - {access.INTERNAL}


def test_internal_services_are_only_internal() -> None:
    """A service is internal or public as a whole, so the Ingress can route by service."""
    for service, methods in access.RULES.items():
        kinds = {rule == access.INTERNAL for rule in methods.values()}
        assert len(kinds) == 1, service


def _answer(method: MethodDescriptor) -> grpc.RpcMethodHandler[Any, Any]:
    same = (lambda b: b, lambda b: b)

    async def unary(request: Any, context: Any) -> bytes:
        return b""

    async def streaming(request: Any, context: Any) -> AsyncIterator[bytes]:
        yield b""

    if method.client_streaming and method.server_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming, *same)
    if method.client_streaming:
        return grpc.stream_unary_rpc_method_handler(unary, *same)
    if method.server_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming, *same)
    return grpc.unary_unary_rpc_method_handler(unary, *same)


async def call(channel: grpc.aio.Channel, method: MethodDescriptor) -> grpc.StatusCode:
    """Calls the method with an empty message; the status it ends with."""
    target = path(method)
    try:
        if method.client_streaming and method.server_streaming:
            async for _ in channel.stream_stream(target)(iter([b""]), timeout=10):
                pass
        elif method.client_streaming:
            await channel.stream_unary(target)(iter([b""]), timeout=10)
        elif method.server_streaming:
            async for _ in channel.unary_stream(target)(b"", timeout=10):
                pass
        else:
            await channel.unary_unary(target)(b"", timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
async def server(
    authenticator: ApiKeyAuthenticator, service_trust: ServiceTrust
) -> AsyncIterator[int]:
    settings = ServerSettings.from_env(
        Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_AUTH": "none"}), 0
    )
    # One server answering every RPC of every service, behind the doors of a service with
    # public and internal RPCs (as the detector and the notifier are).
    server = GrpcServer(
        settings, [s.full_name for s in SERVICES], service_trust.doors("detector", authenticator)
    )
    for service in SERVICES:
        handlers = {m.name: _answer(m) for m in service.methods}
        server.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(service.full_name, handlers)]
        )
    port = await server.start()
    yield port
    await server.stop(0)


@pytest.fixture(scope="module")
async def keys(key_store: ApiKeyStore) -> dict[str, str]:
    """A key of tenant acme for each single scope."""
    made = {}
    for scope in scopes.ALL:
        _, made[scope] = await key_store.create_key("acme", f"only {scope}", [scope])
    return made


def _cases() -> Iterator[tuple[str, MethodDescriptor]]:
    for scope in scopes.ALL:
        for method in METHODS:
            yield scope, method


@pytest.mark.parametrize(
    ("scope", "method"), list(_cases()), ids=lambda v: getattr(v, "full_name", v)
)
async def test_a_key_calls_exactly_what_its_scope_allows(
    server: int, keys: dict[str, str], scope: str, method: MethodDescriptor
) -> None:
    rule = expected(method)
    allowed = rule != access.INTERNAL and (scope == scopes.ADMIN or scope == rule)
    async with open_channel(f"127.0.0.1:{server}", credentials=api_key(keys[scope])) as channel:
        code = await call(channel, method)
    assert code == (grpc.StatusCode.OK if allowed else grpc.StatusCode.PERMISSION_DENIED)


async def test_a_refusal_names_the_missing_scope(server: int, keys: dict[str, str]) -> None:
    async with open_channel(
        f"127.0.0.1:{server}", credentials=api_key(keys[scopes.CALLS_READ])
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary("/callcue.detector.v1.PlaybookService/DeletePlaybook")(b"")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "lacks the scope 'playbooks:write'" in (refused.value.details() or "")
    status = rpc_status.from_call(refused.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.metadata["scope"]) == ("MISSING_SCOPE", "playbooks:write")


async def test_a_tenant_key_is_refused_on_every_internal_rpc_whatever_its_scopes(
    server: int, keys: dict[str, str]
) -> None:
    internal = [m for m in METHODS if expected(m) == access.INTERNAL]
    assert {m.containing_service.name for m in internal} == {
        "DetectionService",
        "PublisherService",
        "TranscriberService",
    }
    async with open_channel(
        f"127.0.0.1:{server}", credentials=api_key(keys[scopes.ADMIN])
    ) as channel:
        for method in internal:
            try:
                await channel.unary_unary(path(method))(b"")
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.PERMISSION_DENIED
                assert "is internal: only callcue services may call it" in (error.details() or "")
            else:
                raise AssertionError(f"{path(method)} let a tenant key in")


async def test_a_service_credential_opens_internal_rpcs_and_public_ones(
    server: int, service_trust: ServiceTrust
) -> None:
    gateway = service_trust.as_gateway("acme", "detector")
    async with open_channel(f"127.0.0.1:{server}", credentials=gateway) as channel:
        for method in METHODS:
            assert await call(channel, method) == grpc.StatusCode.OK, path(method)
