"""One Whisper decode of one window of audio, with a forced prefix and word timings.

faster-whisper's ``transcribe`` is built for long files: after a window it seeks to the
last word and decodes what is left, which on a short utterance means decoding the
padding, where Whisper invents words ("Thank you."). A live stream needs exactly one
decode per request, the words already committed kept verbatim (forced as a decoder
prefix) and timings for every word, so this drives the model's lower-level methods.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import ctranslate2
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens, merge_punctuations

from callcue.transcriber.audio import Samples
from callcue.transcriber.stages import StageClock

_MAX_LENGTH = 448
# In a short window, less silence after the audio than this made Whisper go on inventing
# words (docs/benchmarks.md, "Shorter encoder windows").
MIN_PADDING_FRAMES = 800
# Whisper's own thresholds: text this compressible is a repetition loop.
MAX_COMPRESSION_RATIO = 2.4
# Whisper's own signals that a segment is noise it made words for.
NO_SPEECH_PROBABILITY = 0.6
LOW_LOG_PROBABILITY = -1.0
# Whisper's defaults for attaching punctuation to words (with CJK full-width forms).
_PREPEND = "\"'\u201c\u00bf([{-"
_APPEND = "\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001"
# A word of these alone ("." most often, "..." or a note sign) is what Whisper writes for
# music and noise; "%", "$" or "&" alone are words of the text ("27" "%").
_NOT_A_WORD = " .,!?;:-\u2013\u2014\u2026\u266a\u266b\"'()[]"


@dataclass(frozen=True)
class DecodedWord:
    text: str  # with Whisper's leading space, as decoded
    tokens: tuple[int, ...]
    start: float  # seconds from the start of the decoded audio
    end: float
    probability: float


@dataclass(frozen=True)
class Hypothesis:
    words: tuple[DecodedWord, ...]  # the forced prefix's words first
    no_speech_probability: float
    average_log_probability: float
    language: str

    def is_noise(self, *, doubtful: bool = False) -> bool:
        """Whisper's own verdict that it made words up for noise: both its signals (its
        default thresholds). Where the VAD doubted the audio too, either signal is enough:
        a made-up word can pass one test (a synthetic melody came out "Thank" at
        log-probability -0.98, 15 s of music scored no-speech 0.48), while speech the VAD
        doubts passed both (docs/streaming.md)."""
        if doubtful:
            return (
                self.no_speech_probability > NO_SPEECH_PROBABILITY
                or self.average_log_probability < LOW_LOG_PROBABILITY
            )
        return (
            self.no_speech_probability > NO_SPEECH_PROBABILITY
            and self.average_log_probability < LOW_LOG_PROBABILITY
        )


def compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


class WhisperDecoder:
    """Decodes windows of up to 30 s with a shared WhisperModel. Not thread-safe on its
    own: callers serialise use per worker thread (the engine's executor does)."""

    def __init__(
        self,
        model: WhisperModel,
        language: str | None,
        *,
        short_windows: Sequence[float] = (),
    ) -> None:
        self._model = model
        # Whisper's encoder always sees 30 s; CTranslate2 also runs it on less, which costs
        # far less (attention is quadratic). Audio short enough is encoded in the shortest
        # of ``short_windows`` (seconds) it fits; none: always 30 s.
        self._short_frames = sorted(int(seconds * 100) for seconds in short_windows)
        self.multilingual = bool(model.model.is_multilingual)
        self.language = "en" if not self.multilingual else (language or "en")
        self._tokenizer = Tokenizer(
            model.hf_tokenizer, self.multilingual, task="transcribe", language=self.language
        )
        self._suppress = list(get_suppressed_tokens(self._tokenizer, (-1,)) or ())

    def encode_text(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(" " + text.strip())) if text.strip() else []

    def decode(
        self,
        audio: Samples,
        *,
        prefix_tokens: Sequence[int] = (),
        prompt: str = "",
        beam_size: int = 5,
        clock: StageClock | None = None,
    ) -> Hypothesis:
        """``prompt``: text Whisper reads as what came before (hotwords, the call so far);
        ``prefix_tokens``: the start of this window's text, kept verbatim; ``clock``
        times the stages."""
        clock = clock or StageClock()
        with clock.stage("features"):
            features = self._model.feature_extractor(audio)
        content_frames = min(features.shape[-1] - 1, 3000)
        window = next(
            (f for f in self._short_frames if content_frames + MIN_PADDING_FRAMES <= f), 3000
        )
        short = window < 3000
        with clock.stage("encoder"):
            encoder_output = self._model.encode(pad_or_trim(features[:, :content_frames], window))
        tokens_in = self._prompt(prefix_tokens, prompt)
        with clock.stage("search"):
            result = self._generate(encoder_output, tokens_in, beam_size, strict=False)
            tokens = self._text_tokens(result, prefix_tokens)
            if compression_ratio(self._tokenizer.decode(tokens)) > MAX_COMPRESSION_RATIO:
                result = self._generate(encoder_output, tokens_in, beam_size, strict=True)
                tokens = self._text_tokens(result, prefix_tokens)
                if compression_ratio(self._tokenizer.decode(tokens)) > MAX_COMPRESSION_RATIO:
                    tokens = []  # still looping: say nothing rather than repeat
        all_tokens = [*prefix_tokens, *tokens]
        length = max(len(tokens), 1)
        average = float(result.scores[0]) * (length**1.0) / (length + 1) if result.scores else 0.0
        with clock.stage("alignment"):
            words = self._words(all_tokens, encoder_output, window if short else content_frames)
        if short:
            words = inside_audio(words, content_frames / 100)
        words = without_repeated_tail(words, keep=_words_in(words, len(prefix_tokens)))
        return Hypothesis(
            words=words,
            no_speech_probability=float(result.no_speech_prob),
            average_log_probability=average,
            language=self.language,
        )

    def _prompt(self, prefix_tokens: Sequence[int], previous: str) -> list[int]:
        prompt: list[int] = []
        if previous:
            prompt.append(self._tokenizer.sot_prev)
            prompt.extend(self.encode_text(previous)[-(_MAX_LENGTH // 4) :])
        prompt.extend(self._tokenizer.sot_sequence)
        prompt.append(self._tokenizer.no_timestamps)
        prompt.extend(list(prefix_tokens)[-(_MAX_LENGTH // 2 - 1) :])
        return prompt

    def _generate(
        self,
        encoder_output: ctranslate2.StorageView,
        prompt: list[int],
        beam_size: int,
        strict: bool,
    ) -> ctranslate2.models.WhisperGenerationResult:
        return self._model.model.generate(
            encoder_output,
            [prompt],
            beam_size=beam_size,
            max_length=_MAX_LENGTH,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
            repetition_penalty=1.3 if strict else 1.0,
            no_repeat_ngram_size=3 if strict else 0,
        )[0]

    def _text_tokens(
        self, result: ctranslate2.models.WhisperGenerationResult, prefix: Sequence[int]
    ) -> list[int]:
        """The newly generated text tokens: CTranslate2 returns the forced prefix too."""
        tokens = [token for token in result.sequences_ids[0] if token < self._tokenizer.eot]
        if prefix and tokens[: len(prefix)] == list(prefix):
            tokens = tokens[len(prefix) :]
        return tokens

    def _words(
        self, tokens: list[int], encoder_output: ctranslate2.StorageView, frames: int
    ) -> tuple[DecodedWord, ...]:
        if not tokens:
            return ()
        [alignment] = self._model.find_alignment(self._tokenizer, [tokens], encoder_output, frames)
        merge_punctuations(alignment, _PREPEND, _APPEND)
        return tuple(
            DecodedWord(
                text=word["word"],
                tokens=tuple(word["tokens"]),
                start=float(word["start"]),
                end=float(word["end"]),
                probability=float(word["probability"]),
            )
            for word in alignment
            if is_word(word["word"])
        )


def inside_audio(words: Sequence[DecodedWord], seconds: float) -> tuple[DecodedWord, ...]:
    """The words of a window padded with silence after ``seconds`` of audio: those Whisper
    placed in the silence are invented, and none ends in it (a lone "Uh" once ended 14 s
    into it, and its end is where a taken-over call resumes)."""
    return tuple(
        dataclasses.replace(word, end=min(word.end, seconds))
        for word in words
        if word.start < seconds - 0.1
    )


def is_word(text: str) -> bool:
    """Not a lone mark Whisper writes for music and noise ("." or a note sign)."""
    return bool(text.strip(_NOT_A_WORD))


def normalised(word: DecodedWord) -> str:
    """A word as compared between hypotheses: case and punctuation do not count."""
    return "".join(ch for ch in word.text.lower() if ch.isalnum() or ch == "'")


MIN_REPEAT_WORDS = 3


def _words_in(words: Sequence[DecodedWord], tokens: int) -> int:
    """How many leading words the first ``tokens`` tokens make up."""
    count = 0
    for word in words:
        tokens -= len(word.tokens)
        if tokens < 0:
            break
        count += 1
    return count


def without_repeated_tail(words: tuple[DecodedWord, ...], keep: int = 0) -> tuple[DecodedWord, ...]:
    """Cuts a run of words that repeats the run just before it ("How can I help you today?
    How can I help you today?"): a decoder loop, which people do not say word for word.
    The first ``keep`` words (the forced prefix) stay."""
    texts = [normalised(word) for word in words]
    end = len(words)
    changed = True
    while changed:
        changed = False
        for length in range(min(end - keep, end // 2), MIN_REPEAT_WORDS - 1, -1):
            if texts[end - length : end] == texts[end - 2 * length : end - length]:
                end -= length
                changed = True
                break
    return words[:end]


def agreed_prefix(previous: Sequence[DecodedWord], current: Sequence[DecodedWord]) -> int:
    """How many leading words two hypotheses share (LocalAgreement-2)."""
    count = 0
    for before, now in zip(previous, current, strict=False):
        if normalised(before) != normalised(now):
            break
        count += 1
    return count
