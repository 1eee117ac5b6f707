"""Connectors: one per phone-system integration of a tenant, kept in PostgreSQL."""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from callcue.core.pagination import Keyset
from callcue.telephony.sealing import SecretBox


class Protocol(enum.StrEnum):
    TWILIO = "twilio"
    AUDIOHOOK = "audiohook"
    FREESWITCH = "freeswitch"


# Which channel is the rep, per protocol; the first is the default. Twilio's outbound
# track is what the Twilio number's side says (the agent's leg when the agent dials or
# answers through Twilio); AudioHook's internal channel is the agent.
REP_CHANNELS: dict[Protocol, tuple[str, ...]] = {
    Protocol.TWILIO: ("outbound", "inbound"),
    Protocol.AUDIOHOOK: ("internal", "external"),
    Protocol.FREESWITCH: ("right", "left", "mixed"),
}

MAX_PLAYBOOKS = 20
_PAGES = Keyset(
    columns=("create_time", "connector_id"),
    keys=("create_time", "connector_id"),
    kinds=(datetime, str),
)


class ConnectorError(ValueError):
    """A connector that cannot be made as asked; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Connector:
    connector_id: str
    tenant_id: str
    protocol: Protocol
    display_name: str
    rep_channel: str
    playbook_ids: tuple[str, ...]
    account_id: str
    key_hash: bytes | None
    sealed_secret: bytes | None
    create_time: datetime

    def key_matches(self, key: str) -> bool:
        return self.key_hash is not None and hmac.compare_digest(self.key_hash, key_digest(key))


@dataclass(frozen=True)
class NewCredentials:
    """What the phone system is configured with; shown once, never stored in clear."""

    api_key: str = ""
    client_secret: str = ""


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _new_id() -> str:
    return "tc_" + secrets.token_hex(8)


class ConnectorStore:
    def __init__(self, pool: AsyncConnectionPool[Any], box: SecretBox) -> None:
        self._pool = pool
        self._box = box

    async def create(
        self,
        tenant_id: str,
        protocol: Protocol,
        *,
        display_name: str = "",
        rep_channel: str = "",
        playbook_ids: tuple[str, ...] = (),
        account_id: str = "",
        auth_token: str = "",
    ) -> tuple[Connector, NewCredentials]:
        """A new connector. Twilio connectors take the account's auth token (Twilio signs
        with it); AudioHook and FreeSWITCH connectors get a generated key (and AudioHook a
        client secret) to configure the phone system with."""
        rep_channel = rep_channel or REP_CHANNELS[protocol][0]
        if rep_channel not in REP_CHANNELS[protocol]:
            raise ConnectorError(
                "rep_channel",
                f"the rep channel of a {protocol} connector is one of "
                f"{', '.join(REP_CHANNELS[protocol])}, not {rep_channel!r}",
            )
        if len(playbook_ids) > MAX_PLAYBOOKS:
            raise ConnectorError("playbook_ids", f"at most {MAX_PLAYBOOKS} playbooks")
        texts = [tenant_id, display_name, account_id, *playbook_ids]
        if not tenant_id or any("\x00" in text or len(text) > 200 for text in texts):
            raise ConnectorError(
                "connector", "a tenant id is required; texts are at most 200 characters, no NUL"
            )
        credentials = NewCredentials()
        key_hash: bytes | None = None
        sealed: bytes | None = None
        if protocol is Protocol.TWILIO:
            if not auth_token:
                raise ConnectorError(
                    "twilio_auth_token", "a Twilio connector needs the account's auth token"
                )
            sealed = self._box.seal(auth_token)
        else:
            credentials = NewCredentials(api_key="cck_" + secrets.token_urlsafe(24))
            key_hash = key_digest(credentials.api_key)
            if protocol is Protocol.AUDIOHOOK:
                secret = base64.b64encode(secrets.token_bytes(32)).decode()
                credentials = NewCredentials(credentials.api_key, secret)
                sealed = self._box.seal(secret)
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                """INSERT INTO telephony_connectors (connector_id, tenant_id, protocol,
                       display_name, rep_channel, playbook_ids, account_id, key_hash,
                       sealed_secret)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *""",
                (
                    _new_id(),
                    tenant_id,
                    protocol.value,
                    display_name,
                    rep_channel,
                    list(playbook_ids),
                    account_id,
                    key_hash,
                    sealed,
                ),
            )
            row = await cursor.fetchone()
        assert row is not None
        return _connector(row), credentials

    async def get(self, connector_id: str) -> Connector | None:
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                "SELECT * FROM telephony_connectors WHERE connector_id = %s", (connector_id,)
            )
            row = await cursor.fetchone()
        return None if row is None else _connector(row)

    async def every(self, tenant_id: str | None = None) -> list[Connector]:
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                """SELECT * FROM telephony_connectors
                   WHERE %(tenant)s::text IS NULL OR tenant_id = %(tenant)s
                   ORDER BY tenant_id, create_time""",
                {"tenant": tenant_id},
            )
            rows = await cursor.fetchall()
        return [_connector(row) for row in rows]

    async def page(
        self, tenant_id: str, page_size: int, page_token: str
    ) -> tuple[list[Connector], str]:
        size = _PAGES.size(page_size)
        condition, values = _PAGES.after(page_token)
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                f"SELECT * FROM telephony_connectors WHERE tenant_id = %s AND {condition} "
                + _PAGES.order_by(),
                (tenant_id, *values, _PAGES.limit(size)),
            )
            rows, token = _PAGES.page(await cursor.fetchall(), size)
        return [_connector(row) for row in rows], token

    async def delete(self, connector_id: str) -> bool:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM telephony_connectors WHERE connector_id = %s", (connector_id,)
            )
            return bool(cursor.rowcount == 1)

    def secret(self, connector: Connector) -> str | None:
        return None if connector.sealed_secret is None else self._box.open(connector.sealed_secret)


def _connector(row: dict[str, Any]) -> Connector:
    return Connector(
        connector_id=row["connector_id"],
        tenant_id=row["tenant_id"],
        protocol=Protocol(row["protocol"]),
        display_name=row["display_name"],
        rep_channel=row["rep_channel"],
        playbook_ids=tuple(row["playbook_ids"]),
        account_id=row["account_id"],
        key_hash=None if row["key_hash"] is None else bytes(row["key_hash"]),
        sealed_secret=None if row["sealed_secret"] is None else bytes(row["sealed_secret"]),
        create_time=row["create_time"],
    )
