"""A session's events to the notifier: numbered, stamped, every one acknowledged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callcue.call.v1 import call_pb2
from callcue.core.auth import SingleTenant
from callcue.core.channel import open_channel
from callcue.core.settings import Environment
from callcue.gateway.publisher import SessionPublisher
from callcue.notifier import app as notifier_app
from callcue.notifier.event_log import MemoryEventLog
from callcue.notifier.settings import Settings as NotifierSettings
from callcue.notifier.v1 import notifier_service_pb2_grpc


@pytest.fixture
async def notifier() -> AsyncIterator[
    tuple[MemoryEventLog, notifier_service_pb2_grpc.PublisherServiceAsyncStub]
]:
    events = MemoryEventLog(1000, 10)
    settings = NotifierSettings.from_env(
        Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_AUTH": "none"})
    )
    server = notifier_app.build_server(settings, events, SingleTenant("acme"))
    port = await server.start()
    async with open_channel(f"127.0.0.1:{port}") as channel:
        yield events, notifier_service_pb2_grpc.PublisherServiceStub(channel)
    await server.stop(0)


async def test_events_are_numbered_stamped_and_all_reach_the_log(
    notifier: tuple[MemoryEventLog, notifier_service_pb2_grpc.PublisherServiceAsyncStub],
) -> None:
    events, stub = notifier
    publisher = SessionPublisher(stub, "s-7")
    publisher.start()
    sent = []
    for number in range(1, 6):
        segment = call_pb2.TranscriptSegment(text=f"words {number}", is_final=True)
        sent.append(await publisher.publish(call_pb2.CallEvent(transcript=segment)))
    sent.append(
        await publisher.publish(
            call_pb2.CallEvent(status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED))
        )
    )
    await publisher.close()
    assert [event.sequence for event in sent] == [1, 2, 3, 4, 5, 6]
    assert all(event.session_id == "s-7" and event.create_time.seconds for event in sent)
    stored = [event async for event in events.follow("acme", "s-7", 0)]
    assert stored == sent


async def test_a_publisher_never_started_holds_no_stream_and_closes_at_once(
    notifier: tuple[MemoryEventLog, notifier_service_pb2_grpc.PublisherServiceAsyncStub],
) -> None:
    events, stub = notifier
    publisher = SessionPublisher(stub, "s-8")
    await publisher.close()
    assert await events.last_event("acme", "s-8") is None
