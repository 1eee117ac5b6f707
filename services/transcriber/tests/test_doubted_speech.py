"""Speech the VAD doubts is transcribed live; what is not speech still gives no text."""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import numpy as np
from faster_whisper import WhisperModel

from callcue.call.v1 import call_pb2
from callcue.transcriber.engine import WhisperEngine, resolve_model
from callcue.transcriber.stream import LiveTranscription
from callcue.transcriber.v1 import transcriber_service_pb2 as pb

if TYPE_CHECKING:
    from conftest import TurnAudio

LINEAR16 = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)
CHUNK = 1600  # 100 ms


def comparable(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


async def stream_live(engine: WhisperEngine, audio: np.ndarray) -> list[call_pb2.TranscriptSegment]:
    """Every segment of a live stream of ``audio``, sent at real-time pace."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()

    async def chunks() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for index, offset in enumerate(range(0, len(pcm), CHUNK * 2)):
            await asyncio.sleep(max(0.0, started + index * 0.1 - loop.time()))
            yield pcm[offset : offset + CHUNK * 2]

    live = LiveTranscription(
        engine,
        pb.StreamingConfig(audio_format=LINEAR16, interim_results=True),
        end_of_utterance_ms=500,
        max_utterance_seconds=15,
    )
    return [r.segment async for r in live.run(chunks()) if r.HasField("segment")]


def missing_runs(offline: list[str], live: list[str]) -> list[list[str]]:
    """Runs of words offline decoding has and the live transcript lacks."""
    matcher = difflib.SequenceMatcher(None, offline, live, autojunk=False)
    runs = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        surplus = (i2 - i1) - (j2 - j1) if tag == "replace" else i2 - i1 if tag == "delete" else 0
        if surplus > 0:
            runs.append(offline[i2 - surplus : i2])
    return runs


async def test_a_thin_line_loses_no_words_that_offline_decoding_keeps(
    engine: WhisperEngine, thin_line_call: TurnAudio
) -> None:
    model = WhisperModel(resolve_model("bundled"), compute_type="int8", local_files_only=True)
    segments, _ = model.transcribe(thin_line_call.audio, language="en", vad_filter=False)
    offline = [comparable(w) for s in segments for w in s.text.split() if comparable(w)]
    finals = [s for s in await stream_live(engine, thin_line_call.audio) if s.is_final]
    live = [comparable(w.text) for s in finals for w in s.words if comparable(w.text)]
    runs = missing_runs(offline, live)
    assert all(len(run) <= 2 for run in runs), (runs, " | ".join(s.text for s in finals))
    # Every turn was heard, the last (Silero's median window 0.02) included.
    heard = [s.start_offset.ToTimedelta().total_seconds() for s in finals]
    for start, end in thin_line_call.turns:
        assert any(start - 0.5 <= t < end for t in heard), (start, end, heard)


async def test_silence_noise_hum_and_music_give_no_text(
    engine: WhisperEngine, not_speech: list[tuple[str, np.ndarray]]
) -> None:
    audio = np.concatenate([piece for _, piece in not_speech] + [np.zeros(16000, np.float32)])
    segments = await stream_live(engine, audio)
    assert [(s.is_final, s.text) for s in segments] == []
