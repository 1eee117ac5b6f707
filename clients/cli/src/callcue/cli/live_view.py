"""The live terminal view of a call: the transcript as it is spoken (partials in grey, each
line marked with its speaker), talking-point cards as they fire, and a status line with
the connection, the engine and how far behind the call the screen is.

Finished utterances and a one-line record of each card scroll up into the terminal's
history; the bottom of the screen holds what is still changing: the open utterance of each
speaker, the latest cards in full, and the status line."""

from __future__ import annotations

import statistics
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.segment import Segment
from rich.text import Text

from callcue.call.v1 import call_pb2
from callcue.cli.text_view import (
    CallReport,
    CallView,
    EventView,
    Output,
    card_delay,
    category_name,
    clock,
    role_name,
)
from callcue.core.durations import seconds

PAUSE_SECONDS = 0.5  # a longer silence within one speaker's turn starts a new line
CARDS_ON_SCREEN = 3
NOTE_SECONDS = 8.0  # how long a passing status message (a failover) stays on the status line

SPEAKER_STYLE = {"rep": "bold cyan", "prospect": "bold magenta", "call": "bold white"}
CATEGORY_STYLE = {
    "competitor": "red",
    "objection": "yellow",
    "pricing": "green",
    "next_step": "blue",
    "compliance": "magenta",
}
CONNECTION_STYLE = {
    "connecting": ("◌", "yellow"),
    "live": ("●", "green"),
    "reconnecting": ("◌", "yellow"),
    "ended": ("■", "blue"),
    "failed": ("✖", "red"),
}


@dataclass
class _Utterance:
    """One speaker's current line: the words that are final, then the partial rest."""

    channel: int
    speaker: str
    start: float
    end: float = 0.0
    finals: list[str] = field(default_factory=list)
    partial: str = ""

    def render(self) -> Text:
        line = Text.assemble(
            (f"[{clock(self.start)}] ", "dim"),
            (f"{self.speaker:>8}", SPEAKER_STYLE.get(self.speaker, "bold")),
            ": ",
            " ".join(self.finals),
        )
        if self.partial:
            line.append((" " if self.finals else "") + self.partial, style="dim italic")
        return line


class LiveView:
    """A CallView for a terminal. Use as a context manager around the call; ``show`` takes
    events from the stream, the screen redraws a few times a second (the clock and the lag
    move on between events)."""

    def __init__(self, console: Console, *, title: str = "") -> None:
        self.report = CallReport()
        self._console = console
        self._title = title
        self._lock = threading.Lock()  # rich redraws from its own thread
        self._started: float | None = None
        self._open: dict[int, _Utterance] = {}
        self._cards: list[call_pb2.Detection] = []
        # One-line records of new cards, held until the utterance they were heard in has
        # scrolled up, so the history reads in order: (where heard, id, record).
        self._records: list[tuple[float, str, Text]] = []
        self._state = "connecting"
        self._detail = ""
        self._engine = ""
        self._model = ""
        # Seconds from the end of the latest words in the audio to their text arriving (a
        # call streamed in real time), or from an event's creation to its arrival (watch).
        self._latency: float | None = None
        self._audio_seconds = 0.0
        self._progress: float | None = None
        self._note = ""
        self._note_until = 0.0
        self._live = Live(
            console=console, get_renderable=self.screen, refresh_per_second=4, transient=False
        )

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def begin(self, started: float) -> None:
        with self._lock:
            self._started = started

    def connection(self, state: str, detail: str = "") -> None:
        with self._lock:
            self._state, self._detail = state, detail

    def show(self, event: call_pb2.CallEvent) -> None:
        with self._lock:
            report = self.report
            report.events += 1
            report.session_id = event.session_id
            if self._state in ("connecting", "reconnecting"):
                self._state, self._detail = "live", ""
            if self._started is None and event.HasField("create_time"):
                self._latency = max(0.0, time.time() - event.create_time.ToNanoseconds() / 1e9)
            kind = event.WhichOneof("event")
            if kind == "transcript":
                self._transcript(event.transcript)
            elif kind == "detection":
                self._detection(event.detection)
            else:
                self._status(event.status)
        if self._live.is_started:
            self._live.refresh()

    def close(self) -> None:
        with self._lock:
            for utterance in sorted(self._open.values(), key=lambda u: u.start):
                self._flush(utterance)
            self._print_records(float("inf"))
            if self._state in ("connecting", "live", "reconnecting"):
                self._state = "ended" if self.report.final_state else "failed"
                if not self.report.final_state:
                    self._detail = self._detail or "the stream broke off"
        if self._live.is_started:
            self._live.refresh()
            self._live.stop()

    # The rest runs under the lock.

    def _transcript(self, segment: call_pb2.TranscriptSegment) -> None:
        start, end = seconds(segment.start_offset), seconds(segment.end_offset)
        if self._started is not None:
            self._latency = time.monotonic() - self._started - end
        self._audio_seconds = max(self._audio_seconds, end)
        line = self._open.get(segment.channel)
        if segment.is_final:
            self.report.finals.append(segment)
            if line is not None and line.finals and start - line.end > PAUSE_SECONDS:
                self._flush(line)
                line = None
            # The other speaker's line scrolls up once this one has moved past it (and it
            # has nothing more under way), so the history reads in the order of the call.
            for other in list(self._open.values()):
                if (
                    other.channel != segment.channel
                    and other.finals
                    and not other.partial
                    and other.end < start
                ):
                    self._flush(other)
            if line is None:
                line = self._open[segment.channel] = _Utterance(
                    segment.channel, role_name(segment.speaker), start
                )
            line.finals.append(segment.text)
            line.end, line.partial = end, ""
        else:
            if line is None:
                line = self._open[segment.channel] = _Utterance(
                    segment.channel, role_name(segment.speaker), start
                )
            line.partial = segment.text

    def _flush(self, line: _Utterance) -> None:
        del self._open[line.channel]
        if line.finals:
            line.partial = ""
            self._console.print(line.render())
        self._print_records(line.end)

    def _print_records(self, until: float) -> None:
        for record in sorted(r for r in self._records if r[0] <= until):
            self._console.print(record[2])
        self._records = [r for r in self._records if r[0] > until]

    def _detection(self, detection: call_pb2.Detection) -> None:
        delay = card_delay(detection, self._started)
        change = self.report.take(detection, delay)
        point = detection.talking_point
        if change == "withdrawn":
            self._cards = [c for c in self._cards if c.detection_id != detection.detection_id]
            held = len(self._records)
            self._records = [r for r in self._records if r[1] != detection.detection_id]
            if len(self._records) == held:
                self._console.print(Text(f"  ◁ withdrawn: {point.title}", style="dim"))
        elif change == "new":
            self._cards.append(detection)
            style = CATEGORY_STYLE.get(category_name(point.category), "white")
            timing = f", card {delay:.2f} s after the words" if delay is not None else ""
            heard = seconds(detection.start_offset)
            record = Text.assemble(
                ("  ▶ ", style),
                (point.title, f"bold {style}"),
                f'  heard "{detection.matched_text}" at {clock(heard)}{timing}',
            )
            if any(u.start <= heard for u in self._open.values()):
                self._records.append((heard, detection.detection_id, record))
            else:
                self._console.print(record)
        else:  # a confirmation: the card on screen loses its "tentative" mark
            self._cards = [
                detection if c.detection_id == detection.detection_id else c for c in self._cards
            ]

    def _status(self, status: call_pb2.CallStatus) -> None:
        self.report.final_state = call_pb2.CallState.Name(status.state)
        if status.engine:
            self._engine, self._model = status.engine, status.model
        if status.HasField("audio_received"):
            self._audio_seconds = max(self._audio_seconds, seconds(status.audio_received))
        if status.progress_percent:
            self._progress = status.progress_percent
        if status.state == call_pb2.CALL_STATE_ENDED:
            self._state, self._detail = "ended", status.message
            self._progress = 100.0 if self._progress is not None else None
        elif status.state == call_pb2.CALL_STATE_FAILED:
            self._state, self._detail = "failed", status.message
        elif status.message and not status.progress_percent:
            self._note, self._note_until = status.message, time.monotonic() + NOTE_SECONDS

    def screen(self) -> RenderableType:
        """The bottom of the screen: what is still changing."""
        with self._lock:
            parts: list[RenderableType] = [
                u.render() for u in sorted(self._open.values(), key=lambda u: u.start)
            ]
            parts.extend(self._card(card) for card in self._cards[-CARDS_ON_SCREEN:])
            parts.append(self.status_line())
            return Group(*parts)

    def _card(self, detection: call_pb2.Detection) -> Panel:
        point = detection.talking_point
        category = category_name(point.category)
        style = CATEGORY_STYLE.get(category, "white")
        tentative = detection.state == call_pb2.DETECTION_STATE_TENTATIVE
        rank = f" · priority {point.priority}" if point.priority else ""
        links = "\n".join(f"- <{link}>" for link in point.links)
        body = Markdown("\n\n".join(part for part in (point.body.strip(), links) if part))
        return Panel(
            _Trimmed(body),
            title=Text.assemble((point.title, f"bold {style}"), f"  {category}{rank}"),
            title_align="left",
            subtitle=(
                f'heard "{detection.matched_text}" at {clock(seconds(detection.start_offset))}'
                + (" · tentative" if tentative else "")
            ),
            subtitle_align="right",
            border_style=f"dim {style}" if tentative else style,
        )

    def status_line(self) -> Text:
        """Connection, call clock, engine, latency, talking points, then what the call is;
        one line, cut short on a narrow terminal."""
        mark, style = CONNECTION_STYLE.get(self._state, ("?", "white"))
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{mark} {self._state}", style=f"bold {style}")
        if self._detail and self._state != "live":
            line.append(f" ({self._detail})", style=style)
        fields: list[Text | str] = []
        now = time.monotonic()
        if self._started is not None and self._state == "live":
            fields.append(clock(now - self._started))
        elif self._audio_seconds:
            fields.append(clock(self._audio_seconds))
        if self._engine:
            fields.append(f"{self._engine} · {self._model}" if self._model else self._engine)
        if self._latency is not None and self._state == "live":
            what = "words" if self._started is not None else "events"
            fields.append(_latency(what, self._latency))
        if self._progress is not None:
            fields.append(_bar(self._progress))
        shown = len(self.report.shown)
        cards = f"{shown} card{'s' * (shown != 1)}"
        if delays := self.report.detection_delays:
            cards += f", median +{statistics.median(delays):.2f} s"
        fields.append(cards)
        if self._note and now < self._note_until:
            fields.append(Text(self._note, style="yellow"))
        if self._title:
            fields.append(Text(self._title, style="dim"))
        for field_ in fields:
            line.append(" │ ", style="dim")
            line.append(field_)
        return line


class _Trimmed:
    """A renderable without its leading blank lines (rich's Markdown opens a list with one,
    which wastes a line of every card)."""

    def __init__(self, renderable: RenderableType) -> None:
        self._renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self._renderable, options, pad=False)
        while lines and not "".join(segment.text for segment in lines[0]).strip():
            lines.pop(0)
        new_line = Segment.line()
        for line in lines:
            yield from line
            yield new_line


def _latency(what: str, delay: float) -> Text:
    style = "green" if delay < 1.5 else "yellow" if delay < 4 else "red"
    return Text(f"{what} +{delay:.1f} s", style=style)


def _bar(percent: float, width: int = 20) -> Text:
    filled = round(percent / 100 * width)
    return Text.assemble(
        ("━" * filled, "green"), ("━" * (width - filled), "dim"), f" {percent:3.0f}%"
    )


def open_view(
    out: Output, *, plain: bool = False, title: str = ""
) -> AbstractContextManager[CallView]:
    """The live screen on a terminal, plain lines otherwise (a pipe, a log, ``--plain``)."""
    if out.isatty() and not plain:
        return LiveView(Console(file=out), title=title)  # type: ignore[arg-type]
    return nullcontext(EventView(out))
