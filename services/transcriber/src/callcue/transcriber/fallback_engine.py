"""A primary engine (the OpenAI API) that hands over to a local one when it fails."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

import structlog

from callcue.transcriber.audio import SAMPLE_RATE, Samples
from callcue.transcriber.engine import Priority, Recognised, SpeechEngine
from callcue.transcriber.whisper_decoder import DecodedWord, Hypothesis

log = structlog.get_logger("callcue.transcriber")


class FallbackEngine:
    """Uses ``primary`` until it fails (quota, timeout, 5xx, network), then ``fallback``
    for ``cooldown_seconds`` before trying the primary again. The request that failed is
    answered by the fallback, so a call loses nothing; ``name`` and ``notice`` say which
    engine answers now and why, for the call's status."""

    def __init__(
        self, primary: SpeechEngine, fallback: SpeechEngine, cooldown_seconds: float = 60.0
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._cooldown = cooldown_seconds
        self._down_until = 0.0
        self._failure = ""

    @property
    def _active(self) -> SpeechEngine:
        return self._fallback if time.monotonic() < self._down_until else self._primary

    @property
    def name(self) -> str:
        return self._active.name

    @property
    def model_name(self) -> str:
        return self._active.model_name

    @property
    def notice(self) -> str:
        if not self._failure:
            return ""
        if self._active is self._fallback:
            return self._failure
        primary, fallback = self._primary.name, self._fallback.name
        return f"trying {primary} again after {self._cooldown:.0f} s on {fallback}"

    def _failed(self, error: Exception) -> None:
        self._down_until = time.monotonic() + self._cooldown
        self._failure = (
            f"{self._primary.name} failed ({type(error).__name__}: {error}); "
            f"using {self._fallback.name} for {self._cooldown:.0f} s"
        )
        log.warning(
            "engine failed, falling back",
            engine=self._primary.name,
            fallback=self._fallback.name,
            error=f"{type(error).__name__}: {error}",
        )

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
        engine = self._active
        if engine is self._primary:
            try:
                return await engine.decode(
                    audio,
                    language=language,
                    prefix=prefix,
                    context=context,
                    priority=priority,
                    background=background,
                )
            except Exception as error:  # any failure of a remote engine: the call goes on
                self._failed(error)
        return await self._fallback.decode(
            audio,
            language=language,
            prefix=prefix,
            context=context,
            priority=priority,
            background=background,
        )

    async def transcribe_long(
        self, audio: Samples, *, language: str, hotwords: Sequence[str], one_party: bool = False
    ) -> AsyncIterator[Recognised]:
        done = 0.0
        if self._active is self._primary:
            try:
                async for segment in self._primary.transcribe_long(
                    audio, language=language, hotwords=hotwords, one_party=one_party
                ):
                    done = segment.end
                    yield segment
                return
            except Exception as error:
                self._failed(error)
        # Whatever the primary had not delivered, the fallback transcribes.
        rest = audio[int(done * SAMPLE_RATE) :]
        async for segment in self._fallback.transcribe_long(
            rest, language=language, hotwords=hotwords, one_party=one_party
        ):
            yield Recognised(
                segment.text,
                segment.start + done,
                segment.end + done,
                tuple(
                    DecodedWord(w.text, w.tokens, w.start + done, w.end + done, w.probability)
                    for w in segment.words
                ),
                segment.language,
            )

    def backlog(self) -> float:
        return self._fallback.backlog()

    def oldest_final_wait(self) -> float:
        return self._fallback.oldest_final_wait()

    def close(self) -> None:
        self._primary.close()
        self._fallback.close()
