"""Calls beyond the transcribers' capacity: each replica takes what it is sized for, a call
no replica can take is refused with RESOURCE_EXHAUSTED and the transcriber's retry hint,
and the calls already running go on, even when one replica dies and the other, full, must
take its call over."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from callcue.call.v1 import call_pb2
from callcue.core import credentials, database
from callcue.core.auth import ApiKeyAuthenticator
from callcue.core.channel import open_channel
from callcue.core.settings import Environment
from callcue.gateway import app as gateway_app
from callcue.gateway.call_session import Downstream
from callcue.gateway.redaction_policy import PolicyStore
from callcue.gateway.session_store import SessionStore
from callcue.gateway.settings import Settings as GatewaySettings
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.transcriber import app as transcriber_app
from callcue.transcriber.settings import Settings as TranscriberSettings

if TYPE_CHECKING:
    from callcue.core.testing import ServiceTrust, Stack

LINEAR16_16K = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)


async def test_a_call_no_transcriber_can_take_is_refused_with_a_retry_hint(
    stack: Stack,
    database_url: str,
    authenticator: ApiKeyAuthenticator,
    service_trust: ServiceTrust,
) -> None:
    env = Environment(
        {
            "CALLCUE_HOST": "127.0.0.1",
            "CALLCUE_PORT": "0",
            "DATABASE_URL": database_url,
            **service_trust.environment(),
        }
    )
    pool = await database.open_pool(database_url, max_size=4)
    settings = dataclasses.replace(TranscriberSettings.from_env(env), max_live_channels=1)
    engine = transcriber_app.load_engine(settings)
    replicas = [
        transcriber_app.build_server(settings, engine, service_trust.doors("transcriber", None))
        for _ in range(2)
    ]
    for replica in replicas:
        await replica.start()
        await replica.set_serving()
    downstream, channels = Downstream.connect(
        "ipv4:" + ",".join(f"127.0.0.1:{replica.port}" for replica in replicas),
        f"127.0.0.1:{stack.detector_port}",
        f"127.0.0.1:{stack.notifier_port}",
        signer=service_trust.signer,
    )
    gateway, _ = gateway_app.build_server(
        GatewaySettings.from_env(env),
        downstream,
        SessionStore(pool),
        authenticator,
        PolicyStore(pool),
    )
    port = await gateway.start()
    hang_up = asyncio.Event()

    async def call(held: bool) -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(config=pb.CallConfig(audio_format=LINEAR16_16K))
        for _ in range(5):
            yield pb.StreamCallRequest(audio=bytes(3200))
            await asyncio.sleep(0.1)
        if held:
            await hang_up.wait()

    try:
        async with open_channel(
            f"127.0.0.1:{port}", credentials=credentials.api_key(stack.api_key)
        ) as channel:
            client = gateway_service_pb2_grpc.GatewayServiceStub(channel)
            running = [client.StreamCall(call(held=True)) for _ in range(2)]
            for stream in running:
                assert (await stream.read()).event.status.state == call_pb2.CALL_STATE_ACTIVE
            await asyncio.sleep(1.0)  # both have reached a transcriber replica
            began = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                [r async for r in client.StreamCall(call(held=False))]
            assert time.monotonic() - began < 5.0
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "live channels" in (refused.value.details() or "")
            status = rpc_status.from_call(refused.value)  # type: ignore[arg-type]
            hint = error_details_pb2.RetryInfo()
            assert any(d.Unpack(hint) for d in status.details if d.Is(hint.DESCRIPTOR))
            assert hint.retry_delay.seconds > 0
            # A replica dies: its running call moves to the other, full as it is, while the
            # other's call still runs.
            events: list[list[call_pb2.CallEvent]] = [[], []]

            async def follow(stream: Any, into: list[call_pb2.CallEvent]) -> None:
                while (response := await stream.read()) != grpc.aio.EOF:
                    into.append(response.event)

            following = [
                asyncio.create_task(follow(stream, into))
                for stream, into in zip(running, events, strict=True)
            ]
            await asyncio.sleep(0.5)
            before = [len(call_events) for call_events in events]
            await replicas[0].stop(0)

            def moved() -> bool:
                for call_events, seen in zip(events, before, strict=True):
                    said = [e.status.message for e in call_events[seen:] if e.HasField("status")]
                    lost = [i for i, m in enumerate(said) if m.startswith("transcriber lost")]
                    if lost and any(m.startswith("transcribing") for m in said[lost[0] :]):
                        return True
                return False

            deadline = time.monotonic() + 10.0
            while not moved():
                assert time.monotonic() < deadline, "the lost replica's call was not taken over"
                await asyncio.sleep(0.1)
            hang_up.set()
            await asyncio.gather(*following)
            for call_events in events:
                assert call_events[-1].status.state == call_pb2.CALL_STATE_ENDED, (
                    "the running calls go on",
                    call_events[-1].status.message,
                )
    finally:
        await gateway.stop(0)
        for replica in replicas:
            await replica.stop(0)
        for channel in channels:
            await channel.close()
        engine.close()
        await pool.close()
