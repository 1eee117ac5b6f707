"""One call's detections: which matches become talking points, and when.

Per channel, the tail of the last final segment is carried into the next, so a phrase
split across two segments is found once. With interim results a match in a partial
segment fires at once as TENTATIVE; the final segment that covers its time confirms it
(same detection_id) or retracts it. A keyword has at most one tentative mention per
channel, so one spoken mention gives one detection however many partials show it. Words
straight after the same words ("Savings, savings.") are one mention: Whisper loops on a
word it is unsure of, and a person repeating it means no second talking point.
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from google.protobuf import duration_pb2

from callcue.call.v1 import call_pb2
from callcue.core.durations import seconds
from callcue.detector.matcher import KeywordMatcher, Match
from callcue.detector.text import token_starts, tokens
from callcue.detector.v1 import detector_service_pb2 as pb

_ANYONE = (call_pb2.SPEAKER_ROLE_UNSPECIFIED, call_pb2.SPEAKER_ROLE_MIXED)
# A final that reaches this close to a tentative mention's end has had its chance to
# contain it (word timings of partial and final decodes differ by a little).
_COVER_TOLERANCE = 0.25
# A final match this close in time to a tentative one is the same mention.
_SAME_MENTION_SECONDS = 1.5
# Longer than this without an end mark, a "sentence" is a run-on: start a new one.
_MAX_SENTENCE_CHARS = 300
_CONFIRMED = call_pb2.DETECTION_STATE_CONFIRMED
_TENTATIVE = call_pb2.DETECTION_STATE_TENTATIVE
_RETRACTED = call_pb2.DETECTION_STATE_RETRACTED


class _Said:
    """One segment's tokens and, worked out only when a match needs them (most segments
    match nothing), the transcript word each token came from."""

    def __init__(self, segment: call_pb2.TranscriptSegment) -> None:
        self.segment = segment
        self.tokens = tokens(segment.text)
        self._owners: list[call_pb2.Word | None] | None = None

    def owners(self) -> list[call_pb2.Word | None]:
        if self._owners is None:
            self._owners = _owners(self.segment, len(self.tokens))
        return self._owners


class _Carry:
    """The last tokens of a channel's finals, so a phrase split across two is found."""

    def __init__(self, pieces: Sequence[tuple[_Said, int]] = ()) -> None:
        self.pieces = pieces  # (segment, the first of its tokens carried)
        self.tokens = [token for said, first in pieces for token in said.tokens[first:]]

    def owners(self) -> list[call_pb2.Word | None]:
        return [owner for said, first in self.pieces for owner in said.owners()[first:]]

    def then(self, said: _Said, keep: int) -> _Carry:
        if len(said.tokens) >= keep:  # the usual case: the new segment alone is enough
            return _Carry([(said, len(said.tokens) - keep)])
        pieces: list[tuple[_Said, int]] = []
        total = 0
        for piece, first in reversed([*self.pieces, (said, 0)]):
            if total >= keep:
                break
            take = min(keep - total, len(piece.tokens) - first)
            pieces.append((piece, len(piece.tokens) - take))
            total += take
        return _Carry(pieces[::-1])


@dataclass
class _Sentence:
    text: str = ""
    fired: set[str] = field(default_factory=set)  # keywords it already fired


@dataclass
class _KeywordState:
    fired: int = 0  # confirmed and tentative detections
    last_end: float | None = None  # call time of the last one's end


class CallDetector:
    def __init__(self, matcher: KeywordMatcher, *, interim: bool) -> None:
        self.matcher = matcher
        self._interim = interim
        self._carry: dict[int, _Carry] = {}
        self._tentative: dict[int, list[call_pb2.Detection]] = {}
        self._state: dict[str, _KeywordState] = {}
        self._sentences: dict[int, _Sentence] = {}

    def update(self, segment: call_pb2.TranscriptSegment) -> list[call_pb2.Detection]:
        """Detections (new, confirmed or retracted) that this segment causes."""
        if not segment.is_final:
            return self._partial(segment) if self._interim else []
        return self._final(segment)

    def finish(self) -> list[call_pb2.Detection]:
        """The call ended: tentative mentions no final confirmed are retracted."""
        retracted = []
        for pending in self._tentative.values():
            retracted += [self._retract(detection) for detection in pending]
        self._tentative.clear()
        return retracted

    def _final(self, segment: call_pb2.TranscriptSegment) -> list[call_pb2.Detection]:
        carry = self._carry.setdefault(segment.channel, _Carry())
        said = _Said(segment)
        carried = carry.tokens
        stream = carried + said.tokens
        out: list[call_pb2.Detection] = []
        pending = self._tentative.setdefault(segment.channel, [])
        matches = self.matcher.find(stream, len(carried))
        words = carry.owners() + said.owners() if matches else []
        for match in matches:
            if not _speaker_fits(match.keyword, segment) or _repeated(stream, match):
                continue
            # Every mention counts (conditions such as a cooldown decide what fires).
            detection = _detection(match, segment, stream, words)
            same = _same_mention(pending, detection)
            if same is not None:
                pending.remove(same)
                detection.detection_id = same.detection_id
                out.append(detection)
            elif self._allowed(match.keyword, detection):
                out.append(self._fire(detection))
        if self.matcher.uses_sentences:
            heard = {detection.keyword_id for detection in out}
            matches, sentence = self._meanings(segment, heard)
            for match in matches:
                detection = _detection(match, segment, (), ())
                detection.matched_text = sentence
                if self._allowed(match.keyword, detection):
                    out.append(self._fire(detection))
        if pending:
            segment_end = seconds(segment.end_offset)
            for detection in list(pending):
                if seconds(detection.end_offset) <= segment_end + _COVER_TOLERANCE:
                    pending.remove(detection)
                    out.append(self._retract(detection))
        self._carry[segment.channel] = carry.then(said, max(self.matcher.longest - 1, 0))
        return out

    def _partial(self, segment: call_pb2.TranscriptSegment) -> list[call_pb2.Detection]:
        carry = self._carry.get(segment.channel, _Carry())
        said = _Said(segment)
        carried = carry.tokens
        stream = carried + said.tokens
        pending = self._tentative.setdefault(segment.channel, [])
        out = []
        # One tentative mention per keyword at a time: partials repeat what they showed.
        for match in self._first_per_keyword(self.matcher.find(stream, len(carried)), segment):
            if any(d.keyword_id == match.keyword.keyword_id for d in pending):
                continue
            detection = _detection(match, segment, stream, carry.owners() + said.owners())
            detection.state = _TENTATIVE
            if self._allowed(match.keyword, detection):
                pending.append(detection)
                out.append(self._fire(detection))
        return out

    @staticmethod
    def _first_per_keyword(
        matches: Iterable[Match], segment: call_pb2.TranscriptSegment
    ) -> list[Match]:
        found: dict[str, Match] = {}
        for match in matches:
            keyword = match.keyword
            if keyword.keyword_id not in found and _speaker_fits(keyword, segment):
                found[keyword.keyword_id] = match
        return list(found.values())

    def _meanings(
        self, segment: call_pb2.TranscriptSegment, heard: set[str]
    ) -> tuple[list[Match], str]:
        """Semantic matches of the sentence this final segment ends or continues: finals
        are fragments, and meaning lives in whole sentences."""
        sentence = self._sentences.setdefault(segment.channel, _Sentence())
        sentence.text = f"{sentence.text} {segment.text.strip()}".strip()
        found = []
        for match in self.matcher.find_meaning(sentence.text):
            keyword_id = match.keyword.keyword_id
            if keyword_id in heard or keyword_id in sentence.fired:
                continue
            if _speaker_fits(match.keyword, segment):
                sentence.fired.add(keyword_id)
                found.append(match)
        if sentence.text.endswith((".", "?", "!")) or len(sentence.text) > _MAX_SENTENCE_CHARS:
            self._sentences[segment.channel] = _Sentence()
        return found, sentence.text

    def _allowed(self, keyword: pb.Keyword, detection: call_pb2.Detection) -> bool:
        conditions = keyword.conditions
        start = seconds(detection.start_offset)
        if start < seconds(conditions.active_from):
            return False
        until = seconds(conditions.active_until)
        if until and start > until:
            return False
        state = self._state.get(keyword.keyword_id, _KeywordState())
        if conditions.max_per_call and state.fired >= conditions.max_per_call:
            return False
        cooldown = seconds(conditions.cooldown)
        return not (cooldown and state.last_end is not None and start - state.last_end < cooldown)

    def _fire(self, detection: call_pb2.Detection) -> call_pb2.Detection:
        state = self._state.setdefault(detection.keyword_id, _KeywordState())
        state.fired += 1
        state.last_end = seconds(detection.end_offset)
        return detection

    def _retract(self, detection: call_pb2.Detection) -> call_pb2.Detection:
        state = self._state.get(detection.keyword_id)
        if state is not None:
            state.fired -= 1
        retracted = call_pb2.Detection()
        retracted.CopyFrom(detection)
        retracted.state = _RETRACTED
        return retracted


def _speaker_fits(keyword: pb.Keyword, segment: call_pb2.TranscriptSegment) -> bool:
    wanted = keyword.speaker
    return wanted == call_pb2.SPEAKER_ROLE_UNSPECIFIED or segment.speaker in (wanted, *_ANYONE)


def _repeated(stream: Sequence[str], match: Match) -> bool:
    length = match.end - match.start
    before = match.start - length
    return before >= 0 and stream[before : match.start] == stream[match.start : match.end]


def _owners(segment: call_pb2.TranscriptSegment, count: int) -> list[call_pb2.Word | None]:
    """The word each of the segment text's ``count`` tokens lies in, found by where the
    words sit in the text; all None (segment timing only) if they cannot be placed."""
    text = segment.text
    ends: list[int] = []
    position = 0
    for word in segment.words:
        piece = word.text.strip()
        found = text.find(piece, position) if piece else -1
        if found < 0:
            return [None] * count
        position = found + len(piece)
        ends.append(position)
    starts = token_starts(text)
    if len(starts) != count or not ends:
        return [None] * count
    owners: list[call_pb2.Word | None] = []
    for start in starts:
        index = bisect_right(ends, start)
        owners.append(segment.words[index] if index < len(ends) else None)
    return owners


def _same_mention(
    pending: Sequence[call_pb2.Detection], detection: call_pb2.Detection
) -> call_pb2.Detection | None:
    for candidate in pending:
        if (
            candidate.keyword_id == detection.keyword_id
            and abs(seconds(candidate.start_offset) - seconds(detection.start_offset))
            <= _SAME_MENTION_SECONDS
        ):
            return candidate
    return None


def _join(words: Iterable[str]) -> str:
    # Whisper splits "follow-up" into "follow" and "-up": no space before such a piece.
    text = ""
    for word in words:
        text += word if not text or word[:1] in "-'" else f" {word}"
    return text


def _detection(
    match: Match,
    segment: call_pb2.TranscriptSegment,
    stream: Sequence[str],
    owners: Sequence[call_pb2.Word | None],
) -> call_pb2.Detection:
    start: duration_pb2.Duration = segment.start_offset
    end: duration_pb2.Duration = segment.end_offset
    matched = owners[match.start : match.end]
    words: list[call_pb2.Word] = []
    for word in matched:
        if word is not None and (not words or words[-1] is not word):
            words.append(word)
    if words and all(word is not None for word in matched):
        start, end = words[0].start_offset, words[-1].end_offset
        matched_text = _join(word.text.strip() for word in words)
    else:
        matched_text = " ".join(stream[match.start : match.end])
    return call_pb2.Detection(
        detection_id=str(uuid.uuid4()),
        keyword_id=match.keyword.keyword_id,
        phrase=match.phrase,
        matched_text=matched_text,
        segment_id=segment.segment_id,
        channel=segment.channel,
        speaker=segment.speaker,
        start_offset=start,
        end_offset=end,
        score=match.score,
        state=_CONFIRMED,
        talking_point=match.keyword.talking_point,
    )
