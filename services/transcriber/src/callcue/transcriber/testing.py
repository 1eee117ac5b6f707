"""What the transcriber's tests (and benches) stream and compare live speech with. Not for
production code."""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import AsyncIterator, Sequence

import numpy as np
from faster_whisper import WhisperModel

from callcue.call.v1 import call_pb2
from callcue.transcriber.engine import SpeechEngine, resolve_model
from callcue.transcriber.stream import LiveTranscription
from callcue.transcriber.v1 import transcriber_service_pb2 as pb

CHUNK = 1600  # 100 ms


def comparable(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


async def stream_live(
    engine: SpeechEngine,
    audio: np.ndarray,
    roles: Sequence[call_pb2.SpeakerRole.ValueType] = (),
) -> list[call_pb2.TranscriptSegment]:
    """Every segment of a live stream of ``audio`` (mono, or channels by samples with a
    role each), sent at real-time pace."""
    channels = 1 if audio.ndim == 1 else audio.shape[0]
    interleaved = audio if audio.ndim == 1 else audio.T.reshape(-1)
    pcm = (np.clip(interleaved, -1, 1) * 32767).astype("<i2").tobytes()
    step = CHUNK * 2 * channels

    async def chunks() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for index, offset in enumerate(range(0, len(pcm), step)):
            await asyncio.sleep(max(0.0, started + index * 0.1 - loop.time()))
            yield pcm[offset : offset + step]

    live = LiveTranscription(
        engine,
        pb.StreamingConfig(
            audio_format=call_pb2.AudioFormat(
                encoding=call_pb2.AUDIO_ENCODING_LINEAR16,
                sample_rate_hertz=16000,
                channel_count=channels,
            ),
            channel_roles=roles,
            interim_results=True,
        ),
        end_of_utterance_ms=500,
        max_utterance_seconds=15,
    )
    return [r.segment async for r in live.run(chunks()) if r.HasField("segment")]


def offline_words(audio: np.ndarray) -> list[str]:
    """Whisper's own long-form decoding of ``audio`` (no VAD), word by word."""
    model = WhisperModel(resolve_model("bundled"), compute_type="int8", local_files_only=True)
    segments, _ = model.transcribe(audio, language="en", vad_filter=False)
    return [comparable(w) for s in segments for w in s.text.split() if comparable(w)]


def missing_runs(offline: list[str], live: list[str]) -> list[list[str]]:
    """Runs of words offline decoding has and the live transcript lacks."""
    matcher = difflib.SequenceMatcher(None, offline, live, autojunk=False)
    runs = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        surplus = (i2 - i1) - (j2 - j1) if tag == "replace" else i2 - i1 if tag == "delete" else 0
        if surplus > 0:
            runs.append(offline[i2 - surplus : i2])
    return runs
