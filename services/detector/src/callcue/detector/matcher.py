"""Finds keyword phrases in transcript segments, on word boundaries, ignoring case."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from google.protobuf import duration_pb2

from callcue.call.v1 import call_pb2
from callcue.detector.text import tokens
from callcue.detector.v1 import detector_service_pb2 as pb

_ANYONE = (call_pb2.SPEAKER_ROLE_UNSPECIFIED, call_pb2.SPEAKER_ROLE_MIXED)


@dataclass(frozen=True)
class Token:
    text: str
    word: call_pb2.Word | None  # the transcript word it came from, if it had timings
    fresh: bool  # from the segment being matched, not carried over from an earlier one


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
        self.longest = 1
        for keyword in keywords:
            for phrase in (keyword.phrase, *keyword.aliases):
                phrase_tokens = tuple(tokens(phrase))
                if phrase_tokens:
                    self._by_first[phrase_tokens[0]].append(
                        _Trigger(phrase, phrase_tokens, keyword)
                    )
                    self.longest = max(self.longest, len(phrase_tokens))
        for triggers in self._by_first.values():
            # Longest first, so "too expensive" wins over "expensive" at the same place.
            triggers.sort(key=lambda trigger: -len(trigger.tokens))

    def __len__(self) -> int:
        return sum(len(triggers) for triggers in self._by_first.values())

    def detect(
        self, segment: call_pb2.TranscriptSegment, carried: Sequence[Token] = ()
    ) -> list[call_pb2.Detection]:
        """Detections in one segment: one per keyword, at its first mention. ``carried``
        (the tail of the channel's previous final segment) lets a phrase split across two
        segments match; a match must end in this segment, so nothing fires twice."""
        stream = [*carried, *_segment_tokens(segment)]
        found: dict[str, call_pb2.Detection] = {}
        for start, token in enumerate(stream):
            for trigger in self._by_first.get(token.text, ()):
                keyword = trigger.keyword
                if keyword.keyword_id in found or not _speaker_fits(keyword, segment):
                    continue
                end = start + len(trigger.tokens)
                if end > len(stream) or not stream[end - 1].fresh:
                    continue
                if tuple(t.text for t in stream[start:end]) != trigger.tokens:
                    continue
                found[keyword.keyword_id] = _detection(trigger, segment, stream[start:end])
        return list(found.values())

    def tail(self, segment: call_pb2.TranscriptSegment) -> list[Token]:
        """What to carry into the channel's next segment: enough tokens for the longest
        phrase to straddle the boundary."""
        tokens = [replace(token, fresh=False) for token in _segment_tokens(segment)]
        return tokens[-(self.longest - 1) :] if self.longest > 1 else []


def _speaker_fits(keyword: pb.Keyword, segment: call_pb2.TranscriptSegment) -> bool:
    wanted = keyword.speaker
    return wanted == call_pb2.SPEAKER_ROLE_UNSPECIFIED or segment.speaker in (wanted, *_ANYONE)


def _segment_tokens(segment: call_pb2.TranscriptSegment) -> list[Token]:
    if not segment.words:
        return [Token(text, None, True) for text in tokens(segment.text)]
    return [Token(text, word, True) for word in segment.words for text in tokens(word.text)]


def _join(words: Iterable[str]) -> str:
    # Whisper splits "follow-up" into "follow" and "-up": no space before such a piece.
    text = ""
    for word in words:
        text += word if not text or word[:1] in "-'" else f" {word}"
    return text


def _detection(
    trigger: _Trigger, segment: call_pb2.TranscriptSegment, matched: Sequence[Token]
) -> call_pb2.Detection:
    start: duration_pb2.Duration = segment.start_offset
    end: duration_pb2.Duration = segment.end_offset
    words: list[call_pb2.Word] = []
    for token in matched:
        if token.word is not None and (not words or words[-1] is not token.word):
            words.append(token.word)
    if (
        words
        and len(words) == len({id(word) for word in words})
        and all(token.word is not None for token in matched)
    ):
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
