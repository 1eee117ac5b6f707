"""Flooding: many calls that never send anything, and a caller that never reads, while an
ordinary call goes through the same gateway unharmed."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from callcue.call.v1 import call_pb2
from callcue.gateway.v1 import gateway_service_pb2 as pb

if TYPE_CHECKING:
    from callcue.core.testing import Stack

SAMPLES = Path(__file__).parents[3] / "samples"
LINEAR16_16K = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)


async def test_idle_and_unread_streams_do_not_hold_up_a_real_call(stack: Stack) -> None:
    never = asyncio.Event()

    async def silent() -> AsyncIterator[pb.StreamCallRequest]:
        await never.wait()
        yield pb.StreamCallRequest()  # never reached

    idle = [stack.gateway.StreamCall(silent()) for _ in range(200)]

    with wave.open(str(SAMPLES / "sales_call.wav")) as wav:
        audio = wav.readframes(16000 * 12)

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(config=pb.CallConfig(audio_format=LINEAR16_16K))
        for begin in range(0, len(audio), 3200):
            yield pb.StreamCallRequest(audio=audio[begin : begin + 3200])

    # A caller that sends a whole call and never reads what comes back.
    unread = stack.gateway.StreamCall(requests())
    call = await asyncio.wait_for(_drain(stack.gateway.StreamCall(requests())), 120)
    assert call[-1].status.state == call_pb2.CALL_STATE_ENDED
    assert any(e.transcript.is_final for e in call)
    for stream in idle:
        assert not stream.done()
        stream.cancel()
    # The unread caller's events waited for it: they are all there when it finally reads.
    late = [response.event async for response in unread]
    assert late[-1].status.state == call_pb2.CALL_STATE_ENDED
    assert [e.sequence for e in late] == list(range(1, len(late) + 1))
    never.set()


async def _drain(
    call: grpc.aio.StreamStreamCall[pb.StreamCallRequest, pb.StreamCallResponse],
) -> list[call_pb2.CallEvent]:
    return [response.event async for response in call]
