"""Speech the VAD doubts is transcribed live; what is not speech still gives no text."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from callcue.call.v1 import call_pb2
from callcue.transcriber.engine import WhisperEngine
from callcue.transcriber.testing import comparable, missing_runs, offline_words, stream_live

if TYPE_CHECKING:
    from conftest import TurnAudio

LINEAR16 = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)
CHUNK = 1600  # 100 ms


async def test_a_thin_line_loses_no_words_that_offline_decoding_keeps(
    engine: WhisperEngine, thin_line_call: TurnAudio
) -> None:
    offline = offline_words(thin_line_call.audio)
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
