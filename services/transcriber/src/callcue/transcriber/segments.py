"""Decoded words to TranscriptSegment messages on the call's timeline."""

from __future__ import annotations

from collections.abc import Sequence

from callcue.call.v1 import call_pb2
from callcue.core.durations import duration
from callcue.transcriber.whisper_decoder import DecodedWord


def make_segment(
    words: Sequence[DecodedWord],
    *,
    segment_id: str,
    channel: int,
    speaker: call_pb2.SpeakerRole.ValueType,
    offset: float,
    is_final: bool,
    language: str,
    stability: float = 1.0,
) -> call_pb2.TranscriptSegment | None:
    """A segment of the given words (times relative to ``offset`` seconds into the
    channel); None when there are no words."""
    words = [word for word in words if word.text.strip()]
    if not words:
        return None
    return call_pb2.TranscriptSegment(
        segment_id=segment_id,
        channel=channel,
        speaker=speaker,
        is_final=is_final,
        text="".join(word.text for word in words).strip(),
        words=[
            call_pb2.Word(
                text=word.text.strip(),
                start_offset=duration(offset + word.start),
                end_offset=duration(offset + word.end),
                confidence=word.probability,
            )
            for word in words
        ],
        start_offset=duration(offset + words[0].start),
        end_offset=duration(offset + words[-1].end),
        stability=1.0 if is_final else stability,
        language_code=language,
    )
