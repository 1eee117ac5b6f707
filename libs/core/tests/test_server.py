"""The server bootstrap: health, authentication and errors through the interceptor, shutdown
of a real process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from callcue.core import auth, errors, scopes
from callcue.core.auth import ApiKeyAuthenticator
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.postgres import create_database, drop_database
from callcue.core.server import GrpcServer
from callcue.core.settings import Environment, ServerSettings
from callcue.notifier.v1 import notifier_service_pb2, notifier_service_pb2_grpc

if TYPE_CHECKING:
    from callcue.core.testing import TenantKeys

SERVICE = "test.Echo"
# Any key with calls:read may call the test service.
RULES = {SERVICE: dict.fromkeys(("Fail", "Stream", "Whoami", "Hold"), scopes.CALLS_READ)}


class Echo:
    """A tiny generic service: raises what it is told to, so the interceptor can be tested."""

    async def fail(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        if request == b"invalid":
            raise errors.invalid_argument("payload", "must be valid")
        raise RuntimeError("a bug, with a secret in it: hunter2")

    async def stream(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        yield b"first"
        raise errors.not_found("thing", request.decode())

    async def whoami(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        return auth.tenant_id().encode()


@pytest.fixture
async def server(
    authenticator: ApiKeyAuthenticator, tenant_keys: TenantKeys
) -> AsyncIterator[tuple[GrpcServer, grpc.aio.Channel]]:
    settings = ServerSettings.from_env(
        Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_AUTH": "none"}),
        default_port=0,
    )
    server = GrpcServer(settings, [SERVICE], authenticator, RULES)
    echo = Echo()
    identity = (lambda b: b, lambda b: b)
    handlers = {
        "Fail": grpc.unary_unary_rpc_method_handler(echo.fail, *identity),
        "Stream": grpc.unary_stream_rpc_method_handler(echo.stream, *identity),
        "Whoami": grpc.unary_unary_rpc_method_handler(echo.whoami, *identity),
    }
    server.server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(SERVICE, handlers)]
    )
    port = await server.start()
    credentials = api_key(tenant_keys.acme)
    async with open_channel(f"127.0.0.1:{port}", credentials=credentials) as channel:
        yield server, channel
    await server.stop(0)


async def test_every_rpc_but_health_needs_a_live_key(
    server: tuple[GrpcServer, grpc.aio.Channel], tenant_keys: TenantKeys
) -> None:
    grpc_server, channel = server
    assert await channel.unary_unary(f"/{SERVICE}/Whoami")(b"") == b"acme"
    address = f"127.0.0.1:{grpc_server.port}"
    async with grpc.aio.insecure_channel(address) as bare:
        # Probes and load balancers carry no key.
        assert await health_status(bare) == health_pb2.HealthCheckResponse.NOT_SERVING
        whoami = bare.unary_unary(f"/{SERVICE}/Whoami")
        assert await whoami(b"", metadata=[("authorization", f"Bearer {tenant_keys.globex}")]) == (
            b"globex"
        )
        refused = {
            "": "no API key",
            "Basic dXNlcjpwYXNz": "not a bearer API key",
            "Bearer not-a-key": "malformed",
            f"Bearer {tenant_keys.acme[:-4]}AAAA": "unknown or revoked",
            f"Bearer {tenant_keys.revoked}": "unknown or revoked",
        }
        for value, reason in refused.items():
            metadata = [("authorization", value)] if value else []
            for call in (whoami(b"", metadata=metadata), _drain(bare, metadata)):
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await call
                assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert reason in (error.value.details() or "")
                secret = value.split("_")[-1]
                assert not secret or secret not in (error.value.details() or "")


async def _drain(channel: grpc.aio.Channel, metadata: list[tuple[str, str]]) -> list[bytes]:
    return [m async for m in channel.unary_stream(f"/{SERVICE}/Stream")(b"x", metadata=metadata)]


async def health_status(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=service))).status


async def test_health_follows_readiness(server: tuple[GrpcServer, grpc.aio.Channel]) -> None:
    grpc_server, channel = server
    assert await health_status(channel, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
    await grpc_server.set_serving()
    assert await health_status(channel) == health_pb2.HealthCheckResponse.SERVING
    assert await health_status(channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING


async def test_raised_errors_become_their_status(
    server: tuple[GrpcServer, grpc.aio.Channel],
) -> None:
    _, channel = server
    fail = channel.unary_unary(f"/{SERVICE}/Fail")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await fail(b"invalid")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "payload: must be valid"

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await fail(b"crash")
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in (error.value.details() or "")

    stream = channel.unary_stream(f"/{SERVICE}/Stream")
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for message in stream(b"widget"):
            received.append(message)
    assert received == [b"first"]
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_sigterm_drains_and_exits_cleanly_and_metrics_are_served() -> None:
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "CALLCUE_PORT": str(port),
        "CALLCUE_HOST": "127.0.0.1",
        "CALLCUE_AUTH": "none",
        "CALLCUE_METRICS_PORT": str(metrics_port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callcue.notifier", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for _ in range(100):
                try:
                    if await health_status(channel) == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.1)
            stub = notifier_service_pb2_grpc.SubscriberServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Subscribe(notifier_service_pb2.SubscribeRequest()).read()
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            metrics = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read().decode())
            assert (
                'callcue_rpc_duration_seconds_count{code="INVALID_ARGUMENT",'
                'method="/callcue.notifier.v1.SubscriberService/Subscribe"} 1.0'
            ) in metrics
            assert "callcue_notifier_lag_seconds_bucket" in metrics
            frozen = re.search(r"^callcue_gc_frozen_objects ([0-9.e+]+)$", metrics, re.M)
            assert frozen is not None and float(frozen.group(1)) > 10_000, "startup not frozen"
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 15)
    finally:
        if process.returncode is None:
            process.kill()
    assert code == 0
    assert process.stderr is not None
    log = (await process.stderr.read()).decode()
    assert '"event": "draining"' in log and '"event": "stopped"' in log


def test_bad_setting_stops_the_service_with_a_clear_message() -> None:
    env = {**os.environ, "CALLCUE_PORT": "not-a-port"}
    result = subprocess.run(
        [sys.executable, "-m", "callcue.notifier"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert (
        "callcue-notifier: configuration error: CALLCUE_PORT must be a whole number"
        in result.stderr
    )


def test_missing_database_url_is_named() -> None:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "callcue.detector"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "DATABASE_URL is required" in result.stderr


def test_migrate_applies_the_migrations_and_exits(postgres_admin_url: str) -> None:
    """What the Kubernetes init container runs, on an empty database: with DATABASE_URL
    and nothing else, the gateway's signing key included."""
    name = f"callcue_migrate_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(create_database(postgres_admin_url, name))
    try:
        env = {**os.environ, "DATABASE_URL": url}
        for service in ("gateway", "detector"):
            result = subprocess.run(
                [sys.executable, "-m", f"callcue.{service}", "migrate"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT DISTINCT component FROM schema_migrations").fetchall()
        assert {row[0] for row in rows} == {"auth", "gateway", "detector"}
        wrong = subprocess.run(
            [sys.executable, "-m", "callcue.gateway", "serve-please"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert wrong.returncode == 2 and "usage: callcue-gateway [migrate]" in wrong.stderr
    finally:
        asyncio.run(drop_database(postgres_admin_url, name))


def test_nul_characters_are_refused_with_the_field_named() -> None:
    from callcue.core.text_fields import reject_nul
    from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb

    clean = gateway_pb.CallConfig(title="ok", metadata={"crm": "42"}, playbook_ids=["sales"])
    reject_nul(clean)
    for bad, field in [
        (gateway_pb.CallConfig(title="a\x00b"), "title"),
        (gateway_pb.CallConfig(playbook_ids=["ok", "x\x00"]), "playbook_ids[1]"),
        (gateway_pb.CallConfig(metadata={"crm": "\x00"}), "metadata['crm']"),
        (gateway_pb.CallConfig(metadata={"\x00": "v"}), "metadata['\\x00']"),
    ]:
        with pytest.raises(errors.RpcError) as error:
            reject_nul(bad, "config.")
        assert error.value.message.startswith(f"config.{field}: must not contain NUL")


async def test_a_stream_that_never_sends_its_config_is_closed() -> None:
    from callcue.core.config_first import first_config
    from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb

    async def silent() -> AsyncIterator[gateway_pb.StreamCallRequest]:
        await asyncio.Event().wait()
        yield gateway_pb.StreamCallRequest()

    with pytest.raises(errors.RpcError) as error:
        await first_config(silent(), patience=0.2)
    assert error.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "no config within 0.2 s" in error.value.message


async def test_rpcs_beyond_the_process_limit_are_resource_exhausted(
    authenticator: ApiKeyAuthenticator, tenant_keys: TenantKeys
) -> None:
    settings = ServerSettings.from_env(
        Environment(
            {
                "CALLCUE_HOST": "127.0.0.1",
                "CALLCUE_PORT": "0",
                "CALLCUE_AUTH": "none",
                "CALLCUE_MAX_CONCURRENT_RPCS": "3",
            }
        ),
        default_port=0,
    )
    server = GrpcServer(settings, [SERVICE], authenticator, RULES)
    release = asyncio.Event()

    async def hold(
        request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        yield b"holding"
        await release.wait()

    identity = (lambda b: b, lambda b: b)
    server.server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                SERVICE, {"Hold": grpc.unary_stream_rpc_method_handler(hold, *identity)}
            )
        ]
    )
    port = await server.start()
    try:
        credentials = api_key(tenant_keys.acme)
        async with open_channel(f"127.0.0.1:{port}", credentials=credentials) as channel:
            method = channel.unary_stream(f"/{SERVICE}/Hold")
            held = [method(b"") for _ in range(3)]
            for call in held:
                assert await call.read() == b"holding"
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                # Without the limit this one would be held too: a timeout, not a status.
                await asyncio.wait_for(method(b"").read(), 10)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            release.set()
            for call in held:
                assert await call.code() == grpc.StatusCode.OK
            # Room again once they are done.
            assert [m async for m in method(b"")] == [b"holding"]
    finally:
        await server.stop(0)
