"""LiveService: one call's events as they happen, and the wall of every live call.

A dropped browser stream is resumed by the browser (after the last sequence it showed,
or with a fresh wall), so these streams simply end when a service behind them fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

from callcue.call.v1 import call_pb2
from callcue.console.access import Context, Gatekeeper, may_see, refused, rep_of
from callcue.console.backend import Backend, passed_on
from callcue.console.metrics import BROWSER_STREAMS
from callcue.console.people import Person, Role
from callcue.console.v1 import console_service_pb2 as pb
from callcue.core.pagination import every_page
from callcue.core.service_keys import Metadata
from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb

_ENDED = (call_pb2.CALL_STATE_ENDED, call_pb2.CALL_STATE_FAILED)
# The wall starts from at most this many live calls (the newest).
WALL_LIMIT = 500


class LiveService:
    def __init__(self, backend: Backend, gatekeeper: Gatekeeper) -> None:
        self._backend = backend
        self._gatekeeper = gatekeeper

    async def watch_call(
        self, request: pb.WatchCallRequest, ctx: Context
    ) -> AsyncIterator[pb.WatchCallResponse]:
        person = await self._gatekeeper.person(ctx.request_headers(), at_least=Role.REP)
        auth = await self._backend.keys.metadata(person.tenant_id)
        await visible_session(self._backend, auth, person, request.session_id)
        subscribe = notifier_pb.SubscribeRequest(
            session_id=request.session_id, after_sequence=request.after_sequence
        )
        with passed_on(), BROWSER_STREAMS.labels("WatchCall").track_inprogress():
            async for reply in self._backend.notifier.Subscribe(subscribe, metadata=auth):
                yield pb.WatchCallResponse(event=reply.event)

    async def watch_live_calls(
        self, request: pb.WatchLiveCallsRequest, ctx: Context
    ) -> AsyncIterator[pb.WatchLiveCallsResponse]:
        person = await self._gatekeeper.person(ctx.request_headers(), at_least=Role.REP)
        auth = await self._backend.keys.metadata(person.tenant_id)
        wall = Wall(person)
        with passed_on(), BROWSER_STREAMS.labels("WatchLiveCalls").track_inprogress():
            # Subscribed before the snapshot is read, so no event falls between the two;
            # detections seen in both are counted once (by id).
            events = self._backend.notifier.SubscribeAll(
                notifier_pb.SubscribeAllRequest(), metadata=auth
            )
            for session in await self._live_sessions(auth):
                summary = await self._backend.gateway.GetCallSummary(
                    gateway_pb.GetCallSummaryRequest(session_id=session.session_id),
                    metadata=auth,
                )
                call = wall.add(session, summary.summary.talking_points)
                if call is not None:
                    yield pb.WatchLiveCallsResponse(call=call)
            yield pb.WatchLiveCallsResponse(caught_up=True)
            async for reply in events:
                event = reply.event
                if event.session_id not in wall.known:
                    session = (
                        await self._backend.gateway.GetSession(
                            gateway_pb.GetSessionRequest(session_id=event.session_id),
                            metadata=auth,
                        )
                    ).session
                    if wall.add(session, ()) is None:
                        continue
                changed = wall.apply(event)
                if changed is not None:
                    yield pb.WatchLiveCallsResponse(call=changed)

    async def _live_sessions(self, auth: Metadata) -> list[gateway_pb.Session]:
        async def fetch(token: str) -> tuple[Sequence[gateway_pb.Session], str]:
            page = await self._backend.gateway.ListSessions(
                gateway_pb.ListSessionsRequest(
                    state=call_pb2.CALL_STATE_ACTIVE, page_size=200, page_token=token
                ),
                metadata=auth,
            )
            return page.sessions, page.next_page_token

        return await every_page(fetch, limit=WALL_LIMIT)


async def visible_session(
    backend: Backend, auth: Metadata, person: Person, session_id: str
) -> gateway_pb.Session:
    """The session if this person may see it; PERMISSION_DENIED otherwise."""
    if not session_id:
        raise refused("(none)")
    with passed_on():
        session = (
            await backend.gateway.GetSession(
                gateway_pb.GetSessionRequest(session_id=session_id), metadata=auth
            )
        ).session
    if not may_see(person, session.metadata):
        raise refused(session_id)
    return session


@dataclass
class _Tracked:
    call: pb.LiveCall
    detections: set[str] = field(default_factory=set)


class Wall:
    """The live calls one person may see, kept from the events of the tenant."""

    def __init__(self, person: Person) -> None:
        self._person = person
        self._calls: dict[str, _Tracked] = {}
        # Sessions seen and not shown (another rep's, uploads, ended): never looked up again.
        self.known: set[str] = set()

    def add(
        self, session: gateway_pb.Session, confirmed: Iterable[call_pb2.Detection]
    ) -> pb.LiveCall | None:
        self.known.add(session.session_id)
        if (
            session.source != gateway_pb.SESSION_SOURCE_LIVE
            or session.state in _ENDED
            or not may_see(self._person, session.metadata)
        ):
            return None
        call = pb.LiveCall(
            session_id=session.session_id,
            title=session.title,
            rep=rep_of(session.metadata),
        )
        call.start_time.CopyFrom(session.create_time)
        tracked = _Tracked(call)
        self._calls[session.session_id] = tracked
        for detection in confirmed:
            _count(tracked, detection)
        return call

    def apply(self, event: call_pb2.CallEvent) -> pb.LiveCall | None:
        """The call again if the event changed what the wall shows."""
        tracked = self._calls.get(event.session_id)
        if tracked is None:
            return None
        kind = event.WhichOneof("event")
        if kind == "detection":
            if event.detection.state != call_pb2.DETECTION_STATE_CONFIRMED:
                return None
            if not _count(tracked, event.detection):
                return None
            return tracked.call
        if kind == "status":
            if event.status.HasField("audio_received"):
                tracked.call.audio_received.CopyFrom(event.status.audio_received)
            if event.status.state in _ENDED:
                tracked.call.ended = True
                del self._calls[event.session_id]
            return tracked.call
        return None


def _count(tracked: _Tracked, detection: call_pb2.Detection) -> bool:
    if detection.detection_id in tracked.detections:
        return False
    tracked.detections.add(detection.detection_id)
    tracked.call.last_detection.CopyFrom(detection)
    category = detection.talking_point.category
    for counted in tracked.call.category_counts:
        if counted.category == category:
            counted.count += 1
            break
    else:
        tracked.call.category_counts.add(category=category, count=1)
    return True
