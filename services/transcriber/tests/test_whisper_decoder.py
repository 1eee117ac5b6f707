from __future__ import annotations

import wave
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import WhisperModel

from callcue.transcriber.engine import BUNDLED, resolve_model
from callcue.transcriber.whisper_decoder import (
    DecodedWord,
    WhisperDecoder,
    inside_audio,
    is_word,
    normalised,
    without_repeated_tail,
)

SAMPLE = Path(__file__).parents[3] / "samples" / "sales_call.wav"


def words(text: str) -> tuple[DecodedWord, ...]:
    return tuple(
        DecodedWord(f" {word}", (index,), index * 0.3, index * 0.3 + 0.25, 0.9)
        for index, word in enumerate(text.split())
    )


def said(decoded: tuple[DecodedWord, ...]) -> str:
    return " ".join(normalised(word) for word in decoded)


def test_a_sentence_said_twice_in_a_row_is_a_decoder_loop() -> None:
    looped = words("How can I help you today? How can I help you today?")
    assert said(without_repeated_tail(looped)) == "how can i help you today"
    thrice = words("my card my card my card is lost is lost is lost")
    assert said(without_repeated_tail(thrice)) == "my card my card my card is lost is lost is lost"


def test_short_repeats_people_do_say_are_kept() -> None:
    for text in ("bye bye", "thank you thank you", "no no no", "very very very good"):
        assert said(without_repeated_tail(words(text))) == said(words(text))


def test_the_forced_prefix_is_never_cut() -> None:
    looped = words("send the contract send the contract")
    assert len(without_repeated_tail(looped, keep=4)) == 6
    assert len(without_repeated_tail(looped, keep=3)) == 3


@pytest.fixture(scope="module")
def model() -> WhisperModel:
    return WhisperModel(
        resolve_model(BUNDLED), device="cpu", compute_type="int8", local_files_only=True
    )


def clip(start: float, end: float) -> np.ndarray:
    with wave.open(str(SAMPLE)) as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    return (pcm[int(start * 16000) : int(end * 16000)] / 32768).astype(np.float32)


def test_short_windows_hear_what_the_30_s_window_hears(model: WhisperModel) -> None:
    """Utterances of the sample in the shortest of 15 s and 20 s encoder windows they fit
    with 8 s of silence after them, and in Whisper's 30 s window: the same words, in the
    audio. The last clip only fits the 20 s window."""
    short = WhisperDecoder(model, "en", short_windows=(15.0, 20.0))
    full = WhisperDecoder(model, "en")
    for start, end in ((0.2, 7.0), (22.2, 28.0), (33.0, 39.0), (0.2, 11.5)):
        audio = clip(start, end)
        heard = short.decode(audio)
        words = said(heard.words).split(), said(full.decode(audio).words).split()
        assert SequenceMatcher(None, *words).ratio() >= 0.8, words
        assert all(word.end <= len(audio) / 16000 + 0.05 for word in heard.words)


def test_no_word_starts_or_ends_in_the_silence_after_a_short_windows_audio() -> None:
    def word(text: str, start: float, end: float) -> DecodedWord:
        return DecodedWord(text=text, tokens=(1,), start=start, end=end, probability=0.9)

    kept = inside_audio(
        [word(" Uh", 0.2, 14.98), word(" yes", 0.5, 0.8), word(" Thank", 2.0, 2.3)], 0.9
    )
    assert [(w.text, w.start, w.end) for w in kept] == [(" Uh", 0.2, 0.9), (" yes", 0.5, 0.8)]


def test_marks_whisper_writes_for_noise_are_not_words_but_signs_of_the_text_are() -> None:
    assert not any(is_word(text) for text in (" .", " ...", " \u266a", " -", ""))
    # "27%" is aligned as " 27" and "%": dropping the "%" once turned 27% into 27.
    assert all(is_word(text) for text in (" %", " $", " &", " Hello", " 27"))
