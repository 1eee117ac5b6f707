from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from faster_whisper.audio import decode_audio
from faster_whisper.vad import get_vad_model

from callcue.transcriber.utterances import Utterance, UtteranceCutter
from callcue.transcriber.vad import WINDOW, StreamingVad

if TYPE_CHECKING:
    from conftest import TurnAudio

SAMPLE = Path(__file__).parents[3] / "samples" / "sales_call.wav"


def turn_starts() -> list[float]:
    turns = SAMPLE.with_suffix(".turns.txt").read_text().splitlines()
    return [float(re.match(r"\[([\d.]+)-", line).group(1)) for line in turns]  # type: ignore[union-attr]


def test_streaming_vad_matches_scoring_the_whole_file() -> None:
    audio = decode_audio(str(SAMPLE))[: WINDOW * 300]
    offline = get_vad_model()(audio.copy()).reshape(-1)
    vad = StreamingVad()
    online = np.concatenate([vad.push(audio[i : i + 1234]) for i in range(0, len(audio), 1234)])
    assert len(online) == len(audio) // WINDOW
    # faster-whisper zeroes part of the last window, so compare all but that one.
    assert np.allclose(online[:-1], offline[: len(online) - 1], atol=1e-5)


def test_each_turn_of_the_sample_call_is_one_utterance() -> None:
    audio = decode_audio(str(SAMPLE))
    cutter = UtteranceCutter(end_silence_ms=500)
    utterances = []
    for start in range(0, len(audio), 1600):
        utterances += cutter.push(audio[start : start + 1600])
    utterances += cutter.flush()
    starts = [u.start_seconds for u in utterances]
    assert len(starts) == len(turn_starts())
    assert np.allclose(starts, turn_starts(), atol=0.4)


def test_silence_and_noise_give_no_utterance() -> None:
    rng = np.random.default_rng(1)
    cutter = UtteranceCutter()
    quiet = (rng.normal(0, 0.003, 16000 * 5)).astype(np.float32)
    assert cutter.push(quiet) + cutter.flush() == []


def cut(audio: np.ndarray, cutter: UtteranceCutter) -> list[Utterance]:
    utterances = []
    for start in range(0, len(audio), 1600):
        utterances += cutter.push(audio[start : start + 1600])
    return utterances + cutter.flush()


def test_speech_the_vad_doubts_is_kept_for_whisper_to_hear(thin_line_call: TurnAudio) -> None:
    """The VAD decides where utterances begin and end, never which speech is dropped."""
    utterances = cut(thin_line_call.audio, UtteranceCutter(end_silence_ms=500, pad_ms=400))
    heard = np.zeros(len(thin_line_call.audio), dtype=bool)
    for utterance in utterances:
        heard[utterance.start : utterance.start + len(utterance.audio)] = True
    for start, end in thin_line_call.turns:
        share = heard[int(start * 16000) : int(end * 16000)].mean()
        assert share > 0.95, (start, end, share)


def test_noise_hum_and_music_are_never_speech_the_vad_is_sure_of(
    not_speech: list[tuple[str, np.ndarray]],
) -> None:
    for name, audio in not_speech:
        utterances = cut(audio, UtteranceCutter(end_silence_ms=500, pad_ms=400))
        # Louder than the floor (music, noise that starts): Whisper hears it, and judges
        # it strictly; steady sound is its own floor within a few seconds.
        assert all(u.doubtful for u in utterances), name
        if name != "music":
            assert sum(u.seconds for u in utterances) < 3.0, name


def test_long_speech_is_cut_below_the_maximum() -> None:
    audio = decode_audio(str(SAMPLE))
    cutter = UtteranceCutter(end_silence_ms=3000, max_seconds=4.0)
    utterances = cutter.push(audio) + cutter.flush()
    assert all(u.seconds <= 4.0 + 0.2 for u in utterances)
    assert len(utterances) > len(turn_starts())


def test_a_cut_is_refused_once_its_utterance_has_ended() -> None:
    audio = decode_audio(str(SAMPLE))
    cutter = UtteranceCutter(end_silence_ms=500)
    first_turn_end = int(6.06 * 16000)
    cutter.push(audio[: first_turn_end - 16000])
    opened = cutter.open_utterance()
    assert opened is not None
    assert cutter.cut_at(opened.start + 16000, utterance_start=opened.start)
    cut = cutter.open_utterance()
    assert cut is not None and cut.start == opened.start + 16000

    [ended] = cutter.push(audio[first_turn_end - 16000 : int(7.5 * 16000)])
    assert ended.start == cut.start
    # The next turn has begun; a late cut meant for the ended one must not touch it.
    following = cutter.open_utterance()
    assert following is not None
    assert not cutter.cut_at(ended.start + 32000, utterance_start=ended.start)
    still = cutter.open_utterance()
    assert still is not None
    assert (still.start, still.seconds) == (following.start, following.seconds)


def test_noise_straight_before_speech_is_an_utterance_of_its_own() -> None:
    """A burst of noise the VAD hears nothing in opens an utterance by loudness; once
    Silero hears speech it is split off, so Whisper judges it alone (in one window with the
    speech, Whisper skipped a greeting's first words)."""
    speech = decode_audio(str(SAMPLE))[int(0.4 * 16000) : int(6.2 * 16000)]
    noise = np.random.default_rng(3).normal(0, 0.05, 16000).astype(np.float32)
    audio = np.concatenate([np.zeros(16000, np.float32), noise, speech])
    first, second, *rest = cut(audio, UtteranceCutter(end_silence_ms=500, pad_ms=400))
    assert first.doubtful and not second.doubtful
    assert 0.5 <= first.start_seconds and first.start_seconds + first.seconds <= 2.1
    assert 1.6 <= second.start_seconds <= 2.1  # the turn starts at 2.1 s
    assert rest == []
