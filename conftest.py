"""Infrastructure every test suite shares: a real PostgreSQL database per test run."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcue.cli.postgres import (
    can_connect,
    create_database,
    drop_database,
    start_embedded_postgres,
)

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
