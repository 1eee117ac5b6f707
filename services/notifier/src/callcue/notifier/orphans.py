"""Sessions whose publisher went away. When the gateway running a call dies (killed, its
node lost) nothing will publish the event that ends the session, and its subscribers would
wait for ever. A Publish stream holds its sessions' publisher mark (in the log, so every
replica sees it) while it is open; when a stream breaks before its sessions ended, the
replica looks again after a patience long enough for a living gateway to have reconnected
through any replica. If no publisher holds the session by then, it ends it: a FAILED status
numbered after the last event, which every subscriber receives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import prometheus_client
import structlog
from google.protobuf import timestamp_pb2

from callcue.call.v1 import call_pb2
from callcue.notifier.event_log import EventLog, LogUnavailable, SessionEnded, is_terminal

log = structlog.get_logger("callcue.notifier")

ORPHANS = prometheus_client.Counter(
    "callcue_orphaned_sessions_total",
    "Sessions ended by a notifier because their publisher (a gateway) went away.",
)
MESSAGE = "the gateway running this call stopped; the call's transcript and talking points end here"


class PublisherWatch:
    def __init__(self, events: EventLog, *, patience: float) -> None:
        self._events = events
        self._patience = patience
        # A publisher's mark lasts two renewals, so one late renewal does not drop it, and
        # lapses well within the patience.
        self._renew = patience / 6
        self._checks: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def stream(self, tenant_id: str) -> AsyncIterator[StreamSessions]:
        """One Publish stream: marks the sessions it carries as published while it is open,
        and has them looked at again if it breaks before they end."""
        sessions = StreamSessions(self._events, tenant_id, self._renew * 2)
        renewing = asyncio.create_task(self._keep_marking(sessions))
        try:
            yield sessions
        finally:
            renewing.cancel()
            for session_id in sessions.open:
                check = asyncio.create_task(self._look_again(tenant_id, session_id))
                self._checks.add(check)
                check.add_done_callback(self._checks.discard)

    async def _keep_marking(self, sessions: StreamSessions) -> None:
        while True:
            await asyncio.sleep(self._renew)
            for session_id in list(sessions.open):
                with contextlib.suppress(LogUnavailable):
                    await sessions.mark(session_id)

    async def _look_again(self, tenant_id: str, session_id: str) -> None:
        await asyncio.sleep(self._patience)
        for _ in range(5):
            try:
                if await self._events.has_publisher(tenant_id, session_id):
                    return  # the gateway came back, through this replica or another
                last = await self._events.last_event(tenant_id, session_id)
                if last is None or is_terminal(last):
                    return
                ended = call_pb2.CallEvent(
                    session_id=session_id,
                    sequence=last.sequence + 1,
                    create_time=_now(),
                    status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_FAILED, message=MESSAGE),
                )
                if await self._events.append(tenant_id, ended):
                    ORPHANS.inc()
                    log.warning(
                        "session ended: its publisher went away",
                        tenant=tenant_id,
                        session_id=session_id,
                        last_sequence=last.sequence,
                    )
                    return
                # An event arrived meanwhile: look at the new last one.
            except SessionEnded:
                return
            except LogUnavailable as error:
                log.warning("orphaned session not checked", session_id=session_id, error=str(error))
                await asyncio.sleep(self._patience)


class StreamSessions:
    """The sessions one Publish stream carries that have not ended."""

    def __init__(self, events: EventLog, tenant_id: str, mark_seconds: float) -> None:
        self._events = events
        self._tenant_id = tenant_id
        self._mark_seconds = mark_seconds
        self.open: set[str] = set()

    async def mark(self, session_id: str) -> None:
        await self._events.hold_publisher(self._tenant_id, session_id, self._mark_seconds)

    async def published(self, event: call_pb2.CallEvent) -> None:
        if is_terminal(event):
            self.open.discard(event.session_id)
        elif event.session_id not in self.open:
            self.open.add(event.session_id)
            await self.mark(event.session_id)


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp
