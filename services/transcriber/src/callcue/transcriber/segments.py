"""Recognised speech to TranscriptSegment messages on the call's timeline."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import duration_pb2

from callcue.call.v1 import call_pb2
from callcue.transcriber.engine import Recognised, RecognisedWord

# Whisper tends to end an utterance with words it made up for the trailing silence
# ("Thank you."). They start with a word it is very unsure of, close to the end.
_MADE_UP_PROBABILITY = 0.1
_MADE_UP_MAX_WORDS = 3
_MADE_UP_WITHIN_SECONDS = 1.5


def duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(round(max(seconds, 0.0) * 1e9))
    return value


def trim_made_up_tail(
    words: Sequence[RecognisedWord], audio_seconds: float
) -> list[RecognisedWord]:
    for start in range(max(0, len(words) - _MADE_UP_MAX_WORDS), len(words)):
        word = words[start]
        if (
            word.probability < _MADE_UP_PROBABILITY
            and word.start >= audio_seconds - _MADE_UP_WITHIN_SECONDS
        ):
            return list(words[:start])
    return list(words)


def to_segment(
    recognised: Sequence[Recognised],
    *,
    segment_id: str,
    channel: int,
    speaker: call_pb2.SpeakerRole.ValueType,
    offset: float,
    is_final: bool,
    audio_seconds: float | None = None,
) -> call_pb2.TranscriptSegment | None:
    """One segment from the engine's pieces of one utterance; None if nothing was said.

    With ``audio_seconds`` (the utterance's length) a made-up tail is dropped.
    """
    if audio_seconds is not None and recognised and recognised[-1].words:
        last = recognised[-1]
        kept = trim_made_up_tail(last.words, audio_seconds)
        if len(kept) < len(last.words):
            text = "".join(word.text for word in kept).strip()
            trimmed = Recognised(
                text, last.start, kept[-1].end if kept else last.start, tuple(kept), last.language
            )
            recognised = [*recognised[:-1], trimmed] if text else list(recognised[:-1])
    if not recognised:
        return None
    words = [
        call_pb2.Word(
            text=word.text.strip(),
            start_offset=duration(offset + word.start),
            end_offset=duration(offset + word.end),
            confidence=word.probability,
        )
        for piece in recognised
        for word in piece.words
        if word.text.strip()
    ]
    return call_pb2.TranscriptSegment(
        segment_id=segment_id,
        channel=channel,
        speaker=speaker,
        is_final=is_final,
        text=" ".join(piece.text for piece in recognised),
        words=words,
        start_offset=duration(offset + recognised[0].start),
        end_offset=duration(offset + recognised[-1].end),
        stability=1.0 if is_final else 0.5,
        language_code=recognised[0].language,
    )
