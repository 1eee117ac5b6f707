"""A live stream sent faster than real time: held back, and served after live streams."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path

from callcue.call.v1 import call_pb2
from callcue.transcriber.engine import WhisperEngine
from callcue.transcriber.stream import MAX_BACKLOG_SECONDS, LiveTranscription
from callcue.transcriber.v1 import transcriber_service_pb2 as pb

SAMPLE = Path(__file__).parents[3] / "samples" / "sales_call.wav"
LINEAR16 = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)
BYTES_PER_SECOND = 32000


async def test_a_fast_sender_is_held_back_not_buffered(engine: WhisperEngine) -> None:
    with wave.open(str(SAMPLE)) as wav:
        call = wav.readframes(wav.getnframes())
    pcm = call * 8  # about five minutes
    taken = 0

    async def audio() -> AsyncIterator[bytes]:
        nonlocal taken
        for start in range(0, len(pcm), BYTES_PER_SECOND):
            taken += len(pcm[start : start + BYTES_PER_SECOND])
            yield pcm[start : start + BYTES_PER_SECOND]

    live = LiveTranscription(
        engine,
        pb.StreamingConfig(audio_format=LINEAR16),
        end_of_utterance_ms=500,
        max_utterance_seconds=15,
    )
    responses = live.run(audio())
    assert (await anext(responses)).HasField("engine_status")
    assert (await anext(responses)).segment.is_final
    # Nobody reads on: the stream must stop taking audio once its backlog is full.
    while True:
        before = taken
        await asyncio.sleep(1.0)
        if taken == before:
            break
    assert live.ahead_of_real_time
    # The backlog, the utterance still open, the one decoded: far from all of it.
    assert taken / BYTES_PER_SECOND < MAX_BACKLOG_SECONDS + 40
    assert taken < len(pcm) / 3
    await responses.aclose()
