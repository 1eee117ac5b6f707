"""Live streams: long turns cut where words settle, senders faster than real time held
back and served after live streams, doubted and declined decodes."""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import itertools
import wave
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from callcue.call.v1 import call_pb2
from callcue.transcriber.audio import Samples
from callcue.transcriber.engine import Priority, Recognised, WhisperEngine
from callcue.transcriber.stream import (
    MAX_BACKLOG_SECONDS,
    SETTLE_CUT_MARGIN_SECONDS,
    LiveTranscription,
    _carried_over,
    _CarriedOver,
)
from callcue.transcriber.testing import comparable, missing_runs, offline_words, stream_live
from callcue.transcriber.v1 import transcriber_service_pb2 as pb
from callcue.transcriber.whisper_decoder import DecodedWord, Hypothesis

if TYPE_CHECKING:
    from conftest import PartyAudio

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


@pytest.mark.parametrize(("replayed", "ahead"), [(20, False), (0, True)])
async def test_a_takeovers_replay_is_not_a_stream_ahead_of_real_time(
    engine: WhisperEngine, replayed: int, ahead: bool
) -> None:
    """A gateway taking a call over sends the audio after the call's last final word at
    once. Said in the config (``replayed``), that burst leaves the stream live; the same
    burst unannounced is a client running ahead, whose decodes wait."""
    config = pb.StreamingConfig(audio_format=LINEAR16, takes_over=True)
    config.replayed.FromSeconds(replayed)
    sent = asyncio.Event()

    async def audio() -> AsyncIterator[bytes]:
        yield bytes(BYTES_PER_SECOND * 20)
        sent.set()
        await asyncio.Event().wait()  # the call goes on

    live = LiveTranscription(engine, config, end_of_utterance_ms=500, max_utterance_seconds=15)

    async def read() -> None:
        async for _ in live.run(audio()):
            pass

    reading = asyncio.create_task(read())
    try:
        await asyncio.wait_for(sent.wait(), 10)
        await asyncio.sleep(0.2)
        assert live.ahead_of_real_time is ahead
    finally:
        reading.cancel()


class SlowPauses:
    """The real engine, with each decode at a pause taking long enough that the pause
    has ended the utterance by the time it returns, as on a loaded machine."""

    def __init__(self, engine: WhisperEngine, delay: float) -> None:
        self._engine = engine
        self._delay = delay
        self.name, self.model_name, self.notice = engine.name, engine.model_name, ""
        self.late_pause_decodes = 0

    async def decode(
        self, audio: Samples, *, priority: Priority = Priority.FINAL, **options: Any
    ) -> Hypothesis | None:
        if priority == Priority.ENDPOINT:
            await asyncio.sleep(self._delay)
            self.late_pause_decodes += 1
        return await self._engine.decode(audio, priority=priority, **options)

    def transcribe_long(
        self, audio: Samples, *, language: str, hotwords: Sequence[str], one_party: bool = False
    ) -> AsyncIterator[Recognised]:
        return self._engine.transcribe_long(
            audio, language=language, hotwords=hotwords, one_party=one_party
        )

    def oldest_final_wait(self) -> float:
        return self._engine.oldest_final_wait()

    def backlog(self) -> float:
        return self._engine.backlog()

    def close(self) -> None:
        pass


async def test_words_settled_as_the_utterance_ends_are_sent_once(engine: WhisperEngine) -> None:
    """A decode at a pause settles words past ``settle_seconds`` only after the pause has
    ended the utterance: the stream must not then decode the whole utterance again as
    if nothing of it had been sent (it once did, and every word came twice)."""
    with wave.open(str(SAMPLE)) as wav:
        pcm = wav.readframes(int(18.0 * 16000))  # the first three turns
    chunk = BYTES_PER_SECOND // 10

    async def audio() -> AsyncIterator[bytes]:
        for start in range(0, len(pcm), chunk):
            await asyncio.sleep(0.05)  # twice real time: pauses still end utterances
            yield pcm[start : start + chunk]

    slow = SlowPauses(engine, delay=0.6)
    live = LiveTranscription(
        slow,
        pb.StreamingConfig(audio_format=LINEAR16, interim_results=True),
        end_of_utterance_ms=300,
        max_utterance_seconds=15,
        settle_seconds=0.5,
    )
    finals = [r.segment async for r in live.run(audio()) if r.segment.is_final]
    assert slow.late_pause_decodes >= 1
    words = [w for segment in finals for w in segment.words]
    for before, after in itertools.pairwise(words):
        assert after.start_offset.ToTimedelta() >= before.start_offset.ToTimedelta(), (
            "a word sent again",
            " | ".join(segment.text for segment in finals),
        )
    said = SAMPLE.with_suffix(".txt").read_text().split()
    assert len(words) <= 1.2 * len(said[:39])  # the first three turns


class DoubtfulStarts(SlowPauses):
    """The real engine, reporting the doubt Whisper shows on noise before speech (a
    no-speech probability of 0.55) for an utterance's decodes of its first seconds."""

    def __init__(self, engine: WhisperEngine, seconds: float) -> None:
        super().__init__(engine, delay=0.0)
        self._samples = int(seconds * 16000)
        self.doubtful = 0

    async def decode(
        self, audio: Samples, *, priority: Priority = Priority.FINAL, **options: Any
    ) -> Hypothesis | None:
        hypothesis = await self._engine.decode(audio, priority=priority, **options)
        if hypothesis is None or options.get("prefix") or len(audio) >= self._samples:
            return hypothesis
        self.doubtful += 1
        return dataclasses.replace(hypothesis, no_speech_probability=0.55)


async def test_words_whisper_doubts_wait_for_more_audio(engine: WhisperEngine) -> None:
    """Noise at the start of an utterance once went out as final text ("That's your first
    step." before a caller's "Hello"): a decode of the first second or two that Whisper
    doubts is speech must not settle or show words; decodes of more audio decide."""
    with wave.open(str(SAMPLE)) as wav:
        pcm = wav.readframes(int(6.5 * 16000))  # the rep's first turn, one utterance
    chunk = BYTES_PER_SECOND // 10

    async def audio() -> AsyncIterator[bytes]:
        for start in range(0, len(pcm), chunk):
            await asyncio.sleep(0.1)
            yield pcm[start : start + chunk]

    doubting = DoubtfulStarts(engine, seconds=2.5)
    live = LiveTranscription(
        doubting,
        pb.StreamingConfig(audio_format=LINEAR16, interim_results=True),
        end_of_utterance_ms=500,
        max_utterance_seconds=15,
    )
    segments = [r.segment async for r in live.run(audio()) if r.HasField("segment")]
    assert doubting.doubtful >= 1
    first = segments[0]
    # Nothing went out before a decode of at least 2.5 s of the utterance's audio.
    assert first.words[-1].end_offset.ToTimedelta().total_seconds() > 2.0, first.text
    said = " ".join(s.text for s in segments if s.is_final).lower()
    assert "jordan" in said and "acme analytics" in said, said


class DeclinesPauses(SlowPauses):
    """The real engine, declining every decode at a pause as the OpenAI engine does."""

    def __init__(self, engine: WhisperEngine) -> None:
        super().__init__(engine, delay=0.0)
        self.pause_decodes = 0

    async def decode(
        self, audio: Samples, *, priority: Priority = Priority.FINAL, **options: Any
    ) -> Hypothesis | None:
        if priority == Priority.ENDPOINT:
            self.pause_decodes += 1
            return None
        return await self._engine.decode(audio, priority=priority, **options)


async def test_a_declined_pause_decode_is_not_asked_again(engine: WhisperEngine) -> None:
    """An engine may decline the decode at a pause; the stream then waits for the
    utterance's end. It once asked again at once, in a busy loop for as long as the pause
    lasted: here the sender goes quiet for a second inside a pause."""
    with wave.open(str(SAMPLE)) as wav:
        pcm = wav.readframes(int(6.5 * 16000))  # the rep's first turn, then 0.44 s of pause
    chunk = BYTES_PER_SECOND // 10

    async def audio() -> AsyncIterator[bytes]:
        for start in range(0, len(pcm), chunk):
            await asyncio.sleep(0.02)
            yield pcm[start : start + chunk]
        await asyncio.sleep(1.0)
        yield bytes(BYTES_PER_SECOND)  # a second of silence ends the utterance

    declining = DeclinesPauses(engine)
    live = LiveTranscription(
        declining,
        pb.StreamingConfig(audio_format=LINEAR16, interim_results=True),
        end_of_utterance_ms=800,
        max_utterance_seconds=15,
    )
    finals = [r.segment async for r in live.run(audio()) if r.segment.is_final]
    assert 1 <= declining.pause_decodes <= 5
    said = " ".join(s.text for s in finals).lower()
    assert "jordan" in said and "acme analytics" in said, said


async def test_a_long_turn_cut_where_its_words_settle_neither_loses_nor_doubles_words(
    engine: WhisperEngine, long_turn: np.ndarray
) -> None:
    """20 s of one speaker with no pause long enough to end an utterance, at real-time
    pace: it is cut where settled words pass 8 s, and the words around each cut are
    heard once, as offline decoding of the same audio hears them."""
    offline = offline_words(long_turn)
    finals = [s for s in await stream_live(engine, long_turn) if s.is_final]
    live = [comparable(w.text) for s in finals for w in s.words if comparable(w.text)]
    said = " | ".join(s.text for s in finals)
    assert all(len(run) <= 2 for run in missing_runs(offline, live)), said
    doubled = [a for a, b in itertools.pairwise(live) if a == b]
    assert doubled == [a for a, b in itertools.pairwise(offline) if a == b], said
    assert difflib.SequenceMatcher(None, offline, live).ratio() >= 0.9, said
    # Words became final while the turn went on, so some were settled past a cut.
    ends = [s.end_offset.ToTimedelta().total_seconds() for s in finals]
    assert sum(end < len(long_turn) / 16000 - 8 for end in ends) >= 2, ends


def test_the_last_settled_second_is_carried_over_the_cut() -> None:
    words = [
        DecodedWord(f" w{index}", (index,), index * 0.4, index * 0.4 + 0.3, 0.9)
        for index in range(25)
    ]
    carried = _carried_over(words)  # the last word ends at 9.9 s, w23 starts at 9.2 s
    assert [w.text for w in carried.words] == [" w23", " w24"]
    assert carried.cut == pytest.approx(9.2 - SETTLE_CUT_MARGIN_SECONDS)
    assert carried.words[0].start == pytest.approx(SETTLE_CUT_MARGIN_SECONDS)
    # A word longer than the overlap is not carried: the cut falls at its end.
    long_word = [DecodedWord(" long", (1,), 7.0, 8.5, 0.9)]
    assert _carried_over(long_word) == _CarriedOver(8.5, ())


class Scripted(SlowPauses):
    """Whisper as it decodes a growing "It grew 13% in Asia": the first partial decode
    hears "It grew 13", the second "It grew 13% in", the rest all of it."""

    SAID = (" It", " grew", " 13", "%", " in", " Asia.")
    HEARD = (3, 5)

    def __init__(self, engine: WhisperEngine) -> None:
        super().__init__(engine, delay=0.0)
        self._partials = 0

    async def decode(
        self, audio: Samples, *, priority: Priority = Priority.FINAL, **options: Any
    ) -> Hypothesis | None:
        heard = len(self.SAID)
        if priority == Priority.PARTIAL:
            heard = self.HEARD[self._partials] if self._partials < len(self.HEARD) else heard
            self._partials += 1
        said = self.SAID[:heard]
        words = tuple(
            DecodedWord(text, (index,), index * 0.2, index * 0.2 + 0.15, 0.9)
            for index, text in enumerate(said)
        )
        return Hypothesis(words, 0.01, -0.2, "en")


async def test_a_word_is_not_final_without_what_whisper_wrote_onto_it(
    engine: WhisperEngine,
) -> None:
    """ "13" agreed on by two decodes waits for its "%": final apart, they were two words
    ("13 %") in every transcript."""
    with wave.open(str(SAMPLE)) as wav:
        pcm = wav.readframes(int(6.0 * 16000))  # the rep's first turn

    async def audio() -> AsyncIterator[bytes]:
        for start in range(0, len(pcm), BYTES_PER_SECOND // 10):
            await asyncio.sleep(0)
            yield pcm[start : start + BYTES_PER_SECOND // 10]

    live = LiveTranscription(
        Scripted(engine),
        pb.StreamingConfig(audio_format=LINEAR16),
        end_of_utterance_ms=500,
        max_utterance_seconds=15,
    )
    finals = [r.segment async for r in live.run(audio()) if r.segment.is_final]
    assert len(finals) >= 2, "some words were final before the utterance ended"
    assert " ".join(segment.text for segment in finals) == "It grew 13% in Asia."


ONE_PARTY_EACH = (call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT)


class Recording(SlowPauses):
    """The real engine; the words of every decode longer than ``blank_over`` seconds are
    dropped, as if Whisper had heard nothing there."""

    def __init__(self, engine: WhisperEngine, blank_over: float | None = None) -> None:
        super().__init__(engine, delay=0.0)
        self._blank_over = None if blank_over is None else int(blank_over * 16000)
        self.seconds: list[float] = []

    async def decode(
        self, audio: Samples, *, priority: Priority = Priority.FINAL, **options: Any
    ) -> Hypothesis | None:
        self.seconds.append(len(audio) / 16000)
        hypothesis = await self._engine.decode(audio, priority=priority, **options)
        if hypothesis is not None and self._blank_over and len(audio) > self._blank_over:
            return dataclasses.replace(hypothesis, words=())
        return hypothesis


def said_live(finals: Sequence[call_pb2.TranscriptSegment], channel: int) -> list[str]:
    return [
        comparable(w.text)
        for s in finals
        if s.channel == channel
        for w in s.words
        if comparable(w.text)
    ]


async def test_a_partys_short_turns_are_heard_after_their_earlier_ones(
    engine: WhisperEngine, short_turns_call: PartyAudio
) -> None:
    """On a channel of one party, a short turn is decoded after that party's previous
    turns, and only its own words are taken: none of the earlier turn's come again."""
    audio, said = short_turns_call.channels, short_turns_call.said
    recording = Recording(engine)
    finals = [s for s in await stream_live(recording, audio, ONE_PARTY_EACH) if s.is_final]
    for channel in (0, 1):
        live = said_live(finals, channel)
        # Word for word but one misheard (espeak's voices): no word lost, none twice.
        assert len(live) == len(said[channel]), " | ".join(s.text for s in finals)
        assert sum(a != b for a, b in zip(live, said[channel], strict=True)) <= 1, live
    longest_turn = 2.3 + 0.8  # the first turn, with its padding
    assert max(recording.seconds) > longest_turn + 1.0, recording.seconds


async def test_a_turn_whisper_skips_after_the_earlier_ones_is_heard_alone(
    engine: WhisperEngine, short_turns_call: PartyAudio
) -> None:
    """Whisper sometimes writes the earlier turns and nothing after them ("Savings." after
    "The amount is $135"): the turn is then decoded alone, and keeps its words."""
    audio, said = short_turns_call.channels, short_turns_call.said
    skipping = Recording(engine, blank_over=3.5)  # every turn alone is shorter
    finals = [s for s in await stream_live(skipping, audio, ONE_PARTY_EACH) if s.is_final]
    assert max(skipping.seconds) > 3.5, skipping.seconds
    for channel in (0, 1):
        lost = missing_runs(said[channel], said_live(finals, channel))
        assert lost == [], (lost, " | ".join(s.text for s in finals))


async def test_noise_after_a_partys_turn_gives_no_text(
    engine: WhisperEngine, short_turns_call: PartyAudio, not_speech: list[tuple[str, np.ndarray]]
) -> None:
    """Noise on a party's channel is decoded after their last turn, which Whisper hears
    as speech: what comes after the join must still be nothing."""
    audio, said = short_turns_call.channels, short_turns_call.said
    first_turn = audio[0, : int(3.2 * 16000)]
    noise = np.concatenate([piece for _, piece in not_speech] + [np.zeros(16000, np.float32)])
    rep = np.concatenate([first_turn, noise])
    stereo = np.stack([rep, np.zeros_like(rep)])
    finals = [s for s in await stream_live(engine, stereo, ONE_PARTY_EACH) if s.is_final]
    assert said_live(finals, 0) == said[0][:7], " | ".join(s.text for s in finals)
    assert said_live(finals, 1) == []
