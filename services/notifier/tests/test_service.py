from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from callcue.call.v1 import call_pb2
from callcue.core.auth import ApiKeyAuthenticator
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.settings import Environment
from callcue.notifier.app import build_server
from callcue.notifier.event_log import MemoryEventLog
from callcue.notifier.settings import Settings
from callcue.notifier.v1 import notifier_service_pb2 as pb
from callcue.notifier.v1 import notifier_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from callcue.core.testing import TenantKeys


@pytest.fixture
async def port(authenticator: ApiKeyAuthenticator) -> AsyncIterator[int]:
    settings = Settings.from_env(
        Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_AUTH": "none"})
    )
    server = build_server(settings, MemoryEventLog(1000, 100), authenticator)
    yield await server.start()
    await server.stop(0)


@pytest.fixture
async def stub(port: int, tenant_keys: TenantKeys) -> AsyncIterator[pb_grpc.SubscriberServiceStub]:
    credentials = api_key(tenant_keys.acme)
    async with open_channel(f"127.0.0.1:{port}", credentials=credentials) as channel:
        yield pb_grpc.SubscriberServiceStub(channel)


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


async def publish(
    stub: pb_grpc.SubscriberServiceStub, events: list[call_pb2.CallEvent]
) -> list[int]:
    call = stub.Publish(pb.PublishRequest(event=e) for e in events)
    return [ack.sequence async for ack in call]


async def subscribe(stub: pb_grpc.SubscriberServiceStub, session: str, after: int = 0) -> list[str]:
    call = stub.Subscribe(pb.SubscribeRequest(session_id=session, after_sequence=after))
    return [f"{r.event.sequence}:{r.event.WhichOneof('event')}" async for r in call]


async def test_every_subscriber_gets_every_event_in_order(
    stub: pb_grpc.SubscriberServiceStub,
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


async def test_unknown_session_is_not_found(stub: pb_grpc.SubscriberServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await subscribe(stub, "no-such-call")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-call" in (error.value.details() or "")


async def test_event_without_session_is_invalid_with_field_details(
    stub: pb_grpc.SubscriberServiceStub,
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


async def test_sequence_gap_is_a_failed_precondition(stub: pb_grpc.SubscriberServiceStub) -> None:
    await publish(stub, [event("call-2", 1)])
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await publish(stub, [event("call-2", 3)])
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expected sequence 2" in (error.value.details() or "")


async def test_a_session_is_visible_only_to_its_tenant(
    stub: pb_grpc.SubscriberServiceStub, port: int, tenant_keys: TenantKeys
) -> None:
    await publish(stub, [event("shared-id", 1)])
    credentials = api_key(tenant_keys.globex)
    async with open_channel(f"127.0.0.1:{port}", credentials=credentials) as channel:
        globex = pb_grpc.SubscriberServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await subscribe(globex, "shared-id")
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        # The same id in another tenant is another session: nothing crosses over.
        await publish(globex, [event("shared-id", 1), event("shared-id", 2, last=True)])
        assert await subscribe(globex, "shared-id") == ["1:transcript", "2:status"]
    await publish(stub, [event("shared-id", 2), event("shared-id", 3, last=True)])
    assert await subscribe(stub, "shared-id") == ["1:transcript", "2:transcript", "3:status"]


async def test_a_supervisor_follows_every_call_of_its_tenant_and_resumes(
    stub: pb_grpc.SubscriberServiceStub, port: int, tenant_keys: TenantKeys
) -> None:
    seen: list[tuple[str, str, int]] = []

    async def supervise(after: str, count: int) -> None:
        call = stub.SubscribeAll(pb.SubscribeAllRequest(after_cursor=after))
        async for response in call:
            seen.append((response.cursor, response.event.session_id, response.event.sequence))
            if len(seen) == count:
                call.cancel()
                return

    supervisor = asyncio.create_task(supervise("", 4))
    await asyncio.sleep(0.2)
    credentials = api_key(tenant_keys.globex)
    async with open_channel(f"127.0.0.1:{port}", credentials=credentials) as channel:
        await publish(pb_grpc.SubscriberServiceStub(channel), [event("theirs", 1)])
    await publish(stub, [event("call-a", 1), event("call-a", 2)])
    await publish(stub, [event("call-b", 1), event("call-a", 3), event("call-b", 2)])
    await asyncio.wait_for(supervisor, 5)
    # The stream dropped after four events; resuming after the last cursor continues.
    await asyncio.wait_for(supervise(seen[-1][0], 5), 5)
    assert [(session, sequence) for _, session, sequence in seen] == [
        ("call-a", 1),
        ("call-a", 2),
        ("call-b", 1),
        ("call-a", 3),
        ("call-b", 2),
    ]
    cursors = [cursor for cursor, _, _ in seen]
    assert len(set(cursors)) == len(cursors)

    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in stub.SubscribeAll(pb.SubscribeAllRequest(after_cursor="yesterday")):
            pass
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "after_cursor" in (error.value.details() or "")
