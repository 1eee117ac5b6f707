"""Streams a WAV recording through the gateway and shows what comes back, live."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import av

from callcue.call.v1 import call_pb2
from callcue.core.durations import seconds
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

CHUNK_SECONDS = 0.1
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


class RecordingError(ValueError):
    pass


@dataclass(frozen=True)
class Recording:
    pcm: bytes
    audio_format: call_pb2.AudioFormat

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (
            2 * self.audio_format.channel_count * self.audio_format.sample_rate_hertz
        )


def read_recording(path: Path) -> Recording:
    """Any recording FFmpeg decodes (WAV, FLAC, MP3, M4A, Ogg, ...) as 16-bit PCM, at its own
    sample rate (within the 8 to 48 kHz a call may have) and channels (mixed to mono past 8),
    through PyAV as the service's uploads are."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise RecordingError(f"{path}: no audio in it")
            stream = container.streams.audio[0]
            rate = min(max(stream.rate or 16000, 8000), 48000)
            layout = stream.layout.name if 1 <= stream.channels <= 8 else "mono"
            resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
            pcm = bytearray()
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    pcm += converted.to_ndarray().tobytes()
            for converted in resampler.resample(None):
                pcm += converted.to_ndarray().tobytes()
            channels = len(av.AudioLayout(layout).channels)
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise RecordingError(f"{path}: not a recording FFmpeg can read ({error})") from None
    if not pcm:
        raise RecordingError(f"{path}: the recording holds no audio")
    return Recording(
        bytes(pcm),
        call_pb2.AudioFormat(
            encoding=call_pb2.AUDIO_ENCODING_LINEAR16,
            sample_rate_hertz=rate,
            channel_count=channels,
        ),
    )


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


async def stream_call(
    gateway: pb_grpc.GatewayServiceAsyncStub,
    recording: Recording,
    config: pb.CallConfig,
    view: CallView,
    *,
    realtime: bool = True,
    on_session: Callable[[str], None] | None = None,
) -> CallReport:
    """Sends the recording in 100 ms chunks, paced like a live call unless realtime is
    False, and shows what comes back as it arrives."""
    chunk = int(
        2
        * recording.audio_format.channel_count
        * recording.audio_format.sample_rate_hertz
        * CHUNK_SECONDS
    )
    started = time.monotonic()

    async def chunks() -> AsyncIterator[bytes]:
        for index, start in enumerate(range(0, len(recording.pcm), chunk)):
            if realtime:
                await asyncio.sleep(max(0.0, started + index * CHUNK_SECONDS - time.monotonic()))
            yield recording.pcm[start : start + chunk]

    return await stream_audio(
        gateway,
        chunks(),
        recording.audio_format,
        config,
        view,
        started=started if realtime else None,
        on_session=on_session,
    )


async def stream_audio(
    gateway: pb_grpc.GatewayServiceAsyncStub,
    chunks: AsyncIterator[bytes],
    audio_format: call_pb2.AudioFormat,
    config: pb.CallConfig,
    view: CallView,
    *,
    started: float | None = None,
    on_session: Callable[[str], None] | None = None,
) -> CallReport:
    """Streams audio as it comes (a recording, a microphone) and shows the call. With
    ``started`` (when the audio began, paced in real time) views time the talking points."""
    config.audio_format.CopyFrom(audio_format)

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(config=config)
        async for chunk in chunks:
            yield pb.StreamCallRequest(audio=chunk)

    if started is not None:
        view.begin(started)
    view.connection("connecting")
    try:
        async for response in gateway.StreamCall(requests()):
            if not view.report.session_id and on_session is not None:
                on_session(response.event.session_id)
            view.show(response.event)
    finally:
        view.close()
    return view.report


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
