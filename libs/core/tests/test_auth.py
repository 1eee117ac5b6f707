"""API keys in PostgreSQL: only hashes stored, revocation, the answer cache, the admin tool."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import grpc
import psycopg
import pytest

from callcue.core import api_keys
from callcue.core.api_keys import ApiKeyStore, Tenant
from callcue.core.auth import ApiKeyAuthenticator
from callcue.core.errors import RpcError


def bearer(key: str) -> list[tuple[str, str | bytes]]:
    return [("authorization", f"Bearer {key}")]


async def test_keys_are_stored_hashed_and_resolve_to_their_tenant(
    key_store: ApiKeyStore, database_url: str
) -> None:
    info, key = await key_store.create_key("initech", "crm sync")
    assert key.startswith(f"cc_{info.key_id}_") and len(key) == 3 + 12 + 1 + 43
    assert await key_store.tenant_of(key) == Tenant("initech", None)
    assert await key_store.tenant_of(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute("SELECT key_hash::text FROM api_keys")).fetchall()
    stored = " ".join(row[0] for row in rows)
    assert key not in stored and key.split("_")[-1] not in stored
    assert hashlib.sha256(key.encode()).hexdigest() in stored

    await key_store.set_call_limit("initech", 3)
    assert await key_store.tenant_of(key) == Tenant("initech", 3)
    assert await key_store.revoke(info.key_id)
    assert not await key_store.revoke(info.key_id)
    assert await key_store.tenant_of(key) is None
    with pytest.raises(api_keys.InvalidTenantId):
        await key_store.create_key("Not A Tenant")


async def test_answers_are_cached_for_a_while_then_checked_again(key_store: ApiKeyStore) -> None:
    now = [0.0]
    authenticator = ApiKeyAuthenticator(key_store, cache_seconds=30, clock=lambda: now[0])
    info, key = await key_store.create_key("umbrella")
    caller = await authenticator.authenticate(bearer(key))
    assert (caller.tenant_id, caller.key_id) == ("umbrella", info.key_id)
    assert caller.credentials == (("authorization", f"Bearer {key}"),)
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

    created = admin("create", "hooli", "--name", "ci")
    assert created.returncode == 0, created.stderr
    key = created.stdout.split()[-1]
    key_id = api_keys.key_id_of(key)
    assert key_id is not None
    listing = admin("list", "--tenant", "hooli")
    assert key_id in listing.stdout and "live" in listing.stdout and key not in listing.stdout
    assert admin("limit", "hooli", "2").returncode == 0
    assert admin("revoke", key_id).returncode == 0
    again = admin("revoke", key_id)
    assert again.returncode == 1 and f"no live key {key_id}" in again.stderr
    bad = admin("create", "Bad Tenant")
    assert bad.returncode == 2 and "is not a tenant id" in bad.stderr
