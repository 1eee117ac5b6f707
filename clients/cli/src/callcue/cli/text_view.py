"""The text view of a call's events: transcript lines, talking-point cards, statuses, and
what the commands report when a call ends."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from callcue.call.v1 import call_pb2
from callcue.core.durations import seconds

_ROLE = {
    call_pb2.SPEAKER_ROLE_REP: "rep",
    call_pb2.SPEAKER_ROLE_PROSPECT: "prospect",
    call_pb2.SPEAKER_ROLE_MIXED: "call",
}


class Output(Protocol):
    """Where views write: a terminal, a file, a test's buffer."""

    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...
    def isatty(self) -> bool: ...


@dataclass
class CallReport:
    session_id: str = ""
    events: int = 0
    finals: list[call_pb2.TranscriptSegment] = field(default_factory=list)
    detections: list[call_pb2.Detection] = field(default_factory=list)  # confirmed
    shown: dict[str, call_pb2.Detection] = field(default_factory=dict)  # cards on screen
    # Seconds from the end of the trigger's last word in the audio to the card arriving.
    detection_delays: list[float] = field(default_factory=list)
    final_state: str = ""

    def take(self, detection: call_pb2.Detection, delay: float | None) -> str:
        """Books a detection; says what a view should do with it: "new" (show a card),
        "withdrawn" (take it away) or "known" (already on screen). Tentative ones come early,
        from partial transcripts; their confirmation adds nothing new to show."""
        if detection.state == call_pb2.DETECTION_STATE_RETRACTED:
            return "withdrawn" if self.shown.pop(detection.detection_id, None) else "known"
        if detection.state == call_pb2.DETECTION_STATE_CONFIRMED:
            self.detections.append(detection)
        if detection.detection_id in self.shown:
            self.shown[detection.detection_id] = detection
            return "known"
        self.shown[detection.detection_id] = detection
        if delay is not None:
            self.detection_delays.append(delay)
        return "new"


class CallView(Protocol):
    """Shows a session's events to a person: plain lines or a live terminal screen."""

    report: CallReport

    def begin(self, started: float) -> None: ...
    def show(self, event: call_pb2.CallEvent) -> None: ...
    def connection(self, state: str, detail: str = "") -> None: ...
    def close(self) -> None: ...


def category_name(category: call_pb2.TalkingPointCategory.ValueType) -> str:
    return (
        call_pb2.TalkingPointCategory.Name(category).removeprefix("TALKING_POINT_CATEGORY_").lower()
    )


def role_name(role: call_pb2.SpeakerRole.ValueType) -> str:
    return _ROLE.get(role, "?")


def card_delay(detection: call_pb2.Detection, started: float | None) -> float | None:
    """Seconds from the end of the trigger's words in the audio to now, for a call whose
    audio started at ``started`` and runs in real time."""
    if started is None:
        return None
    return time.monotonic() - started - seconds(detection.end_offset)


def clock(at: float) -> str:
    return f"{int(at // 60):02d}:{at % 60:04.1f}"


class EventView:
    """Shows a session's events as lines: the transcript utterance by utterance (partials
    in grey on a terminal), talking-point cards, and status changes. For logs, pipes and
    terminals that want plain text; LiveView is the full-screen alternative."""

    def __init__(self, out: Output) -> None:
        self.report = CallReport()
        self._out = out
        self._interactive = out.isatty()
        self._line = _Line(out)
        self._started: float | None = None  # set for a call streamed in real time

    def begin(self, started: float) -> None:
        self._started = started

    def connection(self, state: str, detail: str = "") -> None:
        """Connection changes are reported by the command itself, on stderr."""

    def show(self, event: call_pb2.CallEvent) -> None:
        report, out = self.report, self._out
        report.events += 1
        report.session_id = event.session_id
        kind = event.WhichOneof("event")
        if kind == "transcript":
            segment = event.transcript
            if segment.is_final:
                report.finals.append(segment)
                self._line.final(segment)
            elif self._interactive:
                self._line.partial(segment)
            out.flush()
            return
        self._line.close()
        if kind == "detection":
            detection = event.detection
            delay = card_delay(detection, self._started)
            _show_detection(detection, report.take(detection, delay), out, delay)
        else:
            status = event.status
            report.final_state = call_pb2.CallState.Name(status.state)
            if event.sequence == 1:
                out.write(f"session {event.session_id}: {status.message}\n")
            elif status.state != call_pb2.CALL_STATE_ACTIVE:
                out.write(f"session {event.session_id}: {status.message} ({report.final_state})\n")
            elif status.progress_percent:
                out.write(f"  processing: {status.progress_percent:.0f}%\n")
            elif status.message:
                out.write(f"  ({status.message})\n")
        out.flush()

    def close(self) -> None:
        self._line.close()


def _show_detection(
    detection: call_pb2.Detection, change: str, out: Output, delay: float | None
) -> None:
    point = detection.talking_point
    if change == "withdrawn":
        out.write(f"  << withdrawn: {point.title} (the final transcript did not say it)\n")
    if change != "new":
        return
    timing = f", card {delay:.2f} s after the words ended" if delay is not None else ""
    heard = f'heard "{detection.matched_text}" at {clock(seconds(detection.start_offset))}'
    rank = f", priority {point.priority}" if point.priority else ""
    out.write(
        f"  >> TALKING POINT [{category_name(point.category)}{rank}] {point.title}"
        f"  ({heard}{timing})\n"
    )
    for body_line in point.body.strip().splitlines():
        out.write(f"     {body_line}\n")


class _Line:
    """Shows each utterance on one line that grows as its words become final; on a
    terminal the partial rest follows in grey. A pause or another speaker starts a new line.
    Without a terminal nothing is redrawn: only new words are written."""

    PAUSE_SECONDS = 0.5

    def __init__(self, out: Output) -> None:
        self._out = out
        self._tty = out.isatty()
        self._text = ""  # the final words of the open line
        self._partial = False  # whether grey partial text follows them on screen
        self._channel = -1
        self._end = 0.0

    def final(self, segment: call_pb2.TranscriptSegment) -> None:
        start = seconds(segment.start_offset)
        if (
            not self._text
            or segment.channel != self._channel
            or start - self._end > self.PAUSE_SECONDS
        ):
            self.close()
            addition = f"[{clock(start)}] {role_name(segment.speaker):>8}: {segment.text}"
        else:
            addition = f" {segment.text}"
        if self._partial:
            self._out.write("\r\033[K" + self._text)
            self._partial = False
        self._out.write(addition)
        self._text += addition
        self._channel, self._end = segment.channel, seconds(segment.end_offset)

    def partial(self, segment: call_pb2.TranscriptSegment) -> None:
        if self._text and segment.channel != self._channel:
            self.close()
        head = (
            self._text
            or f"[{clock(seconds(segment.start_offset))}] {role_name(segment.speaker):>8}:"
        )
        self._out.write(f"\r\033[K{head} \033[2m{segment.text}\033[0m")
        self._partial = True

    def close(self) -> None:
        if self._partial:
            self._out.write("\r\033[K" + self._text)
        if self._text or self._partial:
            self._out.write("\n")
        self._text, self._partial = "", False
