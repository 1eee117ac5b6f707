"""The Redis event log against the real Redis (127.0.0.1:6379, or CALLCUE_TEST_REDIS_URL)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import redis.asyncio as redis

from callcue.call.v1 import call_pb2
from callcue.core.auth import ApiKeyAuthenticator, SingleTenant
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.settings import Environment
from callcue.notifier.app import build_server
from callcue.notifier.event_log import BadCursor, FellBehind, SequenceGap, UnknownSession
from callcue.notifier.redis_log import RedisEventLog
from callcue.notifier.settings import Settings
from callcue.notifier.v1 import notifier_service_pb2 as pb
from callcue.notifier.v1 import notifier_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from callcue.core.testing import ServiceTrust, TenantKeys

REDIS_URL = os.environ.get("CALLCUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SETTINGS = Settings.from_env(
    Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_AUTH": "none"})
)

TENANT = "acme"


def transcript(session: str, sequence: int) -> call_pb2.CallEvent:
    return call_pb2.CallEvent(
        session_id=session,
        sequence=sequence,
        transcript=call_pb2.TranscriptSegment(text=f"words {sequence}", is_final=True),
    )


def ended(session: str, sequence: int) -> call_pb2.CallEvent:
    return call_pb2.CallEvent(
        session_id=session,
        sequence=sequence,
        status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED),
    )


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"callcue-test:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def new_log(prefix: str, capacity: int = 1000) -> RedisEventLog:
    return RedisEventLog(
        REDIS_URL,
        events_per_session=capacity,
        session_ttl_seconds=600,
        prefix=prefix,
    )


async def collect(log: RedisEventLog, session: str, after: int) -> list[int]:
    return [event.sequence async for event in log.follow(TENANT, session, after)]


async def test_replays_then_follows_live_until_the_session_ends(prefix: str) -> None:
    log = new_log(prefix)
    for sequence in (1, 2, 3):
        assert await log.append(TENANT, transcript("s", sequence))
    reader = asyncio.create_task(collect(log, "s", 1))
    await asyncio.sleep(0.05)
    await log.append(TENANT, transcript("s", 4))
    await log.append(TENANT, ended("s", 5))
    assert await asyncio.wait_for(reader, 3) == [2, 3, 4, 5]
    await log.close()


async def test_followers_get_what_their_replica_appends_without_the_tail_read(
    prefix: str,
) -> None:
    log = new_log(prefix)
    # The replica's tail reader cannot reach Redis: only the append itself can hand the
    # events over in time (the followers' own fallback re-reads Redis once a second).
    log._blocking = redis.from_url("redis://127.0.0.1:9/0")
    await log.append(TENANT, transcript("s", 1))
    follower = log.follow(TENANT, "s", 0)
    assert (await anext(follower)).sequence == 1
    for sequence in (2, 3, 4):
        waiting = asyncio.ensure_future(anext(follower))
        await asyncio.sleep(0.01)
        await log.append(TENANT, transcript("s", sequence))
        assert (await asyncio.wait_for(waiting, 0.3)).sequence == sequence
    await follower.aclose()
    await log.close()


class _BreaksAfterOneRead:
    """A Redis client whose blocking reads fail, after the first, with an error nobody
    expects."""

    def __init__(self, real: redis.Redis) -> None:
        self._real = real
        self.reads = 0
        self.failed = asyncio.Event()

    async def xread(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        if self.reads > 1:
            self.failed.set()
            raise RuntimeError("unexpected")
        return await self._real.xread(*args, **kwargs)

    async def aclose(self) -> None:
        await self._real.aclose()


async def test_followers_go_on_when_their_tail_reader_fails(prefix: str) -> None:
    here, elsewhere = new_log(prefix), new_log(prefix)
    broken = _BreaksAfterOneRead(here._blocking)
    here._blocking = broken  # type: ignore[assignment]
    await elsewhere.append(TENANT, transcript("s", 1))
    follower = here.follow(TENANT, "s", 0)
    assert (await anext(follower)).sequence == 1
    second = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.1)
    await elsewhere.append(TENANT, transcript("s", 2))
    assert (await asyncio.wait_for(second, 3)).sequence == 2  # through the tail reader
    await asyncio.wait_for(broken.failed.wait(), 3)
    await elsewhere.append(TENANT, transcript("s", 3))
    await elsewhere.append(TENANT, ended("s", 4))

    async def rest() -> list[int]:
        return [event.sequence async for event in follower]

    assert await asyncio.wait_for(rest(), 5) == [3, 4]
    await here.close()
    await elsewhere.close()


async def test_duplicates_gaps_and_unknown_sessions(prefix: str) -> None:
    log = new_log(prefix)
    assert await log.append(TENANT, transcript("s", 1))
    assert not await log.append(TENANT, transcript("s", 1))
    with pytest.raises(SequenceGap, match="expected sequence 2, got 4"):
        await log.append(TENANT, transcript("s", 4))
    with pytest.raises(UnknownSession):
        await collect(log, "nope", 0)
    await log.close()


async def test_a_reader_too_far_behind_is_told_where_to_resume(prefix: str) -> None:
    log = new_log(prefix, capacity=100)
    for sequence in range(1, 400):
        await log.append(TENANT, transcript("s", sequence))
    await log.append(TENANT, ended("s", 400))
    with pytest.raises(FellBehind, match="resubscribe") as behind:
        await collect(log, "s", 0)
    assert behind.value.oldest == 301  # 100 kept
    resumed = await collect(log, "s", behind.value.oldest - 1)
    assert resumed == list(range(behind.value.oldest, 401))
    await log.close()


async def test_two_replicas_see_one_log(
    prefix: str,
    authenticator: ApiKeyAuthenticator,
    tenant_keys: TenantKeys,
    service_trust: ServiceTrust,
) -> None:
    """Events published on one notifier reach a subscriber of another, in order, and a
    subscriber that reconnects with its last sequence misses nothing and sees nothing twice."""
    logs = [new_log(prefix), new_log(prefix)]
    doors = service_trust.doors("notifier", authenticator)
    servers = [build_server(SETTINGS, log, doors) for log in logs]
    ports = [await server.start() for server in servers]
    gateway = service_trust.as_gateway(TENANT, "notifier")
    channels = [
        open_channel(f"127.0.0.1:{ports[0]}", credentials=gateway),
        open_channel(f"127.0.0.1:{ports[1]}", credentials=api_key(tenant_keys.acme)),
    ]
    a = pb_grpc.PublisherServiceStub(channels[0])
    b = pb_grpc.SubscriberServiceStub(channels[1])
    published = [transcript("call", n) for n in range(1, 60)] + [ended("call", 60)]

    async def publish() -> None:
        async def requests() -> AsyncIterator[pb.PublishRequest]:
            for event in published:
                yield pb.PublishRequest(event=event)
                await asyncio.sleep(0.005)

        acks = [ack.sequence async for ack in a.Publish(requests())]
        assert acks == list(range(1, 61))

    # A first event, so the session exists when the subscribers arrive.
    await logs[0].append(TENANT, published[0])
    publisher = asyncio.create_task(publish())
    seen: list[call_pb2.CallEvent] = []
    async for response in b.Subscribe(pb.SubscribeRequest(session_id="call")):
        seen.append(response.event)
        if len(seen) == 20:
            break  # the client drops; it resumes after the last sequence it saw
    async for response in b.Subscribe(
        pb.SubscribeRequest(session_id="call", after_sequence=seen[-1].sequence)
    ):
        seen.append(response.event)
    await publisher
    assert seen == published
    for channel in channels:
        await channel.close()
    for server, log in zip(servers, logs, strict=True):
        await server.stop(0)
        await log.close()


async def test_without_redis_publishers_get_unavailable_not_a_crash() -> None:
    log = RedisEventLog("redis://127.0.0.1:9/0", events_per_session=100, session_ttl_seconds=60)
    server = build_server(SETTINGS, log, SingleTenant())
    port = await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.PublisherServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async for _ in stub.Publish(iter([pb.PublishRequest(event=transcript("s", 1))])):
                pass
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "Redis" in (error.value.details() or "")
    await server.stop(0)
    await log.close()


async def test_a_tenant_feed_spans_sessions_and_replicas(prefix: str) -> None:
    a, b = new_log(prefix), new_log(prefix)

    async def feed(log: RedisEventLog, after: str, count: int) -> list[tuple[str, str, int]]:
        seen = []
        async for cursor, event in log.follow_tenant(TENANT, after):
            seen.append((cursor, event.session_id, event.sequence))
            if len(seen) == count:
                break
        return seen

    live = asyncio.create_task(feed(b, "", 3))
    await asyncio.sleep(0.2)
    await a.append(TENANT, transcript("one", 1))
    await a.append("globex", transcript("one", 1))
    await a.append(TENANT, transcript("two", 1))
    await a.append(TENANT, transcript("one", 1))  # a re-send: not in the feed twice
    await a.append(TENANT, ended("one", 2))
    first = await asyncio.wait_for(live, 10)
    assert [(s, n) for _, s, n in first] == [("one", 1), ("two", 1), ("one", 2)]
    await a.append(TENANT, ended("two", 2))
    resumed = await asyncio.wait_for(feed(a, first[1][0], 2), 10)
    assert [(s, n) for _, s, n in resumed] == [("one", 2), ("two", 2)]
    with pytest.raises(BadCursor):
        await feed(a, "1-0", 1)
    await a.close()
    await b.close()
