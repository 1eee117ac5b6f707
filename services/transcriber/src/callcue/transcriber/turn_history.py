"""A speaker's recent turns, heard again before a short turn of theirs.

On a channel that carries one party (a dual-channel call), a short turn decoded alone is
Whisper guessing from a second of audio: "go ahead all right" for "alright", words made of
a breath. Decoded after the same speaker's previous turns (their audio joined, the silence
between left as it is), Whisper hears the voice and the sentence it continues, and only the
words after the join are taken: on `hvb_calls` uploads the channels' WER fell from 18.2% to
15.3%, live from 18.8% to 16.5-17.1% (docs/benchmarks.md, "A party's short turns"). Not on a mixed
channel: there the previous turns are the other party's too, and Whisper skipped short
answers after them.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

import numpy as np
import structlog

from callcue.call.v1 import call_pb2
from callcue.transcriber.audio import SAMPLE_RATE, Samples
from callcue.transcriber.utterances import Utterance
from callcue.transcriber.whisper_decoder import Hypothesis

log = structlog.get_logger("callcue.transcriber")

# Roles of a channel that carries one party.
ONE_PARTY = (call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT)
# A turn this long or longer is decoded alone: longer turns carry their own context, and
# joining them measured worse (docs/benchmarks.md).
MAX_TURN_SECONDS = 3.0
# At most this much of earlier turns, and the whole decode within 7 s, so it still fits
# the shortest encoder window with its padding.
MAX_HISTORY_SECONDS = 5.0
MAX_JOINED_SECONDS = 7.0


@dataclass(frozen=True)
class Joined:
    audio: Samples
    join: float  # seconds of earlier turns before the turn itself
    turns: frozenset[int]  # the earlier turns heard, by their keys


class TurnHistory:
    """The last few seconds of one channel's ended turns, each under a key (the sample its
    utterance started at) that the words said in it are filed under too."""

    def __init__(self) -> None:
        self._turns: deque[tuple[int, Samples]] = deque()
        self._samples = 0

    def add(self, key: int, audio: Samples) -> None:
        self._turns.append((key, audio))
        self._samples += len(audio)
        while self._turns and self._samples > MAX_HISTORY_SECONDS * SAMPLE_RATE:
            self._samples -= len(self._turns.popleft()[1])

    def join(self, audio: Samples) -> Joined | None:
        """``audio`` (a turn) after the most recent turns that fit, or None when it is to be
        decoded alone (too long, or no earlier turn fits)."""
        seconds = len(audio) / SAMPLE_RATE
        if seconds >= MAX_TURN_SECONDS:
            return None
        room = min(MAX_HISTORY_SECONDS, MAX_JOINED_SECONDS - seconds) * SAMPLE_RATE
        taken: list[tuple[int, Samples]] = []
        used = 0
        for key, earlier in reversed(self._turns):
            if used + len(earlier) > room:
                break
            taken.insert(0, (key, earlier))
            used += len(earlier)
        if not taken:
            return None
        return Joined(
            np.concatenate([a for _, a in taken] + [audio]),
            used / SAMPLE_RATE,
            frozenset(key for key, _ in taken),
        )


def after_join(hypothesis: Hypothesis, join: float) -> Hypothesis:
    """The words of a joined decode that belong to the turn after ``join``, timed from it.
    Whisper gives the silence between two turns to a word on one side or the other
    ("card." running 0.3 s past the join, "Okay." starting 0.6 s before it): a word is the
    turn's when its middle is. A first word that took all the silence before it ("All"
    from 1.2 s before to 0.4 s after) is lost that way; rules on a word's end kept such
    words but took more of the earlier turn's again (docs/benchmarks.md)."""
    words = tuple(
        dataclasses.replace(word, start=max(word.start - join, 0.0), end=word.end - join)
        for word in hypothesis.words
        if (word.start + word.end) / 2 >= join
    )
    return dataclasses.replace(hypothesis, words=words)


async def decode_turn(
    decode: Callable[[Samples, frozenset[int]], Awaitable[Hypothesis | None]],
    history: TurnHistory | None,
    utterance: Utterance,
) -> Hypothesis | None:
    """``utterance`` decoded after the earlier turns of ``history`` that fit (alone without
    a history, or when none fit): ``decode(audio, turns)`` decodes ``audio`` with a prompt
    that leaves out the words of ``turns``."""
    joined = history.join(utterance.audio) if history is not None else None
    if joined is None:
        return await decode(utterance.audio, frozenset())
    heard = await decode(joined.audio, joined.turns)
    if heard is None:
        return None
    turn = after_join(heard, joined.join)
    if utterance.doubtful or (turn.words and not turn.is_noise()):
        return turn
    # Whisper heard the earlier turns and nothing after them ("Savings." after "The amount
    # is $135", a lone "Hello."): a turn the VAD is sure of is heard alone too.
    log.debug("a joined decode kept no words: decoding the turn alone")
    return await decode(utterance.audio, frozenset())


def context_without(
    said: Collection[tuple[int, int, str]], channel: int, turns: frozenset[int]
) -> list[str]:
    """The call's last words, less those of ``turns`` of ``channel``, which the decode hears
    again: left in the prompt too, Whisper took them as said already and skipped them
    (deletions 16 -> 25-29 on `hvb_calls`)."""
    return [word for ch, key, word in said if not (ch == channel and key in turns)]
