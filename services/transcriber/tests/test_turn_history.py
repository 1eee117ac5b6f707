"""A party's earlier turns joined before a short turn: which turns, and which words."""

from __future__ import annotations

import numpy as np
import pytest

from callcue.transcriber.audio import SAMPLE_RATE
from callcue.transcriber.turn_history import (
    MAX_HISTORY_SECONDS,
    MAX_TURN_SECONDS,
    TurnHistory,
    after_join,
    context_without,
)
from callcue.transcriber.whisper_decoder import DecodedWord, Hypothesis


def seconds(length: float, value: float = 0.0) -> np.ndarray:
    return np.full(int(length * SAMPLE_RATE), value, dtype=np.float32)


def test_a_first_turn_and_a_long_turn_are_decoded_alone() -> None:
    history = TurnHistory()
    assert history.join(seconds(1.0)) is None
    history.add(0, seconds(2.0))
    assert history.join(seconds(MAX_TURN_SECONDS)) is None


def test_a_short_turn_follows_the_latest_turns_that_fit() -> None:
    history = TurnHistory()
    history.add(0, seconds(3.0, 0.1))
    history.add(100, seconds(2.0, 0.2))
    history.add(200, seconds(2.5, 0.3))
    turn = seconds(1.0, 0.9)
    joined = history.join(turn)
    assert joined is not None
    # 2.0 + 2.5 s fit the 5 s of history; the 3 s before them would not.
    assert joined.turns == frozenset({100, 200})
    assert joined.join == 4.5
    assert len(joined.audio) == int(5.5 * SAMPLE_RATE)
    assert joined.audio[0] == np.float32(0.2) and joined.audio[-1] == np.float32(0.9)


def test_the_joined_audio_stays_within_the_shortest_encoder_window() -> None:
    history = TurnHistory()
    history.add(0, seconds(2.5))
    history.add(1, seconds(2.5))
    joined = history.join(seconds(2.5))
    assert joined is not None
    assert joined.turns == frozenset({1})  # 2.5 + 2.5 + 2.5 s would pass 7 s


def test_the_history_keeps_only_the_last_seconds() -> None:
    history = TurnHistory()
    for key in range(10):
        history.add(key, seconds(1.0))
    joined = history.join(seconds(0.5))
    assert joined is not None
    assert joined.turns == frozenset(range(10 - int(MAX_HISTORY_SECONDS), 10))


def word(text: str, start: float, end: float) -> DecodedWord:
    return DecodedWord(f" {text}", (1,), start, end, 0.9)


def test_a_word_belongs_to_the_side_of_the_join_its_middle_is_on() -> None:
    heard = Hypothesis(
        words=(
            word("my", 1.0, 1.3),
            word("card.", 1.35, 2.2),  # ran 0.2 s past the join, mostly before it
            word("Okay,", 1.7, 2.5),  # took the silence before it, mostly after the join
            word("thanks.", 2.5, 2.7),
        ),
        no_speech_probability=0.1,
        average_log_probability=-0.3,
        language="en",
    )
    turn = after_join(heard, 2.0)
    assert [w.text for w in turn.words] == [" Okay,", " thanks."]
    assert turn.words[0].start == 0.0 and turn.words[1].end == pytest.approx(0.7)
    assert turn.no_speech_probability == 0.1


def test_the_prompt_leaves_out_the_words_heard_again() -> None:
    said = [(0, 0, "Which"), (0, 0, "card?"), (1, 5, "My"), (1, 5, "debit"), (0, 9, "Okay.")]
    assert context_without(said, 1, frozenset({5})) == ["Which", "card?", "Okay."]
    assert context_without(said, 0, frozenset({5})) == [w for _, _, w in said]
