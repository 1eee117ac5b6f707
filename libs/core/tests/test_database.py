from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from callcue.core.database import describe, migrate, migration_files, open_pool


def write(folder: Path, name: str, sql: str) -> None:
    (folder / name).write_text(sql)


async def test_migrations_apply_once_in_order_even_concurrently(
    database_url: str, tmp_path: Path
) -> None:
    write(tmp_path, "0001_create.sql", "CREATE TABLE migration_probe (n integer)")
    write(tmp_path, "0002_fill.sql", "INSERT INTO migration_probe VALUES (1)")
    results = await asyncio.gather(*(migrate(database_url, "probe", tmp_path) for _ in range(3)))
    assert sorted(results) == [[], [], [1, 2]]
    write(tmp_path, "0003_more.sql", "INSERT INTO migration_probe VALUES (3)")
    assert await migrate(database_url, "probe", tmp_path) == [3]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute("SELECT n FROM migration_probe ORDER BY n")).fetchall()
    assert rows == [(1,), (3,)]


async def test_a_failing_migration_leaves_nothing_behind(database_url: str, tmp_path: Path) -> None:
    write(tmp_path, "0001_bad.sql", "CREATE TABLE half_done (n integer); SELECT no_such_function()")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        await migrate(database_url, "broken", tmp_path)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        exists = await (await conn.execute("SELECT to_regclass('half_done')")).fetchone()
    assert exists == (None,)


def test_gaps_in_numbering_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", "")
    write(tmp_path, "0003_c.sql", "")
    with pytest.raises(ValueError, match="without gaps"):
        migration_files(tmp_path)


def test_urls_are_logged_without_password() -> None:
    text = describe("postgresql://app:s3cret@db.internal:5432/callcue")
    assert "s3cret" not in text and "db.internal" in text


async def test_the_pool_replaces_connections_the_server_dropped(database_url: str) -> None:
    """After PostgreSQL restarts (or kills its backends), the next request gets a working
    connection instead of failing on a dead one."""
    pool = await open_pool(database_url, min_size=2, max_size=2)
    try:
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        for _ in range(3):
            async with pool.connection() as conn:
                row = await (await conn.execute("SELECT 42")).fetchone()
            assert row == (42,)
    finally:
        await pool.close()
