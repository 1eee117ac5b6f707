"""Per-session event logs that subscribers read at their own pace."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Protocol

from callcue.call.v1 import call_pb2

_TERMINAL_STATES = (call_pb2.CALL_STATE_ENDED, call_pb2.CALL_STATE_FAILED)


def is_terminal(event: call_pb2.CallEvent) -> bool:
    return event.WhichOneof("event") == "status" and event.status.state in _TERMINAL_STATES


class SequenceGap(Exception):
    """An event skips sequence numbers the log has not seen."""

    def __init__(self, session_id: str, expected: int, got: int) -> None:
        super().__init__(
            f"session {session_id}: expected sequence {expected}, got {got}; "
            "resend the missing events first"
        )


class SessionEnded(Exception):
    """An event for a session that has ended (its publisher was presumed gone, see
    orphans.py, and came back too late)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id} has ended; it takes no more events")


class UnknownSession(Exception):
    """No events of the session are known (never published, or expired)."""


class LogUnavailable(Exception):
    """The store behind the log (Redis) cannot be reached; the caller may retry."""


class FellBehind(Exception):
    """The reader wants events the log no longer keeps."""

    def __init__(self, what: str, wanted: int, oldest: int, resume_field: str) -> None:
        super().__init__(
            f"{what}: events from {wanted} are no longer kept (oldest is {oldest}); "
            f"resubscribe with {resume_field}={oldest - 1} or later"
        )
        self.oldest = oldest


class BadCursor(ValueError):
    """A tenant feed cursor this log did not hand out."""


# Events of all a tenant's sessions kept for supervisors that reconnect.
FEED_EVENTS = 10_000


class EventLog(Protocol):
    """Sessions belong to tenants: a session id means nothing outside its tenant."""

    async def append(self, tenant_id: str, event: call_pb2.CallEvent) -> bool:
        """Stores the event; False if it was already stored (a re-sent duplicate)."""
        ...

    def follow(
        self, tenant_id: str, session_id: str, after_sequence: int
    ) -> AsyncIterator[call_pb2.CallEvent]:
        """Events after the sequence: stored ones, then live ones until the session ends."""
        ...

    async def last_event(self, tenant_id: str, session_id: str) -> call_pb2.CallEvent | None:
        """The session's latest event; None if the log has none."""
        ...

    async def hold_publisher(self, tenant_id: str, session_id: str, seconds: float) -> None:
        """Marks the session as having a live publisher (an open Publish stream) for the
        next ``seconds``; renewed while the stream stays open, on whichever replica. Never
        released early: the publisher may already hold it again through another replica."""
        ...

    async def has_publisher(self, tenant_id: str, session_id: str) -> bool: ...

    def follow_tenant(
        self, tenant_id: str, after_cursor: str
    ) -> AsyncIterator[tuple[str, call_pb2.CallEvent]]:
        """Every new event of the tenant's sessions, with the cursor to resume after it;
        from the cursor given, or from now when it is empty. Never ends."""
        ...


class _SessionLog:
    """Numbered events kept in memory; readers wait on ``changed`` for more."""

    def __init__(self, first_sequence: int, *, ends_with_session: bool = True) -> None:
        self.first = first_sequence  # sequence of events[0]
        self.events: list[call_pb2.CallEvent] = []
        self.ended = False
        self._ends = ends_with_session
        self.changed = asyncio.Event()

    @property
    def last(self) -> int:
        return self.first + len(self.events) - 1

    def add(self, event: call_pb2.CallEvent, capacity: int) -> None:
        self.events.append(event)
        self.ended = self.ended or (self._ends and is_terminal(event))
        if len(self.events) > capacity + capacity // 2:
            # Trim in batches so appends stay O(1) amortised.
            drop = len(self.events) - capacity
            del self.events[:drop]
            self.first += drop
        # Wake every waiting reader, then arm a fresh event for the next append.
        self.changed.set()
        self.changed = asyncio.Event()


class MemoryEventLog:
    """One notifier's event log in memory (the embedded default, without Redis)."""

    def __init__(self, events_per_session: int, ended_sessions_kept: int) -> None:
        self._capacity = events_per_session
        self._ended_kept = ended_sessions_kept
        self._sessions: dict[tuple[str, str], _SessionLog] = {}
        self._ended: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._feeds: dict[str, _SessionLog] = {}
        self._publishers: dict[tuple[str, str], float] = {}  # until when, monotonic

    async def append(self, tenant_id: str, event: call_pb2.CallEvent) -> bool:
        key = (tenant_id, event.session_id)
        log = self._sessions.get(key)
        if log is None:
            # A first event, or the first after this notifier restarted: start where it says.
            log = self._sessions[key] = _SessionLog(event.sequence)
        if event.sequence <= log.last:
            return False
        if log.ended:
            raise SessionEnded(event.session_id)
        if event.sequence != log.last + 1:
            raise SequenceGap(event.session_id, log.last + 1, event.sequence)
        log.add(event, self._capacity)
        self._feed(tenant_id).add(event, FEED_EVENTS)
        if log.ended:
            self._forget_old_sessions(key)
        return True

    async def last_event(self, tenant_id: str, session_id: str) -> call_pb2.CallEvent | None:
        log = self._sessions.get((tenant_id, session_id))
        return log.events[-1] if log is not None and log.events else None

    async def hold_publisher(self, tenant_id: str, session_id: str, seconds: float) -> None:
        self._publishers[(tenant_id, session_id)] = time.monotonic() + seconds

    async def has_publisher(self, tenant_id: str, session_id: str) -> bool:
        until = self._publishers.get((tenant_id, session_id))
        return until is not None and until > time.monotonic()

    def _feed(self, tenant_id: str) -> _SessionLog:
        feed = self._feeds.get(tenant_id)
        if feed is None:
            feed = self._feeds[tenant_id] = _SessionLog(1, ends_with_session=False)
        return feed

    def _forget_old_sessions(self, ended_session: tuple[str, str]) -> None:
        self._ended[ended_session] = None
        while len(self._ended) > self._ended_kept:
            old, _ = self._ended.popitem(last=False)
            self._sessions.pop(old, None)
            self._publishers.pop(old, None)

    async def follow(
        self, tenant_id: str, session_id: str, after_sequence: int
    ) -> AsyncIterator[call_pb2.CallEvent]:
        log = self._sessions.get((tenant_id, session_id))
        if log is None:
            raise UnknownSession(session_id)
        reading = _read(log, f"session {session_id}", "after_sequence", max(after_sequence + 1, 1))
        async for _, event in reading:
            yield event

    async def follow_tenant(
        self, tenant_id: str, after_cursor: str
    ) -> AsyncIterator[tuple[str, call_pb2.CallEvent]]:
        feed = self._feed(tenant_id)
        if not after_cursor:
            wanted = feed.last + 1
        elif after_cursor.isdigit():
            wanted = int(after_cursor) + 1
        else:
            raise BadCursor(f"{after_cursor!r} is not a cursor of this notifier")
        async for position, event in _read(feed, f"tenant {tenant_id}", "after_cursor", wanted):
            yield str(position), event


async def _read(
    log: _SessionLog, what: str, resume_field: str, wanted: int
) -> AsyncIterator[tuple[int, call_pb2.CallEvent]]:
    while True:
        if wanted < log.first and wanted <= log.last:
            raise FellBehind(what, wanted, log.first, resume_field)
        wanted = max(wanted, log.first)
        while wanted <= log.last:
            yield wanted, log.events[wanted - log.first]
            wanted += 1
        if log.ended:
            return
        await log.changed.wait()
