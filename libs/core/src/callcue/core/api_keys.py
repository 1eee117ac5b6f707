"""Tenants and their API keys, kept in PostgreSQL with only a hash of each key.

A key reads ``cc_<key id>_<secret>``: the key id is public (it names the key in
listings, logs and revocations), the secret is 256 random bits shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from callcue.core import scopes

MIGRATIONS = Path(__file__).parent / "migrations"
COMPONENT = "auth"
DEFAULT_TENANT = "default"

_TENANT_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_KEY = re.compile(r"cc_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    # None: the deployment's default limit applies.
    max_concurrent_calls: int | None = None


@dataclass(frozen=True)
class Grant:
    """What a live key proves: its tenant, and what it may do there."""

    tenant: Tenant
    scopes: frozenset[str]


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    tenant_id: str
    display_name: str
    scopes: tuple[str, ...]
    create_time: datetime
    revoke_time: datetime | None


class InvalidTenantId(ValueError):
    """A tenant id that does not follow the naming rule, with the rule."""


def check_tenant_id(tenant_id: str) -> str:
    if not _TENANT_ID.fullmatch(tenant_id):
        raise InvalidTenantId(
            f"{tenant_id!r} is not a tenant id: 1 to 63 lowercase letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )
    return tenant_id


def key_id_of(key: str) -> str | None:
    """The public id of a well-formed key; None for anything else."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeyStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create_key(
        self,
        tenant_id: str,
        display_name: str = "",
        key_scopes: Iterable[str] = scopes.DEFAULT,
    ) -> tuple[KeyInfo, str]:
        """A new key for the tenant (created if new) with these scopes; the key itself is
        only returned here."""
        check_tenant_id(tenant_id)
        granted = list(scopes.checked(key_scopes))
        key_id = secrets.token_hex(6)
        key = f"cc_{key_id}_{secrets.token_urlsafe(32)}"
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO tenants (tenant_id) VALUES (%s) ON CONFLICT DO NOTHING", (tenant_id,)
            )
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                "INSERT INTO api_keys (key_id, tenant_id, key_hash, display_name, scopes) "
                "VALUES (%s, %s, %s, %s, %s) "
                f"RETURNING {_INFO}",
                (key_id, tenant_id, _hash(key), display_name, granted),
            )
            row = await cursor.fetchone()
        assert row is not None
        return _info(row), key

    async def list_keys(self, tenant_id: str | None = None) -> list[KeyInfo]:
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                f"SELECT {_INFO} FROM api_keys "
                "WHERE %(tenant)s::text IS NULL OR tenant_id = %(tenant)s "
                "ORDER BY tenant_id, create_time",
                {"tenant": tenant_id},
            )
            return [_info(row) for row in await cursor.fetchall()]

    async def revoke(self, key_id: str) -> bool:
        """True if the key existed and was live."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE api_keys SET revoke_time = now() WHERE key_id = %s AND revoke_time IS NULL",
                (key_id,),
            )
            return cursor.rowcount == 1

    async def set_call_limit(self, tenant_id: str, max_concurrent_calls: int | None) -> None:
        check_tenant_id(tenant_id)
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO tenants (tenant_id, max_concurrent_calls) VALUES (%s, %s) "
                "ON CONFLICT (tenant_id) DO UPDATE "
                "SET max_concurrent_calls = excluded.max_concurrent_calls",
                (tenant_id, max_concurrent_calls),
            )

    async def grant_of(self, key: str) -> Grant | None:
        """What a live key may do, and where; None for an unknown, revoked or malformed key."""
        key_id = key_id_of(key)
        if key_id is None:
            return None
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT k.key_hash, k.tenant_id, t.max_concurrent_calls, k.scopes "
                "FROM api_keys k JOIN tenants t USING (tenant_id) "
                "WHERE k.key_id = %s AND k.revoke_time IS NULL",
                (key_id,),
            )
            row = await cursor.fetchone()
        if row is None or not hmac.compare_digest(bytes(row[0]), _hash(key)):
            return None
        return Grant(Tenant(row[1], row[2]), frozenset(row[3]))


_INFO = "key_id, tenant_id, display_name, scopes, create_time, revoke_time"


def _info(row: dict[str, Any]) -> KeyInfo:
    return KeyInfo(**{**row, "scopes": tuple(row["scopes"])})
