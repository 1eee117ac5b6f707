"""Sessions, their final transcript and detections, in PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from callcue.call.v1 import call_pb2
from callcue.core import errors
from callcue.core.pagination import Keyset
from callcue.gateway.v1 import gateway_service_pb2 as pb


class SessionConfig(Protocol):
    """What CallConfig and RecordingConfig have in common."""

    @property
    def title(self) -> str: ...
    @property
    def language_code(self) -> str: ...
    @property
    def channel_roles(self) -> Sequence[call_pb2.SpeakerRole.ValueType]: ...
    @property
    def playbook_ids(self) -> Sequence[str]: ...
    @property
    def metadata(self) -> Any: ...


_SELECT = """
    SELECT s.*,
        (SELECT count(*) FROM transcript_segments t WHERE t.session_id = s.session_id) AS segments,
        (SELECT count(*) FROM detections d WHERE d.session_id = s.session_id) AS detection_count
    FROM sessions s"""


def _parse_id(session_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(session_id)
    except ValueError:
        raise errors.not_found("session", session_id) from None


def _to_session(row: dict[str, Any]) -> pb.Session:
    session = pb.Session(
        session_id=str(row["session_id"]),
        source=row["source"],
        state=row["state"],
        title=row["title"],
        metadata=row["metadata"],
        channel_roles=row["channel_roles"],
        language_code=row["language_code"],
        playbook_ids=row["playbook_ids"],
        segment_count=row["segments"],
        detection_count=row["detection_count"],
        error_message=row["error_message"],
    )
    session.create_time.FromDatetime(row["create_time"])
    if row["end_time"] is not None:
        session.end_time.FromDatetime(row["end_time"])
    session.audio_duration.FromNanoseconds(round(row["audio_seconds"] * 1e9))
    return session


LEASE_SECONDS = 30.0


# Newest first.
_PAGES = Keyset(
    columns=("s.create_time", "s.session_id"),
    keys=("create_time", "session_id"),
    kinds=(datetime, uuid.UUID),
    descending=True,
    default_size=50,
)


class SessionStore:
    """Every read is scoped to a tenant: another tenant's session does not exist.

    A running session holds a lease, renewed by its gateway every third of it, so it
    outlives a couple of missed renewals but not a dead gateway by long."""

    def __init__(self, pool: AsyncConnectionPool, *, lease_seconds: float = LEASE_SECONDS) -> None:
        self._pool = pool
        self.lease_seconds = lease_seconds
        self.renew_seconds = lease_seconds / 3

    async def create(
        self,
        tenant_id: str,
        source: pb.SessionSource.ValueType,
        config: SessionConfig,
        *,
        max_live_calls: int | None = None,
    ) -> pb.Session:
        """A new ACTIVE session; RESOURCE_EXHAUSTED if it would be one live call more than
        ``max_live_calls`` for the tenant (counted over every gateway replica)."""
        session_id = uuid.uuid4()
        async with self._pool.connection() as conn, conn.transaction():
            if max_live_calls is not None:
                await self._check_live_calls(conn, tenant_id, max_live_calls)
            await conn.execute(
                """INSERT INTO sessions (session_id, tenant_id, source, state, title, metadata,
                       channel_roles, language_code, playbook_ids, lease_until)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,
                           now() + make_interval(secs => %s))""",
                (
                    session_id,
                    tenant_id,
                    source,
                    call_pb2.CALL_STATE_ACTIVE,
                    config.title,
                    Jsonb(dict(config.metadata)),
                    list(config.channel_roles),
                    config.language_code,
                    list(config.playbook_ids),
                    self.lease_seconds,
                ),
            )
        return await self.get(tenant_id, str(session_id))

    async def _check_live_calls(
        self, conn: psycopg.AsyncConnection[Any], tenant_id: str, limit: int
    ) -> None:
        # Serialises call starts per tenant, so two replicas cannot both take the last slot.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('callcue.live-calls:' || %s))", (tenant_id,)
        )
        cursor = await conn.execute(
            "SELECT count(*) FROM sessions WHERE tenant_id = %s AND state = %s AND source = %s "
            "AND lease_until > now()",
            (tenant_id, call_pb2.CALL_STATE_ACTIVE, pb.SESSION_SOURCE_LIVE),
        )
        row = await cursor.fetchone()
        live = row[0] if row else 0
        if live >= limit:
            raise errors.resource_exhausted(
                "concurrent calls",
                f"tenant {tenant_id!r} already has {live} live calls, its limit; "
                "end a call or ask for a higher limit",
            )

    async def renew(self, session_ids: Sequence[str]) -> None:
        """Extends the leases of sessions this gateway is still running."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE sessions SET lease_until = now() + make_interval(secs => %s) "
                "WHERE session_id = ANY(%s) AND state = %s",
                (
                    self.lease_seconds,
                    [_parse_id(s) for s in session_ids],
                    call_pb2.CALL_STATE_ACTIVE,
                ),
            )

    async def fail_abandoned(self) -> int:
        """Fails sessions whose gateway stopped renewing them (it crashed); how many."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE sessions SET state = %s, end_time = lease_until, lease_until = NULL, "
                "error_message = 'the gateway running the session stopped' "
                "WHERE state = %s AND lease_until < now()",
                (call_pb2.CALL_STATE_FAILED, call_pb2.CALL_STATE_ACTIVE),
            )
            return cursor.rowcount

    async def finish(
        self,
        session_id: str,
        state: call_pb2.CallState.ValueType,
        audio_seconds: float,
        error: str = "",
    ) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """UPDATE sessions SET state = %s, end_time = now(), audio_seconds = %s,
                       error_message = %s, lease_until = NULL WHERE session_id = %s""",
                (state, audio_seconds, error, _parse_id(session_id)),
            )

    async def add_segment(self, session_id: str, segment: call_pb2.TranscriptSegment) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO transcript_segments
                       (session_id, segment_id, channel, start_seconds, text, segment)
                   VALUES (%s, %s, %s, %s, %s, %s)
                   ON CONFLICT (session_id, segment_id) DO NOTHING""",
                (
                    _parse_id(session_id),
                    segment.segment_id,
                    segment.channel,
                    segment.start_offset.ToNanoseconds() / 1e9,
                    segment.text,
                    segment.SerializeToString(),
                ),
            )

    async def add_detection(self, session_id: str, detection: call_pb2.Detection) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO detections
                       (session_id, detection_id, keyword_id, start_seconds, detection)
                   VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
                (
                    _parse_id(session_id),
                    uuid.UUID(detection.detection_id),
                    detection.keyword_id,
                    detection.start_offset.ToNanoseconds() / 1e9,
                    detection.SerializeToString(),
                ),
            )

    async def get(self, tenant_id: str, session_id: str) -> pb.Session:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"{_SELECT} WHERE s.session_id = %s AND s.tenant_id = %s",
                (_parse_id(session_id), tenant_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise errors.not_found("session", session_id)
        return _to_session(row)

    async def page(
        self,
        tenant_id: str,
        state: call_pb2.CallState.ValueType,
        page_size: int,
        page_token: str,
    ) -> tuple[list[pb.Session], str]:
        size = _PAGES.size(page_size)
        after, params = _PAGES.after(page_token)
        where: list[str] = ["s.tenant_id = %s", after]
        params = [tenant_id, *params]
        if state != call_pb2.CALL_STATE_UNSPECIFIED:
            where.append("s.state = %s")
            params.append(state)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"{_SELECT} WHERE {' AND '.join(where)} {_PAGES.order_by()}",
                (*params, _PAGES.limit(size)),
            )
            rows, token = _PAGES.page(await cur.fetchall(), size)
        return [_to_session(row) for row in rows], token

    async def transcript(
        self, tenant_id: str, session_id: str
    ) -> tuple[list[call_pb2.TranscriptSegment], list[call_pb2.Detection]]:
        key = _parse_id(session_id)
        await self.get(tenant_id, session_id)  # NOT_FOUND, not an empty answer
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT segment FROM transcript_segments WHERE session_id = %s "
                    "ORDER BY start_seconds, channel",
                    (key,),
                )
            ).fetchall()
            segments = [call_pb2.TranscriptSegment.FromString(row[0]) for row in rows]
            rows = await (
                await conn.execute(
                    "SELECT detection FROM detections WHERE session_id = %s ORDER BY start_seconds",
                    (key,),
                )
            ).fetchall()
            detections = [call_pb2.Detection.FromString(row[0]) for row in rows]
        return segments, detections
