"""The sessions one gateway replica is running: their leases, their last writes, and how
they end (the outcome every live call and recording reports the same way)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
import prometheus_client
import psycopg
import structlog

from callcue.call.v1 import call_pb2
from callcue.gateway.call_session import Downstream
from callcue.gateway.redaction_policy import PolicyStore
from callcue.gateway.session_store import SessionStore
from callcue.gateway.session_writer import PATIENCE_SECONDS
from callcue.gateway.settings import Settings

log = structlog.get_logger("callcue.gateway")

CALLS = prometheus_client.Counter(
    "callcue_calls_total",
    "Calls and recordings finished, by source and final state.",
    ["source", "state"],
)


@dataclass(frozen=True)
class Gateway:
    """What the gateway's live calls and recordings work with."""

    downstream: Downstream
    store: SessionStore
    settings: Settings
    sessions: RunningSessions
    policies: PolicyStore


class RunningSessions:
    def __init__(self, store: SessionStore) -> None:
        self._store = store
        self._running: set[str] = set()  # sessions this replica holds leases on
        self._writing: set[asyncio.Task[None]] = set()  # sessions not yet all stored
        self._uploads: set[asyncio.Task[None]] = set()  # recordings being processed

    def add(self, session_id: str) -> None:
        self._running.add(session_id)

    def discard(self, session_id: str) -> None:
        self._running.discard(session_id)

    def process(self, upload: asyncio.Task[None]) -> None:
        """A recording processed after its RPC returned: drained before the replica stops."""
        self._uploads.add(upload)
        upload.add_done_callback(self._uploads.discard)

    async def keep_leases(self) -> None:
        """Renews the leases of this replica's sessions, and fails sessions whose replica
        died (any replica may: the update is idempotent)."""
        while True:
            await asyncio.sleep(self._store.renew_seconds)
            try:
                if self._running:
                    await self._store.renew(list(self._running))
                if abandoned := await self._store.fail_abandoned():
                    log.warning("failed sessions abandoned by a stopped gateway", count=abandoned)
            except psycopg.Error as error:
                log.warning("session leases not renewed", error=str(error))

    async def keep_writing(self, writing: asyncio.Task[None]) -> None:
        """Waits a little for a session's last writes; if the database is away they go on
        after the RPC, until it is back or the replica stops."""
        self._writing.add(writing)
        writing.add_done_callback(self._writing.discard)
        await asyncio.wait([writing], timeout=PATIENCE_SECONDS)

    async def drain(self) -> None:
        """Lets uploads being processed finish and sessions be stored (or be cancelled on a
        second signal)."""
        if self._uploads:
            log.info("waiting for recordings in progress", count=len(self._uploads))
            await asyncio.gather(*self._uploads, return_exceptions=True)
        if self._writing:
            log.info("waiting for sessions to be stored", count=len(self._writing))
            await asyncio.gather(*self._writing, return_exceptions=True)


def error_text(state: call_pb2.CallState.ValueType, message: str) -> str:
    return message if state == call_pb2.CALL_STATE_FAILED else ""


def downstream_failure(service: str, error: grpc.aio.AioRpcError) -> str:
    return f"{service} failed: {error.code().name}: {error.details()}"
