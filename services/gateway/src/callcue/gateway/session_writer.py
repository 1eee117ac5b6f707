"""Stores what a session produced (final segments, confirmed detections, then how it ended)
in order. While PostgreSQL answers, the call waits for each write, so whatever the caller
has been shown is stored (a gateway killed a moment later loses nothing acknowledged). While
it is away (a restart, a failover) the writes queue and are retried, and the call goes on
without waiting: the database catches up when it is back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import prometheus_client
import psycopg
import structlog

from callcue.call.v1 import call_pb2
from callcue.core.backoff import Backoff
from callcue.gateway.session_store import SessionStore

log = structlog.get_logger("callcue.gateway")

# A call whose writes have waited this long for the database is failed rather than kept in
# memory without bound; at a final segment every second or two this is hours of call.
MAX_BACKLOG = 10_000
# A database that restarts is back within seconds; one that fails over, within a minute.
_DATABASE_PAUSES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
# How long the end of a call waits for its writes, so that a caller who then reads the
# session finds all of it; with the database away, the call ends anyway and they go on.
PATIENCE_SECONDS = 2.0

BACKLOG = prometheus_client.Gauge(
    "callcue_session_writes_waiting",
    "Session writes (segments, detections, ends) not yet stored in PostgreSQL.",
)

_Write = Callable[[], Awaitable[None]]


class DatabaseBacklog(Exception):
    """The database has been away so long that a call's writes no longer fit in memory."""


class SessionWriter:
    def __init__(self, store: SessionStore, session_id: str, *, limit: int = MAX_BACKLOG):
        self._store = store
        self._session_id = session_id
        self._limit = limit
        self._writes: asyncio.Queue[_Write | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._finishing = False
        self._outage = False

    def start(self) -> None:
        """Starts storing what is added, in order, in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    @property
    def backlog(self) -> int:
        return self._writes.qsize()

    def add_segment(self, segment: call_pb2.TranscriptSegment) -> None:
        self._put(lambda: self._store.add_segment(self._session_id, segment))

    def add_detection(self, detection: call_pb2.Detection) -> None:
        self._put(lambda: self._store.add_detection(self._session_id, detection))

    async def stored(self, patience: float = PATIENCE_SECONDS) -> bool:
        """Waits (at most ``patience`` seconds) until everything added so far is stored;
        not at all while the database is known to be away."""
        if self._outage:
            return False
        try:
            await asyncio.wait_for(asyncio.shield(self._writes.join()), patience)
        except TimeoutError:
            log.warning("session writes not yet stored", waiting=self._writes.qsize())
            return False
        return True

    def finish(
        self, state: call_pb2.CallState.ValueType, audio_seconds: float, error: str
    ) -> asyncio.Task[None]:
        """The session's end, stored after everything before it (once: a second end is the
        first's). The task finishes when all of the session is stored; it need not be
        awaited by the call."""
        if self._finishing:
            assert self._task is not None
            return self._task
        self._finishing = True
        self._writes.put_nowait(
            lambda: self._store.finish(self._session_id, state, audio_seconds, error)
        )
        BACKLOG.inc()
        self._writes.put_nowait(None)
        self.start()  # a session that failed before it started still ends in the database
        assert self._task is not None
        return self._task

    def _put(self, write: _Write) -> None:
        if self._writes.qsize() >= self._limit:
            raise DatabaseBacklog(
                f"{self._writes.qsize()} writes of the session wait for the database"
            )
        self._writes.put_nowait(write)
        BACKLOG.inc()

    async def _run(self) -> None:
        while (write := await self._writes.get()) is not None:
            await self._store_one(write)
            BACKLOG.dec()
            self._writes.task_done()
        self._writes.task_done()

    async def _store_one(self, write: _Write) -> None:
        backoff = Backoff(_DATABASE_PAUSES)  # never gives up: the write must land
        while True:
            try:
                await write()
            except psycopg.OperationalError as error:
                # The server is away (restarting, failing over, unreachable): wait for it.
                if not self._outage:
                    log.warning(
                        "database unavailable; session writes wait",
                        error=str(error).splitlines()[0] if str(error) else type(error).__name__,
                        waiting=self._writes.qsize() + 1,
                    )
                    self._outage = True
                await backoff.wait()
                continue
            except psycopg.Error:
                # A write the database will never take (a bug, not an outage): keep the rest.
                log.exception("a session write was refused and dropped")
            if self._outage:
                log.info("database back; session writes resumed", retries=backoff.failures)
                self._outage = False
            return
