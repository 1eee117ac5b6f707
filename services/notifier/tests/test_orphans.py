"""A session whose publisher (the gateway running the call) went away is ended for its
subscribers once no publisher took it up again; a publisher that comes back in time keeps
it. Against the memory log and the real Redis."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import redis.asyncio as redis

from callcue.call.v1 import call_pb2
from callcue.core.auth import SingleTenant
from callcue.core.channel import open_channel
from callcue.core.settings import Environment
from callcue.core.testing import NotifierClient
from callcue.notifier.app import build_server
from callcue.notifier.event_log import EventLog, MemoryEventLog
from callcue.notifier.orphans import MESSAGE
from callcue.notifier.redis_log import RedisEventLog
from callcue.notifier.settings import Settings
from callcue.notifier.v1 import notifier_service_pb2 as pb

REDIS_URL = os.environ.get("CALLCUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PATIENCE = 1.0


def transcript(session: str, sequence: int) -> call_pb2.CallEvent:
    return call_pb2.CallEvent(
        session_id=session,
        sequence=sequence,
        transcript=call_pb2.TranscriptSegment(text=f"words {sequence}", is_final=True),
    )


@pytest.fixture(params=["memory", "redis"])
async def events(request: pytest.FixtureRequest) -> AsyncIterator[EventLog]:
    if request.param == "memory":
        yield MemoryEventLog(1000, 100)
        return
    prefix = f"callcue-test:{uuid.uuid4().hex[:8]}:"
    log = RedisEventLog(REDIS_URL, events_per_session=1000, session_ttl_seconds=600, prefix=prefix)
    yield log
    await log.close()
    client = redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def stub(events: EventLog) -> AsyncIterator[NotifierClient]:
    settings = Settings.from_env(
        Environment(
            {
                "CALLCUE_HOST": "127.0.0.1",
                "CALLCUE_PORT": "0",
                "CALLCUE_AUTH": "none",
                "CALLCUE_NOTIFIER_ORPHANED_SESSION_SECONDS": str(PATIENCE),
            }
        )
    )
    server = build_server(settings, events, SingleTenant("acme"))
    port = await server.start()
    async with open_channel(f"127.0.0.1:{port}") as channel:
        yield NotifierClient(channel, channel)
    await server.stop(0)


async def publish_then_vanish(stub: NotifierClient, session: str, sequences: range) -> None:
    """A publisher whose process dies after these events: its stream just breaks."""
    more = asyncio.Event()

    async def requests() -> AsyncIterator[pb.PublishRequest]:
        for sequence in sequences:
            yield pb.PublishRequest(event=transcript(session, sequence))
        await more.wait()  # never set: the publisher is gone

    call = stub.Publish(requests())
    acked = 0
    async for ack in call:
        acked = ack.sequence
        if acked == sequences[-1]:
            break
    call.cancel()


async def publish(stub: NotifierClient, events: list[call_pb2.CallEvent]) -> None:
    call = stub.Publish(pb.PublishRequest(event=event) for event in events)
    [ack async for ack in call]


async def subscribe(stub: NotifierClient, session: str) -> list[call_pb2.CallEvent]:
    call = stub.Subscribe(pb.SubscribeRequest(session_id=session), timeout=20)
    return [response.event async for response in call]


async def test_a_session_whose_publisher_vanished_ends_for_its_subscribers(
    stub: NotifierClient,
) -> None:
    await publish_then_vanish(stub, "call-1", range(1, 4))
    following = asyncio.create_task(subscribe(stub, "call-1"))
    seen = await asyncio.wait_for(following, 10)  # ends: it does not wait for ever
    assert [e.sequence for e in seen] == [1, 2, 3, 4]
    assert seen[-1].status.state == call_pb2.CALL_STATE_FAILED
    assert seen[-1].status.message == MESSAGE

    # The publisher turning up after all: what it already sent is recognised, anything new
    # is refused with the reason, not appended after the end.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await publish(stub, [transcript("call-1", 4), transcript("call-1", 5)])
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "has ended" in (refused.value.details() or "")
    assert [e.sequence for e in await subscribe(stub, "call-1")] == [1, 2, 3, 4]


async def test_a_publisher_back_in_time_keeps_its_session(
    stub: NotifierClient,
) -> None:
    await publish_then_vanish(stub, "call-2", range(1, 4))
    # The gateway reconnects (here, or through another replica) and goes on, then falls
    # silent for longer than the patience: a quiet call is not a dead one.
    second = stub.Publish(_slow([transcript("call-2", n) for n in (3, 4, 5)], hold=PATIENCE * 2.5))
    acks = [ack.sequence async for ack in second]
    assert acks == [3, 4, 5]
    await publish(
        stub,
        [
            call_pb2.CallEvent(
                session_id="call-2",
                sequence=6,
                status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED),
            )
        ],
    )
    seen = await subscribe(stub, "call-2")
    assert [e.sequence for e in seen] == [1, 2, 3, 4, 5, 6]
    assert seen[-1].status.state == call_pb2.CALL_STATE_ENDED


async def _slow(events: list[call_pb2.CallEvent], hold: float) -> AsyncIterator[pb.PublishRequest]:
    for event in events:
        yield pb.PublishRequest(event=event)
    await asyncio.sleep(hold)
