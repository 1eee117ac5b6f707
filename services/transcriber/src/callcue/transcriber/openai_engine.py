"""Transcription through the OpenAI API (or any server that speaks it)."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
import openai

from callcue.transcriber.audio import SAMPLE_RATE, Samples
from callcue.transcriber.engine import Priority, Recognised, whisper_language
from callcue.transcriber.whisper_decoder import DecodedWord, Hypothesis

# The API takes files up to 25 MB; 10 minutes of 16 kHz 16-bit audio is about 19 MB.
_CHUNK_SECONDS = 600


def wav_bytes(audio: Samples) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _spread(text: str, start: float, end: float) -> list[DecodedWord]:
    """Word times when the model gives none (gpt-4o-transcribe): evenly over the audio."""
    words = text.split()
    step = (end - start) / max(len(words), 1)
    return [
        DecodedWord(f" {word}", (), start + i * step, start + (i + 1) * step, 1.0)
        for i, word in enumerate(words)
    ]


class OpenAIEngine:
    """One request per utterance (at the pause that ends it), never for partials: the
    API is paid per request and answers in hundreds of milliseconds at best."""

    name = "openai"
    notice = ""

    def __init__(self, client: openai.AsyncOpenAI, model: str) -> None:
        self._client = client
        self.model_name = model
        # Only the whisper-1 family returns word timings.
        self._verbose = not model.startswith("gpt-")

    async def _transcribe(
        self, audio: Samples, language: str, prompt: str
    ) -> tuple[str, list[DecodedWord], list[Any]]:
        options: dict[str, Any] = {}
        code = whisper_language(language, multilingual=True)
        if code:
            options["language"] = code
        if prompt:
            options["prompt"] = prompt
        if self._verbose:
            options["response_format"] = "verbose_json"
            options["timestamp_granularities"] = ["word", "segment"]
        result = await self._client.audio.transcriptions.create(
            file=("audio.wav", wav_bytes(audio), "audio/wav"), model=self.model_name, **options
        )
        text = result.text.strip()
        words = [
            DecodedWord(f" {w.word.strip()}", (), float(w.start), float(w.end), 1.0)
            for w in getattr(result, "words", None) or []
        ]
        return (
            text,
            words or _spread(text, 0.0, len(audio) / SAMPLE_RATE),
            list(getattr(result, "segments", None) or []),
        )

    async def decode(
        self,
        audio: Samples,
        *,
        language: str,
        prefix: Sequence[DecodedWord] = (),
        context: str = "",
        priority: Priority = Priority.FINAL,
        background: bool = False,  # requests run at once: no local queue to order
    ) -> Hypothesis | None:
        if priority != Priority.FINAL:
            # One request per utterance: a decode at a pause that does not end the
            # utterance would pay for its audio twice.
            return None
        _, words, _ = await self._transcribe(audio, language, context)
        # Words already final stay as they were; the API re-reads the whole utterance.
        words = [*prefix, *words[len(prefix) :]]
        return Hypothesis(tuple(words), 0.0, 0.0, whisper_language(language, True) or "en")

    async def transcribe_long(
        self, audio: Samples, *, language: str, hotwords: Sequence[str], one_party: bool = False
    ) -> AsyncIterator[Recognised]:
        step = _CHUNK_SECONDS * SAMPLE_RATE
        for offset in range(0, len(audio), step):
            chunk = audio[offset : offset + step]
            start = offset / SAMPLE_RATE
            text, words, _ = await self._transcribe(chunk, language, ", ".join(hotwords))
            if not text:
                continue
            shifted = tuple(
                DecodedWord(w.text, w.tokens, w.start + start, w.end + start, w.probability)
                for w in words
            )
            yield Recognised(text, shifted[0].start, shifted[-1].end, shifted, language or "en")

    def backlog(self) -> float:
        return 0.0

    def oldest_final_wait(self) -> float:
        return 0.0

    def close(self) -> None:
        return None
