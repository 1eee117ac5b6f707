"""Per-session event logs that subscribers read at their own pace."""

from __future__ import annotations

import asyncio
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


class UnknownSession(Exception):
    """No events of the session are known (never published, or expired)."""


class LogUnavailable(Exception):
    """The store behind the log (Redis) cannot be reached; the caller may retry."""


class FellBehind(Exception):
    """The reader wants events the log no longer keeps."""

    def __init__(self, session_id: str, wanted: int, oldest: int) -> None:
        super().__init__(
            f"session {session_id}: events from {wanted} are no longer kept (oldest is {oldest}); "
            f"resubscribe with after_sequence={oldest - 1} or later"
        )
        self.oldest = oldest


class EventLog(Protocol):
    async def append(self, event: call_pb2.CallEvent) -> bool:
        """Stores the event; False if it was already stored (a re-sent duplicate)."""
        ...

    def follow(self, session_id: str, after_sequence: int) -> AsyncIterator[call_pb2.CallEvent]:
        """Events after the sequence: stored ones, then live ones until the session ends."""
        ...


class _SessionLog:
    def __init__(self, first_sequence: int) -> None:
        self.first = first_sequence  # sequence of events[0]
        self.events: list[call_pb2.CallEvent] = []
        self.ended = False
        self.changed = asyncio.Event()

    @property
    def last(self) -> int:
        return self.first + len(self.events) - 1

    def add(self, event: call_pb2.CallEvent, capacity: int) -> None:
        self.events.append(event)
        self.ended = self.ended or is_terminal(event)
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
        self._sessions: dict[str, _SessionLog] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()

    async def append(self, event: call_pb2.CallEvent) -> bool:
        log = self._sessions.get(event.session_id)
        if log is None:
            # A first event, or the first after this notifier restarted: start where it says.
            log = self._sessions[event.session_id] = _SessionLog(event.sequence)
        if event.sequence <= log.last:
            return False
        if event.sequence != log.last + 1:
            raise SequenceGap(event.session_id, log.last + 1, event.sequence)
        log.add(event, self._capacity)
        if log.ended:
            self._forget_old_sessions(event.session_id)
        return True

    def _forget_old_sessions(self, ended_session: str) -> None:
        self._ended[ended_session] = None
        while len(self._ended) > self._ended_kept:
            old, _ = self._ended.popitem(last=False)
            self._sessions.pop(old, None)

    async def follow(
        self, session_id: str, after_sequence: int
    ) -> AsyncIterator[call_pb2.CallEvent]:
        log = self._sessions.get(session_id)
        if log is None:
            raise UnknownSession(session_id)
        wanted = max(after_sequence + 1, 1)
        while True:
            if wanted < log.first and wanted <= log.last:
                raise FellBehind(session_id, wanted, log.first)
            wanted = max(wanted, log.first)
            while wanted <= log.last:
                yield log.events[wanted - log.first]
                wanted += 1
            if log.ended:
                return
            await log.changed.wait()
