from __future__ import annotations

import io
import time

from google.protobuf.duration_pb2 import Duration
from rich.console import Console

from callcue.call.v1 import call_pb2
from callcue.cli.live_view import LiveView

REP, PROSPECT = call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT


def at(value: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(int(value * 1e9))
    return duration


class Screen:
    """A LiveView on a terminal 100 columns wide, without colour, to read what it shows."""

    def __init__(self) -> None:
        self.history = io.StringIO()
        self.console = Console(file=self.history, width=100, color_system=None, force_terminal=True)
        self.view = LiveView(self.console, title="test call")
        self.sequence = 0

    def event(self, **fields: object) -> None:
        self.sequence += 1
        self.view.show(call_pb2.CallEvent(session_id="s1", sequence=self.sequence, **fields))  # type: ignore[arg-type]

    def words(self, text: str, start: float, end: float, *, final: bool, channel: int = 0) -> None:
        self.event(
            transcript=call_pb2.TranscriptSegment(
                text=text,
                start_offset=at(start),
                end_offset=at(end),
                is_final=final,
                channel=channel,
                speaker=(REP, PROSPECT)[channel],
            )
        )

    def detection(self, detection_id: str, state: int, title: str, start: float) -> None:
        self.event(
            detection=call_pb2.Detection(
                detection_id=detection_id,
                state=state,  # type: ignore[arg-type]
                matched_text="too expensive",
                start_offset=at(start),
                end_offset=at(start + 0.8),
                talking_point=call_pb2.TalkingPoint(
                    title=title,
                    body="1. Acknowledge\n2. Reframe on value",
                    category=call_pb2.TALKING_POINT_CATEGORY_PRICING,
                    priority=90,
                ),
            )
        )

    def bottom(self) -> str:
        """What the live part of the screen shows now."""
        out = io.StringIO()
        Console(file=out, width=100, color_system=None).print(self.view.screen())
        return out.getvalue()


def test_the_screen_shows_partials_under_way_cards_and_the_engine() -> None:
    screen = Screen()
    screen.event(
        status=call_pb2.CallStatus(
            state=call_pb2.CALL_STATE_ACTIVE,
            message="transcribing",
            engine="faster-whisper",
            model="tiny.en (bundled)",
        )
    )
    screen.words("Hi Jordan", 0.4, 1.0, final=True)
    screen.words("this is Dana", 1.1, 2.0, final=False)
    screen.words("your plan looks", 2.5, 3.4, final=True, channel=1)
    screen.detection("d1", call_pb2.DETECTION_STATE_TENTATIVE, "Price objection", 3.5)
    bottom = screen.bottom()
    assert "rep: Hi Jordan this is Dana" in bottom
    assert "prospect: your plan looks" in bottom
    assert "Price objection  pricing · priority 90" in bottom and "tentative" in bottom
    assert "1 Acknowledge" in bottom
    assert "● live │ 00:03.4 │ faster-whisper · tiny.en (bundled) │ 1 card │" in bottom
    assert screen.history.getvalue() == ""  # nothing has finished yet

    screen.detection("d1", call_pb2.DETECTION_STATE_CONFIRMED, "Price objection", 3.5)
    assert "tentative" not in screen.bottom()


def test_finished_lines_scroll_up_in_spoken_order_with_their_cards() -> None:
    screen = Screen()
    screen.words("Hi Jordan", 0.4, 1.0, final=True)
    screen.words("your plan looks too expensive", 2.5, 4.3, final=True, channel=1)
    screen.detection("d1", call_pb2.DETECTION_STATE_CONFIRMED, "Price objection", 3.5)
    screen.detection("d2", call_pb2.DETECTION_STATE_TENTATIVE, "Budget", 3.6)
    screen.detection("d2", call_pb2.DETECTION_STATE_RETRACTED, "Budget", 3.6)
    # The rep answers after a pause: the prospect's line is done and scrolls up.
    screen.words("I understand", 5.0, 5.8, final=True)
    screen.view.close()
    lines = [line.strip() for line in screen.history.getvalue().splitlines() if line.strip()]
    assert lines[0].endswith("rep: Hi Jordan")
    assert lines[1].endswith("prospect: your plan looks too expensive")
    assert lines[2].startswith('▶ Price objection  heard "too expensive" at 00:03.5')
    assert lines[3].endswith("rep: I understand")
    assert len(lines) == 4  # the withdrawn card was never recorded
    assert screen.view.report.detections[0].detection_id == "d1"
    assert list(screen.view.report.shown) == ["d1"]


def test_the_status_line_follows_the_connection_and_the_end() -> None:
    screen = Screen()
    assert screen.bottom().startswith("◌ connecting")
    screen.words("Hi", 0.4, 0.8, final=True)
    screen.view.connection("reconnecting", "notifier went away")
    assert "◌ reconnecting (notifier went away)" in screen.bottom().splitlines()[-1]
    screen.words("Jordan", 0.9, 1.2, final=True)
    assert screen.bottom().splitlines()[-1].startswith("● live")
    screen.event(
        status=call_pb2.CallStatus(
            state=call_pb2.CALL_STATE_FAILED, message="transcriber unavailable"
        )
    )
    assert screen.bottom().splitlines()[-1].startswith("✖ failed (transcriber unavailable)")


def test_a_call_in_real_time_shows_its_clock_and_how_late_the_words_are() -> None:
    screen = Screen()
    screen.view.begin(time.monotonic() - 12.0)  # the audio started 12 s ago
    screen.words("too expensive", 10.0, 11.0, final=True)
    bottom = screen.bottom()
    assert "│ 00:12." in bottom
    assert "words +1.0 s" in bottom


def test_a_broken_stream_shows_as_failed_not_ended() -> None:
    screen = Screen()
    screen.words("Hi", 0.4, 0.8, final=True)
    screen.view.close()
    assert screen.bottom().startswith("✖ failed (the stream broke off)")


def test_recording_progress_shows_as_a_bar() -> None:
    screen = Screen()
    screen.event(status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_ACTIVE, progress_percent=50))
    assert "━━━━━━━━━━━━━━━━━━━━  50%" in screen.bottom()
