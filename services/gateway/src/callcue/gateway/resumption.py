"""Carrying a live call's transcript over from a lost transcriber stream to a new one.

A new stream starts with the audio after the last final word of the channel furthest
behind. It counts time from its own first byte and numbers its segments afresh, so its
segments are shifted into call time, given ids of their own, and stripped of the words a
channel already had as final (the channels ahead hear some audio twice).
"""

from __future__ import annotations

from google.protobuf import duration_pb2

from callcue.call.v1 import call_pb2
from callcue.core.backoff import Backoff
from callcue.core.durations import seconds
from callcue.gateway.retries import GIVE_UP_AFTER

# A word ending this close to a channel's last final word is the same word heard again.
_SAME_WORD_SECONDS = 0.05


def _shift(value: duration_pb2.Duration, by: float) -> None:
    value.FromNanoseconds(value.ToNanoseconds() + round(by * 1e9))


class Resumption:
    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.offset = 0.0  # call time of the current stream's first byte
        self.streams = 0  # streams before the current one
        # Attempts in a row that delivered nothing: a segment resets it.
        self.backoff = Backoff(give_up_after=GIVE_UP_AFTER)
        self.final_until = [0.0] * channels  # end of each channel's last final word

    def resume_point(self) -> float:
        """Where the next stream should start: the channel furthest behind has all its
        final words before it, and nothing after it is lost."""
        return min(self.final_until)

    def restart(self, offset: float) -> None:
        self.streams += 1
        self.offset = offset

    def adopt(self, segment: call_pb2.TranscriptSegment) -> call_pb2.TranscriptSegment | None:
        """The segment in call terms; None if it only repeats final words."""
        self.backoff.reset()
        if self.streams == 0:
            if segment.is_final and segment.words:
                self._finalised(segment)
            return segment
        adopted = call_pb2.TranscriptSegment()
        adopted.CopyFrom(segment)
        adopted.segment_id = f"r{self.streams}.{segment.segment_id}"
        for field in (adopted.start_offset, adopted.end_offset):
            _shift(field, self.offset)
        for word in adopted.words:
            _shift(word.start_offset, self.offset)
            _shift(word.end_offset, self.offset)
        heard = self.final_until[segment.channel] if segment.channel < self.channels else 0.0
        fresh = [w for w in adopted.words if seconds(w.end_offset) > heard + _SAME_WORD_SECONDS]
        if len(fresh) != len(adopted.words):
            if not fresh:
                return None
            del adopted.words[:]
            adopted.words.extend(fresh)
            adopted.text = " ".join(word.text for word in fresh)
            adopted.start_offset.CopyFrom(fresh[0].start_offset)
        if adopted.is_final and adopted.words:
            self._finalised(adopted)
        return adopted

    def _finalised(self, segment: call_pb2.TranscriptSegment) -> None:
        if segment.channel < self.channels:
            end = seconds(segment.words[-1].end_offset)
            self.final_until[segment.channel] = max(self.final_until[segment.channel], end)
