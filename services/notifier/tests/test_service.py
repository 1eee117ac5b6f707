from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from callcue.call.v1 import call_pb2
from callcue.core.settings import Environment
from callcue.notifier.app import build_server
from callcue.notifier.event_log import MemoryEventLog
from callcue.notifier.settings import Settings
from callcue.notifier.v1 import notifier_service_pb2 as pb
from callcue.notifier.v1 import notifier_service_pb2_grpc as pb_grpc


@pytest.fixture
async def stub() -> AsyncIterator[pb_grpc.NotifierServiceStub]:
    settings = Settings.from_env(Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0"}))
    server = build_server(settings, MemoryEventLog(1000, 100))
    port = await server.start()
    await server.set_serving()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield pb_grpc.NotifierServiceStub(channel)
    await server.stop(0)


def event(session: str, sequence: int, last: bool = False) -> call_pb2.CallEvent:
    if last:
        return call_pb2.CallEvent(
            session_id=session,
            sequence=sequence,
            status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED),
        )
    return call_pb2.CallEvent(
        session_id=session,
        sequence=sequence,
        transcript=call_pb2.TranscriptSegment(text=f"utterance {sequence}", is_final=True),
    )


async def publish(stub: pb_grpc.NotifierServiceStub, events: list[call_pb2.CallEvent]) -> list[int]:
    call = stub.Publish(pb.PublishRequest(event=e) for e in events)
    return [ack.sequence async for ack in call]


async def subscribe(stub: pb_grpc.NotifierServiceStub, session: str, after: int = 0) -> list[str]:
    call = stub.Subscribe(pb.SubscribeRequest(session_id=session, after_sequence=after))
    return [f"{r.event.sequence}:{r.event.WhichOneof('event')}" async for r in call]


async def test_every_subscriber_gets_every_event_in_order(
    stub: pb_grpc.NotifierServiceStub,
) -> None:
    assert await publish(stub, [event("call-1", 1)]) == [1]
    subscribers = [asyncio.create_task(subscribe(stub, "call-1")) for _ in range(5)]
    late = asyncio.create_task(subscribe(stub, "call-1", after=40))
    await asyncio.sleep(0.2)
    events = [event("call-1", n) for n in range(2, 50)] + [event("call-1", 50, last=True)]
    assert await publish(stub, events) == list(range(2, 51))
    expected = [f"{n}:transcript" for n in range(1, 50)] + ["50:status"]
    for subscriber in subscribers:
        assert await asyncio.wait_for(subscriber, 5) == expected
    assert await asyncio.wait_for(late, 5) == expected[40:]


async def test_unknown_session_is_not_found(stub: pb_grpc.NotifierServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await subscribe(stub, "no-such-call")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-call" in (error.value.details() or "")


async def test_event_without_session_is_invalid_with_field_details(
    stub: pb_grpc.NotifierServiceStub,
) -> None:
    call = stub.Publish(iter([pb.PublishRequest(event=call_pb2.CallEvent(sequence=1))]))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        [ack async for ack in call]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error.value)  # type: ignore[arg-type]
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert bad_request.field_violations[0].field == "event.session_id"


async def test_sequence_gap_is_a_failed_precondition(stub: pb_grpc.NotifierServiceStub) -> None:
    await publish(stub, [event("call-2", 1)])
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await publish(stub, [event("call-2", 3)])
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expected sequence 2" in (error.value.details() or "")
