"""What a call came to: how long, who talked how much, which talking points were shown."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from callcue.call.v1 import call_pb2
from callcue.core.durations import duration
from callcue.gateway.v1 import gateway_service_pb2 as pb


def _talk_seconds(spans: list[tuple[float, float]]) -> float:
    """Total time covered by the spans, overlaps counted once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def summarise(
    session: pb.Session,
    segments: Sequence[call_pb2.TranscriptSegment],
    detections: Sequence[call_pb2.Detection],
) -> pb.CallSummary:
    spans: dict[int, list[tuple[float, float]]] = {}
    words: Counter[int] = Counter()
    speakers: dict[int, call_pb2.SpeakerRole.ValueType] = dict(enumerate(session.channel_roles))
    for segment in segments:
        # Word times where there are any: the pauses inside a segment are not talk.
        offsets = [(w.start_offset, w.end_offset) for w in segment.words] or [
            (segment.start_offset, segment.end_offset)
        ]
        for start, end in offsets:
            spans.setdefault(segment.channel, []).append(
                (start.ToNanoseconds() / 1e9, end.ToNanoseconds() / 1e9)
            )
        words[segment.channel] += len(segment.words) or len(segment.text.split())
        speakers.setdefault(segment.channel, segment.speaker)
    talk_times = [
        pb.TalkTime(
            channel=channel,
            speaker=speakers.get(channel, call_pb2.SPEAKER_ROLE_UNSPECIFIED),
            talk_time=duration(_talk_seconds(spans.get(channel, []))),
            word_count=words[channel],
        )
        for channel in sorted(set(spans) | set(speakers))
    ]
    counts: Counter[str] = Counter(d.keyword_id for d in detections)
    first: dict[str, call_pb2.Detection] = {}
    for detection in detections:
        first.setdefault(detection.keyword_id, detection)
    keyword_counts = [
        pb.KeywordCount(
            keyword_id=keyword_id,
            phrase=first[keyword_id].phrase,
            title=first[keyword_id].talking_point.title,
            count=count,
        )
        for keyword_id, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    return pb.CallSummary(
        session_id=session.session_id,
        state=session.state,
        duration=session.audio_duration,
        talk_times=talk_times,
        talking_points=detections,
        keyword_counts=keyword_counts,
    )
