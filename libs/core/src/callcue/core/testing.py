"""The test infrastructure every suite shares, as a pytest plugin (loaded through the
``pytest11`` entry point of callcue-core, so each folder's tests run on their own): a real
PostgreSQL database per test run, two tenants with API keys in it, and, for the suites that
need them, all four services in this process on loopback.

Not for production code: it imports pytest, and the stack imports every service.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from callcue.core import api_keys, credentials, database, scopes, service_tokens
from callcue.core.api_keys import Tenant
from callcue.core.auth import ApiKeyAuthenticator, Authenticator, Caller, CallerAuthenticator
from callcue.core.channel import open_channel
from callcue.core.postgres import (
    can_connect,
    create_database,
    drop_database,
    start_embedded_postgres,
)
from callcue.core.service_tokens import ServiceSigner, ServiceVerifier, public_key
from callcue.core.settings import Environment
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.detector.v1 import detector_service_pb2_grpc
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier.v1 import notifier_service_pb2_grpc
from callcue.transcriber.v1 import transcriber_service_pb2_grpc

if TYPE_CHECKING:
    from callcue.gateway.call_session import Downstream


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's PostgreSQL (CALLCUE_TEST_POSTGRES_URL, or 127.0.0.1:5432), or an
    embedded one when none answers."""
    url = os.environ.get(
        "CALLCUE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    if asyncio.run(can_connect(url)):
        yield url
        return
    embedded_url, server = start_embedded_postgres(tmp_path_factory.mktemp("pg") / "data")
    yield embedded_url
    server.cleanup()


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for this test run, dropped afterwards."""
    name = f"callcue_test_{uuid.uuid4().hex[:12]}"
    url = asyncio.run(create_database(postgres_admin_url, name))
    yield url
    asyncio.run(drop_database(postgres_admin_url, name))


@dataclass(frozen=True)
class TenantKeys:
    """A live API key of each of two tenants, and a revoked one of the first."""

    acme: str
    globex: str
    revoked: str


@pytest.fixture(scope="session")
async def key_store(database_url: str) -> AsyncIterator[api_keys.ApiKeyStore]:
    await database.migrate(database_url, api_keys.COMPONENT, api_keys.MIGRATIONS)
    pool = await database.open_pool(database_url, max_size=2)
    yield api_keys.ApiKeyStore(pool)
    await pool.close()


@pytest.fixture(scope="session")
async def tenant_keys(key_store: api_keys.ApiKeyStore) -> TenantKeys:
    _, acme = await key_store.create_key("acme", "tests", [scopes.ADMIN])
    _, globex = await key_store.create_key("globex", "tests", [scopes.ADMIN])
    revoked_info, revoked = await key_store.create_key("acme", "revoked in tests", [scopes.ADMIN])
    await key_store.revoke(revoked_info.key_id)
    return TenantKeys(acme, globex, revoked)


@pytest.fixture(scope="session")
async def authenticator(key_store: api_keys.ApiKeyStore) -> ApiKeyAuthenticator:
    """Tenant keys only: the door of a public service."""
    return ApiKeyAuthenticator(key_store)


@dataclass(frozen=True)
class ServiceTrust:
    """A gateway key pair made for the test run, as the dev stack and deployments have one:
    the gateway signs with it, the internal services trust its public half."""

    directory: Path
    signer: ServiceSigner

    def doors(self, audience: str, keys: Authenticator | None) -> CallerAuthenticator:
        """What ``audience`` opens: the gateway's credentials, and tenant keys if ``keys``."""
        trusted = {"gateway": public_key((self.directory / "gateway.pub").read_bytes(), "test")}
        return CallerAuthenticator(
            keys, ServiceVerifier(audience, trusted), service_tokens.SERVICE_CREDENTIAL
        )

    def environment(self) -> dict[str, str]:
        """The settings of a service that signs as the gateway and trusts the gateway."""
        return {
            "CALLCUE_SERVICE_KEY_FILE": str(self.directory / "gateway.key"),
            "CALLCUE_TRUSTED_SERVICES_DIR": str(self.directory),
        }

    def as_gateway(self, tenant_id: str, audience: str) -> credentials.MetadataSource:
        """The metadata the gateway sends to ``audience`` when it serves a caller of
        ``tenant_id``: for tests that play the gateway."""
        caller = Caller(Tenant(tenant_id), "test", frozenset({scopes.ADMIN}))
        return lambda: self.signer.metadata(caller, audience)


class NotifierClient:
    """Both sides of a notifier in one object, for tests: ``Publish`` as the gateway calls
    it (on the channel given first), ``Subscribe`` and ``SubscribeAll`` as a client does."""

    def __init__(self, publishing: grpc.aio.Channel, subscribing: grpc.aio.Channel) -> None:
        publisher = notifier_service_pb2_grpc.PublisherServiceStub(publishing)
        subscriber = notifier_service_pb2_grpc.SubscriberServiceStub(subscribing)
        self.Publish = publisher.Publish
        self.Subscribe = subscriber.Subscribe
        self.SubscribeAll = subscriber.SubscribeAll

    @classmethod
    @contextlib.asynccontextmanager
    async def of_tenant(
        cls, address: str, tenant_id: str, key: str, trust: ServiceTrust
    ) -> AsyncIterator[NotifierClient]:
        """Publishing with the gateway's credential for the tenant, subscribing with its key."""
        async with (
            open_channel(address, credentials=trust.as_gateway(tenant_id, "notifier")) as gateway,
            open_channel(address, credentials=credentials.api_key(key)) as client,
        ):
            yield cls(gateway, client)


@pytest.fixture(scope="session")
def service_trust(tmp_path_factory: pytest.TempPathFactory) -> ServiceTrust:
    directory = tmp_path_factory.mktemp("service-keys")
    private, public = service_tokens.new_key_pair()
    (directory / "gateway.key").write_bytes(private)
    (directory / "gateway.pub").write_bytes(public)
    return ServiceTrust(
        directory, ServiceSigner("gateway", service_tokens.private_key(private, "test"))
    )


@dataclass(frozen=True)
class Stack:
    gateway_port: int
    notifier_port: int
    detector_port: int
    transcriber_port: int
    gateway: gateway_service_pb2_grpc.GatewayServiceAsyncStub
    detector: detector_service_pb2_grpc.PlaybookServiceAsyncStub
    notifier: notifier_service_pb2_grpc.SubscriberServiceAsyncStub
    # The tenant the stubs above act for.
    api_key: str
    # The internal services as the gateway calls them when it serves tenant acme, for tests
    # that play the gateway.
    internal: Downstream


@pytest.fixture(scope="session")
async def stack(
    database_url: str,
    authenticator: ApiKeyAuthenticator,
    tenant_keys: TenantKeys,
    service_trust: ServiceTrust,
) -> AsyncIterator[Stack]:
    # Imported here, not at the top: a suite that needs no stack must not need every service.
    from callcue.detector import app as detector_app
    from callcue.detector.keywords import KeywordStore
    from callcue.detector.live import LiveMatchers
    from callcue.detector.playbooks import PlaybookStore
    from callcue.detector.settings import Settings as DetectorSettings
    from callcue.gateway import app as gateway_app
    from callcue.gateway.call_session import Downstream
    from callcue.gateway.redaction_policy import PolicyStore
    from callcue.gateway.session_store import SessionStore
    from callcue.gateway.settings import Settings as GatewaySettings
    from callcue.notifier import app as notifier_app
    from callcue.notifier.event_log import MemoryEventLog
    from callcue.notifier.settings import Settings as NotifierSettings
    from callcue.transcriber import app as transcriber_app
    from callcue.transcriber.settings import Settings as TranscriberSettings

    base = {
        "CALLCUE_HOST": "127.0.0.1",
        "CALLCUE_PORT": "0",
        "DATABASE_URL": database_url,
        **service_trust.environment(),
    }
    env = Environment({**base, "CALLCUE_MAX_CHUNK_BYTES": "65536"})
    await database.migrate(database_url, "detector", detector_app.MIGRATIONS)
    await database.migrate(database_url, "gateway", gateway_app.MIGRATIONS)
    pool = await database.open_pool(database_url, max_size=8)

    notifier = notifier_app.build_server(
        NotifierSettings.from_env(env),
        MemoryEventLog(10_000, 100),
        service_trust.doors("notifier", authenticator),
    )
    keywords = KeywordStore(pool)
    matchers = LiveMatchers(keywords, None)
    detector = detector_app.build_server(
        DetectorSettings.from_env(env),
        keywords,
        PlaybookStore(pool),
        matchers,
        service_trust.doors("detector", authenticator),
    )
    # Playbook edits reach running calls, as in the service.
    listening = asyncio.Event()
    listener = asyncio.create_task(matchers.listen(database_url, listening))
    await listening.wait()
    transcriber_settings = TranscriberSettings.from_env(env)
    engine = transcriber_app.load_engine(transcriber_settings)
    transcriber = transcriber_app.build_server(
        transcriber_settings, engine, service_trust.doors("transcriber", None)
    )
    ports = [await server.start() for server in (notifier, detector, transcriber)]
    downstream, channels = Downstream.connect(
        f"127.0.0.1:{ports[2]}",
        f"127.0.0.1:{ports[1]}",
        f"127.0.0.1:{ports[0]}",
        signer=service_trust.signer,
    )
    gateway, _ = gateway_app.build_server(
        GatewaySettings.from_env(env),
        downstream,
        SessionStore(pool),
        authenticator,
        PolicyStore(pool),
    )
    gateway_port = await gateway.start()
    servers = [notifier, detector, transcriber, gateway]
    for server in servers:
        await server.set_serving()
    # The tests are a client of tenant acme.
    acme = credentials.api_key(tenant_keys.acme)
    clients = [
        open_channel(f"127.0.0.1:{port}", credentials=acme)
        for port in (gateway_port, ports[1], ports[0])
    ]
    internal_channels = [
        open_channel(f"127.0.0.1:{port}", credentials=service_trust.as_gateway("acme", name))
        for name, port in zip(("notifier", "detector", "transcriber"), ports, strict=True)
    ]
    internal = Downstream(
        transcriber=transcriber_service_pb2_grpc.TranscriberServiceStub(internal_channels[2]),
        detector=detector_service_pb2_grpc.DetectionServiceStub(internal_channels[1]),
        notifier=notifier_service_pb2_grpc.PublisherServiceStub(internal_channels[0]),
    )
    clients += internal_channels
    yield Stack(
        gateway_port=gateway_port,
        notifier_port=ports[0],
        detector_port=ports[1],
        transcriber_port=ports[2],
        gateway=gateway_service_pb2_grpc.GatewayServiceStub(clients[0]),
        detector=detector_service_pb2_grpc.PlaybookServiceStub(clients[1]),
        notifier=notifier_service_pb2_grpc.SubscriberServiceStub(clients[2]),
        api_key=tenant_keys.acme,
        internal=internal,
    )
    for channel in clients:
        await channel.close()
    for server in reversed(servers):
        await server.stop(0)
    listener.cancel()
    for channel in channels:
        await channel.close()
    engine.close()
    await pool.close()


@pytest.fixture
async def playbook(stack: Stack) -> str:
    """A new, empty playbook's id."""
    playbook_id = f"test-{uuid.uuid4().hex[:8]}"
    await stack.detector.CreatePlaybook(
        detector_pb.CreatePlaybookRequest(playbook=detector_pb.Playbook(playbook_id=playbook_id))
    )
    return playbook_id
