"""Infrastructure every test suite shares: a real PostgreSQL database per test run, and
two tenants with API keys in it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callcue.cli.postgres import (
    can_connect,
    create_database,
    drop_database,
    start_embedded_postgres,
)
from callcue.core import api_keys, database
from callcue.core.auth import ApiKeyAuthenticator

ROOT = Path(__file__).parent


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
