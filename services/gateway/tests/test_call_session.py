"""A session's events: one order for the caller, the subscribers and the database."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from callcue.call.v1 import call_pb2
from callcue.core import database
from callcue.gateway import app as gateway_app
from callcue.gateway.call_session import CallSession
from callcue.gateway.session_store import SessionStore
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb

if TYPE_CHECKING:
    from callcue.core.testing import Stack


def final(text: str, start: float) -> call_pb2.TranscriptSegment:
    segment = call_pb2.TranscriptSegment(segment_id=text, text=text, is_final=True)
    segment.start_offset.FromMilliseconds(int(start * 1000))
    return segment


async def test_events_are_numbered_published_and_stored_in_one_order(
    stack: Stack, database_url: str
) -> None:
    await database.migrate(database_url, "gateway", gateway_app.MIGRATIONS)
    pool = await database.open_pool(database_url, max_size=2)
    store = SessionStore(pool)
    session = await store.create("acme", pb.SESSION_SOURCE_LIVE, pb.CallConfig())
    downstream = stack.internal
    call = CallSession(session.session_id, [], downstream, store)
    first = await call.start("call started")
    for number in range(3):
        call.add_segment(final(f"words {number}", number))
    await call.finish(call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED, message="over"))
    events = [first] + [event async for event in call.events()]
    # Whoever sees the end can read the session back, its end included.
    assert (await store.get("acme", session.session_id)).state == call_pb2.CALL_STATE_ENDED
    await call.close("over")
    assert [event.sequence for event in events] == list(range(1, len(events) + 1))
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[0] == "status" and kinds[-1] == "status"
    assert [e.transcript.text for e in events if e.HasField("transcript")] == [
        "words 0",
        "words 1",
        "words 2",
    ]
    subscribed = [
        response.event
        async for response in stack.notifier.Subscribe(
            notifier_pb.SubscribeRequest(session_id=session.session_id)
        )
    ]
    assert [e.sequence for e in subscribed] == [e.sequence for e in events]
    segments, _ = await store.transcript("acme", session.session_id)
    assert [s.text for s in segments] == ["words 0", "words 1", "words 2"]
    await pool.close()


async def test_a_session_never_started_closes_without_publishing(stack: Stack) -> None:
    downstream = stack.internal
    call = CallSession(f"never-{uuid.uuid4()}", [], downstream, store=None)  # type: ignore[arg-type]
    await call.close("the caller went away before it started")
