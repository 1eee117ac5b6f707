"""Finds keyword phrases in transcript segments, on word boundaries, ignoring case."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.protobuf import duration_pb2

from callcue.call.v1 import call_pb2
from callcue.detector.text import tokens
from callcue.detector.v1 import detector_service_pb2 as pb

_ANYONE = (call_pb2.SPEAKER_ROLE_UNSPECIFIED, call_pb2.SPEAKER_ROLE_MIXED)


@dataclass(frozen=True)
class _Token:
    text: str
    word: int  # index of the transcript word it came from, or -1 without word timings


@dataclass(frozen=True)
class _Trigger:
    phrase: str
    tokens: tuple[str, ...]
    keyword: pb.Keyword


class PhraseMatcher:
    """Matches every phrase and alias of a set of keywords at once.

    Triggers are indexed by their first token, so the cost per transcript token is
    one dictionary look-up plus the few triggers that start with that token.
    """

    def __init__(self, keywords: Iterable[pb.Keyword]) -> None:
        self._by_first: dict[str, list[_Trigger]] = defaultdict(list)
        for keyword in keywords:
            for phrase in (keyword.phrase, *keyword.aliases):
                phrase_tokens = tuple(tokens(phrase))
                if phrase_tokens:
                    self._by_first[phrase_tokens[0]].append(
                        _Trigger(phrase, phrase_tokens, keyword)
                    )
        for triggers in self._by_first.values():
            # Longest first, so "too expensive" wins over "expensive" at the same place.
            triggers.sort(key=lambda trigger: -len(trigger.tokens))

    def __len__(self) -> int:
        return sum(len(triggers) for triggers in self._by_first.values())

    def detect(self, segment: call_pb2.TranscriptSegment) -> list[call_pb2.Detection]:
        """Detections in one segment: one per keyword, at its first mention."""
        stream = _segment_tokens(segment)
        found: dict[str, call_pb2.Detection] = {}
        for start, token in enumerate(stream):
            for trigger in self._by_first.get(token.text, ()):
                keyword = trigger.keyword
                if keyword.keyword_id in found or not _speaker_fits(keyword, segment):
                    continue
                end = start + len(trigger.tokens)
                if tuple(t.text for t in stream[start:end]) != trigger.tokens:
                    continue
                found[keyword.keyword_id] = _detection(trigger, segment, stream[start:end])
        return list(found.values())


def _speaker_fits(keyword: pb.Keyword, segment: call_pb2.TranscriptSegment) -> bool:
    wanted = keyword.speaker
    return wanted == call_pb2.SPEAKER_ROLE_UNSPECIFIED or segment.speaker in (wanted, *_ANYONE)


def _segment_tokens(segment: call_pb2.TranscriptSegment) -> list[_Token]:
    if not segment.words:
        return [_Token(text, -1) for text in tokens(segment.text)]
    return [
        _Token(text, index)
        for index, word in enumerate(segment.words)
        for text in tokens(word.text)
    ]


def _join(words: Iterable[str]) -> str:
    # Whisper splits "follow-up" into "follow" and "-up": no space before such a piece.
    text = ""
    for word in words:
        text += word if not text or word[:1] in "-'" else f" {word}"
    return text


def _detection(
    trigger: _Trigger, segment: call_pb2.TranscriptSegment, matched: Sequence[_Token]
) -> call_pb2.Detection:
    start: duration_pb2.Duration = segment.start_offset
    end: duration_pb2.Duration = segment.end_offset
    if matched[0].word >= 0:
        words = segment.words[matched[0].word : matched[-1].word + 1]
        start, end = words[0].start_offset, words[-1].end_offset
        matched_text = _join(word.text.strip() for word in words)
    else:
        matched_text = " ".join(token.text for token in matched)
    return call_pb2.Detection(
        detection_id=str(uuid.uuid4()),
        keyword_id=trigger.keyword.keyword_id,
        phrase=trigger.phrase,
        matched_text=matched_text,
        segment_id=segment.segment_id,
        channel=segment.channel,
        speaker=segment.speaker,
        start_offset=start,
        end_offset=end,
        score=1.0,
        state=call_pb2.DETECTION_STATE_CONFIRMED,
        talking_point=trigger.keyword.talking_point,
    )
