"""Per-tenant limits on concurrent live calls, counted across gateway replicas through
PostgreSQL, and sessions left behind by a gateway that died."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import psycopg
import pytest

from callcue.call.v1 import call_pb2
from callcue.core import database
from callcue.core.api_keys import ApiKeyStore
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.gateway.session_store import SessionStore
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc

if TYPE_CHECKING:
    from callcue.core.testing import Stack

LINEAR16_16K = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)


async def test_a_tenant_over_its_concurrent_calls_is_resource_exhausted(
    stack: Stack, key_store: ApiKeyStore
) -> None:
    _, key = await key_store.create_key("initrode")
    await key_store.set_call_limit("initrode", 1)
    hang_up = asyncio.Event()

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(config=pb.CallConfig(audio_format=LINEAR16_16K))
        yield pb.StreamCallRequest(audio=bytes(3200))
        await hang_up.wait()

    async with open_channel(f"127.0.0.1:{stack.gateway_port}", credentials=api_key(key)) as c:
        gateway = gateway_service_pb2_grpc.GatewayServiceStub(c)
        first = gateway.StreamCall(requests())
        started = await first.read()
        assert isinstance(started, pb.StreamCallResponse)

        second = gateway.StreamCall(requests())
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await second.read()
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "already has 1 live calls" in (error.value.details() or "")
        # Another tenant is not affected by initrode's limit.
        other = stack.gateway.StreamCall(requests())
        assert isinstance(await other.read(), pb.StreamCallResponse)

        hang_up.set()
        [_ async for _ in first]
        [_ async for _ in other]
        third = gateway.StreamCall(requests())
        assert isinstance(await third.read(), pb.StreamCallResponse)
        [_ async for _ in third]


async def test_sessions_of_a_dead_gateway_stop_counting_and_are_failed(database_url: str) -> None:
    pool = await database.open_pool(database_url, max_size=2)
    store = SessionStore(pool)
    config = pb.CallConfig(audio_format=LINEAR16_16K)
    crashed = await store.create("umbrella", pb.SESSION_SOURCE_LIVE, config, max_live_calls=1)
    with pytest.raises(Exception, match="already has 1 live calls"):
        await store.create("umbrella", pb.SESSION_SOURCE_LIVE, config, max_live_calls=1)
    await store.renew([crashed.session_id])
    # Its gateway died: nobody renews the lease, which lapses.
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE sessions SET lease_until = now() - interval '1 second' WHERE session_id = %s",
            (crashed.session_id,),
        )
    replacement = await store.create("umbrella", pb.SESSION_SOURCE_LIVE, config, max_live_calls=1)
    assert await store.fail_abandoned() >= 1
    failed = await store.get("umbrella", crashed.session_id)
    assert failed.state == call_pb2.CALL_STATE_FAILED
    assert failed.error_message == "the gateway running the session stopped"
    alive = await store.get("umbrella", replacement.session_id)
    assert alive.state == call_pb2.CALL_STATE_ACTIVE
    await pool.close()
