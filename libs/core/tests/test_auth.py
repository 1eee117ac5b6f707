"""API keys in PostgreSQL: only hashes stored, revocation, the answer cache, the admin tool."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import psycopg
import pytest

from callcue.core import api_keys, database, scopes
from callcue.core.api_keys import ApiKeyStore, Grant, Tenant
from callcue.core.auth import ApiKeyAuthenticator
from callcue.core.errors import RpcError
from callcue.core.postgres import create_database, drop_database


def bearer(key: str) -> list[tuple[str, str | bytes]]:
    return [("authorization", f"Bearer {key}")]


async def test_keys_are_stored_hashed_and_resolve_to_their_tenant(
    key_store: ApiKeyStore, database_url: str
) -> None:
    info, key = await key_store.create_key("initech", "crm sync")
    assert key.startswith(f"cc_{info.key_id}_") and len(key) == 3 + 12 + 1 + 43
    assert info.scopes == scopes.DEFAULT
    assert await key_store.grant_of(key) == Grant(
        Tenant("initech", None), frozenset(scopes.DEFAULT)
    )
    assert await key_store.grant_of(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute("SELECT key_hash::text FROM api_keys")).fetchall()
    stored = " ".join(row[0] for row in rows)
    assert key not in stored and key.split("_")[-1] not in stored
    assert hashlib.sha256(key.encode()).hexdigest() in stored

    await key_store.set_call_limit("initech", 3)
    grant = await key_store.grant_of(key)
    assert grant is not None and grant.tenant == Tenant("initech", 3)
    assert await key_store.revoke(info.key_id)
    assert not await key_store.revoke(info.key_id)
    assert await key_store.grant_of(key) is None
    with pytest.raises(api_keys.InvalidTenantId):
        await key_store.create_key("Not A Tenant")


async def test_a_key_holds_the_scopes_it_was_made_with(key_store: ApiKeyStore) -> None:
    info, key = await key_store.create_key("initech", "reader", ["calls:read", "calls:read"])
    assert info.scopes == ("calls:read",)
    grant = await key_store.grant_of(key)
    assert grant is not None and grant.scopes == {"calls:read"}
    listed = [k for k in await key_store.list_keys("initech") if k.key_id == info.key_id]
    assert listed[0].scopes == ("calls:read",)
    with pytest.raises(scopes.UnknownScope, match="unknown scope 'calls:delete'"):
        await key_store.create_key("initech", "", ["calls:delete"])
    with pytest.raises(scopes.UnknownScope, match="at least one scope"):
        await key_store.create_key("initech", "", [])


async def test_keys_made_before_scopes_keep_doing_everything(
    postgres_admin_url: str, tmp_path: Path
) -> None:
    url = await create_database(postgres_admin_url, f"callcue_test_{uuid.uuid4().hex[:12]}")
    try:
        first = tmp_path / "migrations"
        first.mkdir()
        shutil.copy(api_keys.MIGRATIONS / "0001_api_keys.sql", first)
        await database.migrate(url, api_keys.COMPONENT, first)
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await conn.execute("INSERT INTO tenants (tenant_id) VALUES ('old')")
            await conn.execute(
                "INSERT INTO api_keys (key_id, tenant_id, key_hash) VALUES ('0123456789ab', 'old', "
                "'\\x00')"
            )
        await database.migrate(url, api_keys.COMPONENT, api_keys.MIGRATIONS)
        pool = await database.open_pool(url, max_size=1)
        try:
            [old] = await ApiKeyStore(pool).list_keys("old")
        finally:
            await pool.close()
        assert old.scopes == (scopes.ADMIN,)
        assert all(scopes.allows(old.scopes, scope) for scope in scopes.ALL)
    finally:
        await drop_database(postgres_admin_url, psycopg.conninfo.conninfo_to_dict(url)["dbname"])


async def test_answers_are_cached_for_a_while_then_checked_again(key_store: ApiKeyStore) -> None:
    now = [0.0]
    authenticator = ApiKeyAuthenticator(key_store, cache_seconds=30, clock=lambda: now[0])
    info, key = await key_store.create_key("umbrella")
    caller = await authenticator.authenticate(bearer(key))
    assert (caller.tenant_id, caller.key_id) == ("umbrella", info.key_id)
    assert caller.scopes == set(scopes.DEFAULT) and caller.service == ""
    assert key not in repr(caller)
    await key_store.revoke(info.key_id)
    now[0] = 29.0
    assert (await authenticator.authenticate(bearer(key))).tenant_id == "umbrella"
    now[0] = 31.0
    with pytest.raises(RpcError) as error:
        await authenticator.authenticate(bearer(key))
    assert error.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_the_admin_tool_creates_lists_and_revokes(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}

    def admin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "callcue.core.key_admin", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    created = admin(
        "create", "hooli", "--name", "ci", "--scope", "calls:read", "--scope", "subscribe"
    )
    assert created.returncode == 0, created.stderr
    assert "(calls:read subscribe)" in created.stdout
    key = created.stdout.split()[-1]
    key_id = api_keys.key_id_of(key)
    assert key_id is not None
    listing = admin("ls", "--tenant", "hooli")
    assert key_id in listing.stdout and "live" in listing.stdout and key not in listing.stdout
    assert "calls:read,subscribe" in listing.stdout
    unknown = admin("create", "hooli", "--scope", "everything")
    assert unknown.returncode == 2 and "invalid choice: 'everything'" in unknown.stderr
    assert admin("limit", "hooli", "2").returncode == 0
    assert admin("revoke", key_id).returncode == 0
    again = admin("revoke", key_id)
    assert again.returncode == 1 and f"no live key {key_id}" in again.stderr
    bad = admin("create", "Bad Tenant")
    assert bad.returncode == 2 and "is not a tenant id" in bad.stderr
