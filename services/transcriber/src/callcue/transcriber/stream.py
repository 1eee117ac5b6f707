"""One live stream: audio in, partial and final transcript segments out.

The policy, per channel:
- While someone speaks, the open utterance is decoded again every ``partial_interval``
  seconds of new audio, continuing after the words already final (forced as a prefix).
  Words that two consecutive decodes agree on are final at once (LocalAgreement-2); the
  rest is sent as a partial.
- When a pause starts (200 ms), the utterance is decoded right away and its words are
  final at once: that decode heard all the speech there is. If the pause lasts long
  enough to end the utterance, nothing is decoded again. An engine may decline partial
  and pause decodes (the OpenAI engine does); its finals come when utterances end.
- Until an utterance has a settled word, a decode whose no-speech probability is above
  ``DOUBTFUL_NO_SPEECH`` (Whisper doubts it heard speech) settles and shows nothing: the
  first second of noise before a caller's "Hello" once went out as "That's your first step."
- Once settled words reach ``settle_seconds`` into an utterance, it is cut a second before
  their end, so decodes only ever see the unsettled tail of speech; the settled words of
  that last second are the forced start of what follows.
Decodes are queued in the shared engine with finals first. Under load a stream sends
fewer partials, not later finals: the interval between partial decodes grows with the
decodes waiting for the model (one per worker waiting doubles it), and a partial that
still waited too long is skipped.

A client that sends audio faster than it could be spoken is not a live call: once a stream
is ``AHEAD_SECONDS`` ahead of the wall clock, its decodes wait until live streams are
served, and no more than ``MAX_BACKLOG_SECONDS`` of its ended utterances wait for a decode
before the stream stops reading audio (gRPC flow control then holds the sender back).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field

import structlog

from callcue.call.v1 import call_pb2
from callcue.transcriber.audio import SAMPLE_RATE, Samples, StreamDecoder
from callcue.transcriber.engine import (
    Priority,
    SpeechEngine,
)
from callcue.transcriber.prompt import whisper_prompt
from callcue.transcriber.segments import make_segment
from callcue.transcriber.stages import StageClock
from callcue.transcriber.turn_history import (
    ONE_PARTY,
    TurnHistory,
    context_without,
    decode_turn,
)
from callcue.transcriber.utterances import Utterance, UtteranceCutter
from callcue.transcriber.v1 import transcriber_service_pb2 as pb
from callcue.transcriber.whisper_decoder import DecodedWord, Hypothesis, agreed_prefix

log = structlog.get_logger("callcue.transcriber")

ENDPOINT_SILENCE_SECONDS = 0.2
# Audio kept before and after speech, so word edges survive (400 ms beat 200 ms; figures in
# docs/benchmarks.md).
PAD_MS = 400
# Words of the call so far given to Whisper as context: short utterances decoded alone
# lose words (docs/benchmarks.md).
CONTEXT_WORDS = 40
# Shorter utterances are left to the endpoint decode: a partial decode of them rarely
# settles a word (that takes two decodes that agree), so it would mostly be CPU spent.
FIRST_PARTIAL_SECONDS = 1.0
# A word this close to the end of the decoded audio may be cut off: never final yet.
UNSAFE_TAIL_SECONDS = 0.25
# An utterance's first decodes see little audio, and Whisper turned the noise before a
# caller's "Hello" into words with a no-speech probability from 0.43 up, where speech
# mostly scored under 0.4 (docs/benchmarks.md). Words of a doubted decode wait for one of
# more audio, or for the utterance's final and Whisper's own noise rule.
DOUBTFUL_NO_SPEECH = 0.4
# Where settled words are cut off, the last of them are heard again at the start of what
# follows, as its forced prefix: Whisper's word times are off by a tenth of a second or
# two, and a cut at the last word's end clipped the next word or left part of the last
# (on an earnings call a cut-off "which" came out "which which"; docs/benchmarks.md).
SETTLE_OVERLAP_SECONDS = 1.0
SETTLE_OVERLAP_WORDS = 6
SETTLE_CUT_MARGIN_SECONDS = 0.1
# Leeway for a burst beyond what the config says is replayed.
AHEAD_SECONDS = 10.0
MAX_BACKLOG_SECONDS = 30.0


@dataclass
class _Channel:
    index: int
    role: call_pb2.SpeakerRole.ValueType
    cutter: UtteranceCutter
    closed: deque[Utterance] = field(default_factory=deque)
    start: int | None = None  # the utterance the state below belongs to
    committed: list[DecodedWord] = field(default_factory=list)
    previous: Sequence[DecodedWord] = ()  # the last decode's words after the committed ones
    decoded_until: int = 0  # samples seen when the last decode was scheduled
    # (voice end, decode at the pause): one try per pause; None if the engine declined it
    endpoint: tuple[int, Hypothesis | None] | None = None
    finals: int = 0
    # The channel's recent turns, on a channel that carries one party (None: mixed).
    history: TurnHistory | None = None

    def follow(self, utterance_start: int) -> None:
        if self.start != utterance_start:
            self.start = utterance_start
            self.committed, self.previous, self.endpoint = [], (), None
            self.decoded_until = utterance_start

    def segment_id(self) -> str:
        return f"{self.index}-{self.finals}"


class LiveTranscription:
    def __init__(
        self,
        engine: SpeechEngine,
        config: pb.StreamingConfig,
        *,
        end_of_utterance_ms: int,
        max_utterance_seconds: float,
        partial_interval: float = 0.6,
        settle_seconds: float = 8.0,
    ) -> None:
        self._engine = engine
        self._config = config
        self._decoder = StreamDecoder(config.audio_format)
        roles = list(config.channel_roles) or [call_pb2.SPEAKER_ROLE_MIXED] * self._decoder.channels
        self._channels = [
            _Channel(
                index,
                role,
                UtteranceCutter(
                    end_silence_ms=end_of_utterance_ms,
                    max_seconds=max_utterance_seconds,
                    pad_ms=PAD_MS,
                ),
                history=TurnHistory() if role in ONE_PARTY else None,
            )
            for index, role in enumerate(roles)
        ]
        self._call_offset = config.call_offset.ToNanoseconds() / 1e9
        # Audio the caller had sent before this stream began (a takeover's replay): it comes
        # at once, and is not the stream running ahead of real time.
        self._replayed = config.replayed.ToNanoseconds() / 1e9
        self._interval = int(partial_interval * SAMPLE_RATE)
        self._settle = int(settle_seconds * SAMPLE_RATE)
        self._endpoint = int(ENDPOINT_SILENCE_SECONDS * SAMPLE_RATE)
        self._wake = asyncio.Event()
        self._room = asyncio.Event()  # ended utterances were taken up
        self._first_audio_at: float | None = None
        self._told_ahead = False
        self._input_done = False
        self._input_error: BaseException | None = None
        self._turn = 0
        # (channel, utterance start, word): the words of the call so far, and whose they were
        self._said: deque[tuple[int, int, str]] = deque(maxlen=CONTEXT_WORDS)
        self._clock = StageClock()

    @property
    def seconds_received(self) -> float:
        return self._decoder.seconds_received

    @property
    def ahead_of_real_time(self) -> bool:
        if self._first_audio_at is None:
            return False
        elapsed = time.monotonic() - self._first_audio_at
        return self.seconds_received - self._replayed - elapsed > AHEAD_SECONDS

    def _backlog_seconds(self) -> float:
        return max(sum(u.seconds for u in channel.closed) for channel in self._channels)

    async def run(
        self, audio: AsyncIterator[bytes]
    ) -> AsyncIterator[pb.StreamingTranscribeResponse]:
        yield pb.StreamingTranscribeResponse(
            engine_status=pb.EngineStatus(engine=self._engine.name, model=self._engine.model_name)
        )
        producer = asyncio.create_task(self._produce(audio))
        reported = self._engine.name
        try:
            while True:
                self._wake.clear()
                if self._input_error is not None:
                    raise self._input_error
                job = self._next_job()
                self._room.set()
                if job is None:
                    if self._input_done:
                        return
                    await self._wake.wait()
                    continue
                segments = await job
                if self._engine.name != reported:
                    reported = self._engine.name
                    yield pb.StreamingTranscribeResponse(
                        engine_status=pb.EngineStatus(
                            engine=reported,
                            model=self._engine.model_name,
                            message=self._engine.notice,
                        )
                    )
                for segment in segments:
                    yield pb.StreamingTranscribeResponse(segment=segment)
        finally:
            producer.cancel()

    async def _produce(self, audio: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in audio:
                if self._first_audio_at is None:
                    self._first_audio_at = time.monotonic()
                with self._clock.stage("resampling"):
                    samples = self._decoder.decode(chunk)
                self._push(samples)
                if not self._told_ahead and self.ahead_of_real_time:
                    self._told_ahead = True
                    log.info(
                        "stream ahead of real time: its decodes now wait for live streams",
                        audio_seconds=round(self.seconds_received, 1),
                    )
                while self._backlog_seconds() > MAX_BACKLOG_SECONDS:
                    self._room.clear()
                    await self._room.wait()
            with self._clock.stage("resampling"):
                samples = self._decoder.decode(b"", last=True)
            self._push(samples, flush=True)
        except Exception as error:
            self._input_error = error
        finally:
            self._input_done = True
            self._wake.set()

    def _push(self, samples: list[Samples], flush: bool = False) -> None:
        with self._clock.stage("vad"):
            for channel, channel_samples in zip(self._channels, samples, strict=True):
                channel.closed.extend(channel.cutter.push(channel_samples))
                if flush:
                    channel.closed.extend(channel.cutter.flush())
        self._clock.count("audio")
        self._wake.set()

    def _rotation(self) -> list[_Channel]:
        self._turn = (self._turn + 1) % len(self._channels)
        return self._channels[self._turn :] + self._channels[: self._turn]

    def _next_job(self) -> asyncio.Future[list[call_pb2.TranscriptSegment]] | None:
        channels = self._rotation()
        for channel in channels:
            if channel.closed:
                return asyncio.ensure_future(self._final(channel, channel.closed.popleft()))
        for channel in channels:
            utterance = channel.cutter.open_utterance()
            if utterance is None:
                continue
            channel.follow(utterance.start)
            pausing = channel.cutter.silence_samples >= self._endpoint
            if pausing:
                if channel.endpoint is None or channel.endpoint[0] != utterance.voice_end:
                    return asyncio.ensure_future(
                        self._decode_open(channel, utterance, Priority.ENDPOINT)
                    )
            elif (
                utterance.seconds >= FIRST_PARTIAL_SECONDS
                and channel.cutter.samples_seen - channel.decoded_until
                >= self._interval * (1 + self._engine.backlog())
            ):
                return asyncio.ensure_future(
                    self._decode_open(channel, utterance, Priority.PARTIAL)
                )
        return None

    async def _decode(
        self,
        channel: _Channel,
        utterance: Utterance,
        prefix: Sequence[DecodedWord],
        priority: Priority,
    ) -> Hypothesis | None:
        """One decode of ``utterance`` after ``prefix``. At a pause or the end of a short
        turn with nothing settled yet, on a channel of one party, after that party's
        previous turns (partial decodes stay alone: joined too, they cost 12% more CPU)."""

        def decode(audio: Samples, turns: frozenset[int]) -> Awaitable[Hypothesis | None]:
            return self._engine.decode(
                audio,
                language=self._config.language_code,
                prefix=prefix,
                context=self._context(channel.index, turns),
                priority=priority,
                background=self.ahead_of_real_time,
            )

        joining = not prefix and priority != Priority.PARTIAL
        return await decode_turn(decode, channel.history if joining else None, utterance)

    def _context(self, channel: int, turns: frozenset[int]) -> str:
        return whisper_prompt(self._config.hotwords, context_without(self._said, channel, turns))

    async def _final(
        self, channel: _Channel, utterance: Utterance
    ) -> list[call_pb2.TranscriptSegment]:
        continuing = channel.start == utterance.start
        committed = channel.committed if continuing else []
        hypothesis: Hypothesis | None = None
        if continuing and channel.endpoint and channel.endpoint[0] == utterance.voice_end:
            hypothesis = channel.endpoint[1]
        reused = hypothesis is not None
        if hypothesis is None:
            hypothesis = await self._decode(channel, utterance, committed, Priority.FINAL)
        if continuing:
            channel.start = None
        if channel.history is not None:
            channel.history.add(utterance.start, utterance.audio)
        words = _new_words(hypothesis, len(committed), doubtful=utterance.doubtful)
        _trace("final", channel, utterance, hypothesis, len(committed), len(words), reused=reused)
        segment = self._segment(channel, utterance.start, words, final=True)
        return [segment] if segment else []

    async def _decode_open(
        self, channel: _Channel, utterance: Utterance, priority: Priority
    ) -> list[call_pb2.TranscriptSegment]:
        channel.decoded_until = channel.cutter.samples_seen
        hypothesis = await self._decode(channel, utterance, list(channel.committed), priority)
        kind = priority.name.lower()
        if channel.start != utterance.start:
            _trace(kind, channel, utterance, hypothesis, 0, 0, outcome="ended")
            return []  # the utterance ended meanwhile
        if priority == Priority.ENDPOINT:
            # Declined or skipped too: asked again at once, an engine that declines pauses
            # (the OpenAI engine) would be asked in a busy loop for as long as the pause lasts.
            channel.endpoint = (utterance.voice_end, hypothesis)
        if hypothesis is None:
            _trace(kind, channel, utterance, hypothesis, 0, 0, outcome="skipped")
            return []  # skipped under load, or declined
        if not channel.committed and hypothesis.no_speech_probability > DOUBTFUL_NO_SPEECH:
            _trace(kind, channel, utterance, hypothesis, 0, 0, outcome="doubted")
            channel.previous = ()
            return []
        words = _new_words(hypothesis, len(channel.committed), doubtful=utterance.doubtful)
        if priority == Priority.ENDPOINT:
            # The decode heard the speech up to a pause: as much as the final would hear.
            agreed = len(words)
        else:
            safe_until = utterance.seconds - UNSAFE_TAIL_SECONDS
            agreed = agreed_prefix(channel.previous, words)
            while agreed and (
                words[agreed - 1].end > safe_until
                or (agreed < len(words) and not words[agreed].text[:1].isspace())
            ):
                # Nor is a word final without what Whisper wrote onto it ("13" "%",
                # "0" ".7"): apart, the two become two words ("13 %") in every transcript.
                agreed -= 1
        _trace(kind, channel, utterance, hypothesis, len(channel.committed), agreed)
        out = []
        if agreed:
            settled = list(words[:agreed])
            segment = self._segment(channel, utterance.start, settled, final=True)
            if segment:
                out.append(segment)
            channel.committed += settled
        channel.previous = words[agreed:]
        if self._config.interim_results and channel.previous:
            partial = self._segment(channel, utterance.start, channel.previous, final=False)
            if partial:
                out.append(partial)
        if channel.committed and channel.committed[-1].end * SAMPLE_RATE > self._settle:
            # Settled words never change: later decodes can start after them. If the
            # utterance ended while this decode ran, its final continues after the
            # committed words instead; starting the channel over there would have the
            # final decode it whole and send its words twice.
            carried = _carried_over(channel.committed)
            cut = utterance.start + int(carried.cut * SAMPLE_RATE)
            if channel.cutter.cut_at(cut, utterance_start=utterance.start):
                channel.follow(cut)
                channel.committed = list(carried.words)
        return out

    def _segment(
        self, channel: _Channel, start: int, words: Sequence[DecodedWord], *, final: bool
    ) -> call_pb2.TranscriptSegment | None:
        segment = make_segment(
            words,
            segment_id=self._config.segment_id_prefix + channel.segment_id(),
            channel=channel.index,
            speaker=channel.role,
            offset=self._call_offset + start / SAMPLE_RATE,
            is_final=final,
            language=self._config.language_code or "en",
            stability=0.5,
        )
        if segment is not None and final:
            channel.finals += 1
            self._said.extend((channel.index, start, word) for word in segment.text.split())
        return segment


def _trace(
    kind: str,
    channel: _Channel,
    utterance: Utterance,
    hypothesis: Hypothesis | None,
    committed: int,
    settled: int,
    *,
    outcome: str = "decoded",
    reused: bool = False,
) -> None:
    """What became of one decode, for finding where words go missing: counts and times,
    never the words (they can hold card numbers)."""
    if hypothesis is not None and hypothesis.is_noise(doubtful=utterance.doubtful):
        outcome = "noise"
    log.debug(
        "decode",
        kind=kind,
        outcome=outcome,
        reused=reused,
        channel=channel.index,
        start=round(utterance.start_seconds, 2),
        seconds=round(utterance.seconds, 2),
        doubtful=utterance.doubtful,
        committed=committed,
        words=len(hypothesis.words) if hypothesis else 0,
        settled=settled,
        words_end=round(hypothesis.words[-1].end, 2) if hypothesis and hypothesis.words else None,
        no_speech=round(hypothesis.no_speech_probability, 2) if hypothesis else None,
        log_probability=round(hypothesis.average_log_probability, 2) if hypothesis else None,
    )


@dataclass(frozen=True)
class _CarriedOver:
    cut: float  # seconds into the utterance where the next one starts
    words: tuple[DecodedWord, ...]  # its forced prefix, timed from the cut


def _carried_over(committed: Sequence[DecodedWord]) -> _CarriedOver:
    """Where to cut an utterance whose ``committed`` words are settled, and which of them
    the rest starts with: the last second of them (at most ``SETTLE_OVERLAP_WORDS``),
    from a little before the first of those."""
    last = committed[-1].end
    kept = 0
    for word in reversed(committed):
        if last - word.start > SETTLE_OVERLAP_SECONDS or kept == SETTLE_OVERLAP_WORDS:
            break
        kept += 1
    if not kept:
        return _CarriedOver(last, ())
    words = committed[len(committed) - kept :]
    cut = max(words[0].start - SETTLE_CUT_MARGIN_SECONDS, 0.0)
    return _CarriedOver(
        cut,
        tuple(
            DecodedWord(w.text, w.tokens, w.start - cut, w.end - cut, w.probability) for w in words
        ),
    )


def _new_words(
    hypothesis: Hypothesis | None, committed: int, *, doubtful: bool
) -> Sequence[DecodedWord]:
    if hypothesis is None or hypothesis.is_noise(doubtful=doubtful):
        return ()
    return hypothesis.words[committed:]
