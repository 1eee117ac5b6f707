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
from callcue.core.testing import NotifierClient
from callcue.notifier.app import build_server
from callcue.notifier.event_log import MemoryEventLog
from callcue.notifier.settings import Settings
from callcue.notifier.v1 import notifier_service_pb2 as pb
from callcue.notifier.v1 import notifier_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from callcue.core.testing import ServiceTrust, TenantKeys


@pytest.fixture
async def port(
    authenticator: ApiKeyAuthenticator, service_trust: ServiceTrust
) -> AsyncIterator[int]:
    settings = Settings.from_env(
        Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_AUTH": "none"})
    )
    doors = service_trust.doors("notifier", authenticator)
    server = build_server(settings, MemoryEventLog(1000, 100), doors)
    yield await server.start()
    await server.stop(0)


@pytest.fixture
async def stub(
    port: int, tenant_keys: TenantKeys, service_trust: ServiceTrust
) -> AsyncIterator[NotifierClient]:
    """The gateway publishing for tenant acme, and a client of acme subscribing."""
    async with NotifierClient.of_tenant(
        f"127.0.0.1:{port}", "acme", tenant_keys.acme, service_trust
    ) as client:
        yield client


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


async def publish(stub: NotifierClient, events: list[call_pb2.CallEvent]) -> list[int]:
    call = stub.Publish(pb.PublishRequest(event=e) for e in events)
    return [ack.sequence async for ack in call]


async def subscribe(stub: NotifierClient, session: str, after: int = 0) -> list[str]:
    call = stub.Subscribe(pb.SubscribeRequest(session_id=session, after_sequence=after))
    return [f"{r.event.sequence}:{r.event.WhichOneof('event')}" async for r in call]


async def test_every_subscriber_gets_every_event_in_order(
    stub: NotifierClient,
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


async def test_unknown_session_is_not_found(stub: NotifierClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await subscribe(stub, "no-such-call")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-call" in (error.value.details() or "")


async def test_event_without_session_is_invalid_with_field_details(
    stub: NotifierClient,
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


async def test_sequence_gap_is_a_failed_precondition(stub: NotifierClient) -> None:
    await publish(stub, [event("call-2", 1)])
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await publish(stub, [event("call-2", 3)])
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expected sequence 2" in (error.value.details() or "")


async def test_a_session_is_visible_only_to_its_tenant(
    stub: NotifierClient, port: int, tenant_keys: TenantKeys, service_trust: ServiceTrust
) -> None:
    await publish(stub, [event("shared-id", 1)])
    async with NotifierClient.of_tenant(
        f"127.0.0.1:{port}", "globex", tenant_keys.globex, service_trust
    ) as globex:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await subscribe(globex, "shared-id")
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        # The same id in another tenant is another session: nothing crosses over.
        await publish(globex, [event("shared-id", 1), event("shared-id", 2, last=True)])
        assert await subscribe(globex, "shared-id") == ["1:transcript", "2:status"]
    await publish(stub, [event("shared-id", 2), event("shared-id", 3, last=True)])
    assert await subscribe(stub, "shared-id") == ["1:transcript", "2:transcript", "3:status"]


async def test_a_supervisor_follows_every_call_of_its_tenant_and_resumes(
    stub: NotifierClient, port: int, tenant_keys: TenantKeys, service_trust: ServiceTrust
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
    async with NotifierClient.of_tenant(
        f"127.0.0.1:{port}", "globex", tenant_keys.globex, service_trust
    ) as globex:
        await publish(globex, [event("theirs", 1)])
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


async def test_a_tenant_key_cannot_publish_into_a_call(
    stub: NotifierClient, port: int, tenant_keys: TenantKeys
) -> None:
    """Only the gateway publishes: an outside caller with a valid key of the call's own
    tenant cannot put an invented talking point into it."""
    await publish(stub, [event("guarded", 1)])
    following = asyncio.create_task(subscribe(stub, "guarded"))
    invented = call_pb2.CallEvent(
        session_id="guarded",
        sequence=2,
        detection=call_pb2.Detection(
            phrase="refund", talking_point=call_pb2.TalkingPoint(title="Offer 90% off")
        ),
    )
    async with open_channel(f"127.0.0.1:{port}", credentials=api_key(tenant_keys.acme)) as channel:
        outsider = pb_grpc.PublisherServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in outsider.Publish(iter([pb.PublishRequest(event=invented)])):
                pass
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "internal" in (refused.value.details() or "")
    await publish(stub, [event("guarded", 2, last=True)])
    assert await asyncio.wait_for(following, 5) == ["1:transcript", "2:status"]
