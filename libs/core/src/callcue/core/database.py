"""PostgreSQL access: a connection pool and versioned, per-component migrations."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

log = structlog.get_logger("callcue.database")

_MIGRATION_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# One fixed advisory lock: replicas starting together apply migrations one at a time.
_MIGRATION_LOCK = 0x63616C6C  # "call"


def describe(url: str) -> str:
    """The URL without its password, for logs."""
    parts = conninfo_to_dict(url)
    parts.pop("password", None)
    return " ".join(f"{key}={value}" for key, value in sorted(parts.items()))


WAIT_SECONDS = 5.0


async def open_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True},
        # A connection the server dropped (a restart, a failover) is replaced when it is
        # taken, instead of failing the request that takes it.
        check=AsyncConnectionPool.check_connection,
        # While the server is away a request waits this long for a connection, then fails
        # (UNAVAILABLE) rather than holding its caller for the default 30 s.
        timeout=WAIT_SECONDS,
        # The pool retries a lost connection with a doubling delay; left alone the delay
        # reaches minutes, so a server back after a short outage would sit unused. Giving
        # up early lets the next request start a fresh attempt at once.
        reconnect_timeout=WAIT_SECONDS,
    )
    await pool.open(wait=True, timeout=30)
    log.info("database pool open", database=describe(url), max_size=max_size)
    return pool


def migration_files(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in sorted(folder.iterdir()):
        match = _MIGRATION_FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    versions = [version for version, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations in {folder} must be numbered 0001, 0002, ... without gaps")
    return found


async def migrate(url: str, component: str, folder: Path) -> list[int]:
    """Applies the component's pending migrations, each in its own transaction.

    Returns the versions applied. Replicas starting together take turns on an advisory
    lock held for the whole run, creating the bookkeeping table included.
    """
    applied: list[int] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       component text NOT NULL,
                       version integer NOT NULL,
                       name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now(),
                       PRIMARY KEY (component, version))"""
            )
            cursor = await conn.execute(
                "SELECT version FROM schema_migrations WHERE component = %s", (component,)
            )
            done = {row[0] for row in await cursor.fetchall()}
            for version, path in migration_files(folder):
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute(
                        "INSERT INTO schema_migrations (component, version, name) "
                        "VALUES (%s, %s, %s)",
                        (component, version, path.name),
                    )
                applied.append(version)
                log.info("migration applied", component=component, migration=path.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied
