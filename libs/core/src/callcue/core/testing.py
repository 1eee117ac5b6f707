"""The test infrastructure every suite shares, as a pytest plugin (loaded through the
``pytest11`` entry point of callcue-core, so each folder's tests run on their own): a real
PostgreSQL database per test run, two tenants with API keys in it, and, for the suites that
need them, all four services in this process on loopback.

Not for production code: it imports pytest, and the stack imports every service.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from callcue.core import api_keys, credentials, database
from callcue.core.auth import ApiKeyAuthenticator
from callcue.core.channel import open_channel
from callcue.core.postgres import (
    can_connect,
    create_database,
    drop_database,
    start_embedded_postgres,
)
from callcue.core.settings import Environment
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.detector.v1 import detector_service_pb2_grpc
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier.v1 import notifier_service_pb2_grpc


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
    _, acme = await key_store.create_key("acme", "tests")
    _, globex = await key_store.create_key("globex", "tests")
    revoked_info, revoked = await key_store.create_key("acme", "revoked in tests")
    await key_store.revoke(revoked_info.key_id)
    return TenantKeys(acme, globex, revoked)


@pytest.fixture(scope="session")
async def authenticator(key_store: api_keys.ApiKeyStore) -> ApiKeyAuthenticator:
    return ApiKeyAuthenticator(key_store)


@dataclass(frozen=True)
class Stack:
    gateway_port: int
    notifier_port: int
    detector_port: int
    transcriber_port: int
    gateway: gateway_service_pb2_grpc.GatewayServiceAsyncStub
    detector: detector_service_pb2_grpc.DetectorServiceAsyncStub
    notifier: notifier_service_pb2_grpc.NotifierServiceAsyncStub
    # The tenant the stubs above act for.
    api_key: str


@pytest.fixture(scope="session")
async def stack(
    database_url: str, authenticator: ApiKeyAuthenticator, tenant_keys: TenantKeys
) -> AsyncIterator[Stack]:
    # Imported here, not at the top: a suite that needs no stack must not need every service.
    from callcue.detector import app as detector_app
    from callcue.detector.keywords import KeywordStore
    from callcue.detector.live import LiveMatchers
    from callcue.detector.playbooks import PlaybookStore
    from callcue.detector.settings import Settings as DetectorSettings
    from callcue.gateway import app as gateway_app
    from callcue.gateway.call_session import Downstream
    from callcue.gateway.session_store import SessionStore
    from callcue.gateway.settings import Settings as GatewaySettings
    from callcue.notifier import app as notifier_app
    from callcue.notifier.event_log import MemoryEventLog
    from callcue.notifier.settings import Settings as NotifierSettings
    from callcue.transcriber import app as transcriber_app
    from callcue.transcriber.settings import Settings as TranscriberSettings

    base = {"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "DATABASE_URL": database_url}
    env = Environment({**base, "CALLCUE_MAX_CHUNK_BYTES": "65536"})
    await database.migrate(database_url, "detector", detector_app.MIGRATIONS)
    await database.migrate(database_url, "gateway", gateway_app.MIGRATIONS)
    pool = await database.open_pool(database_url, max_size=8)

    notifier = notifier_app.build_server(
        NotifierSettings.from_env(env), MemoryEventLog(10_000, 100), authenticator
    )
    keywords = KeywordStore(pool)
    matchers = LiveMatchers(keywords, None)
    detector = detector_app.build_server(
        DetectorSettings.from_env(env), keywords, PlaybookStore(pool), matchers, authenticator
    )
    # Playbook edits reach running calls, as in the service.
    listening = asyncio.Event()
    listener = asyncio.create_task(matchers.listen(database_url, listening))
    await listening.wait()
    transcriber_settings = TranscriberSettings.from_env(env)
    engine = transcriber_app.load_engine(transcriber_settings)
    transcriber = transcriber_app.build_server(transcriber_settings, engine, authenticator)
    ports = [await server.start() for server in (notifier, detector, transcriber)]
    downstream, channels = Downstream.connect(
        f"127.0.0.1:{ports[2]}", f"127.0.0.1:{ports[1]}", f"127.0.0.1:{ports[0]}"
    )
    gateway, _ = gateway_app.build_server(
        GatewaySettings.from_env(env), downstream, SessionStore(pool), authenticator
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
    yield Stack(
        gateway_port=gateway_port,
        notifier_port=ports[0],
        detector_port=ports[1],
        transcriber_port=ports[2],
        gateway=gateway_service_pb2_grpc.GatewayServiceStub(clients[0]),
        detector=detector_service_pb2_grpc.DetectorServiceStub(clients[1]),
        notifier=notifier_service_pb2_grpc.NotifierServiceStub(clients[2]),
        api_key=tenant_keys.acme,
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
