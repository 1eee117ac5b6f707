"""A session's final transcript as subtitle files (SubRip, WebVTT) or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import json_format

from callcue.call.v1 import call_pb2
from callcue.core.durations import seconds
from callcue.gateway.v1 import gateway_service_pb2 as pb

# Final segments are the pieces of an utterance as they settle; a cue joins the pieces of
# one speaker that follow each other closely, up to a length people can read.
_JOIN_GAP_SECONDS = 0.8
_MAX_CUE_SECONDS = 7.0
_MAX_CUE_CHARS = 120
_SPEAKERS: dict[int, str] = {
    call_pb2.SPEAKER_ROLE_REP: "Rep",
    call_pb2.SPEAKER_ROLE_PROSPECT: "Prospect",
}


@dataclass
class Cue:
    start: float
    end: float
    channel: int
    speaker: int
    text: str


def cues(segments: Sequence[call_pb2.TranscriptSegment]) -> list[Cue]:
    joined: list[Cue] = []
    open_cue: dict[int, Cue] = {}
    for segment in sorted(segments, key=lambda s: (seconds(s.start_offset), s.channel)):
        start, end = seconds(segment.start_offset), seconds(segment.end_offset)
        text = segment.text.strip()
        if not text:
            continue
        cue = open_cue.get(segment.channel)
        if (
            cue is not None
            and start - cue.end <= _JOIN_GAP_SECONDS
            and end - cue.start <= _MAX_CUE_SECONDS
            and len(cue.text) + len(text) < _MAX_CUE_CHARS
        ):
            cue.end, cue.text = end, f"{cue.text} {text}"
            continue
        cue = Cue(start, end, segment.channel, segment.speaker, text)
        open_cue[segment.channel] = cue
        joined.append(cue)
    return joined


def _clock(at: float, separator: str) -> str:
    millis = round(at * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _speaker(cue: Cue) -> str:
    return _SPEAKERS.get(cue.speaker, f"Channel {cue.channel + 1}" if cue.channel else "")


def srt(segments: Sequence[call_pb2.TranscriptSegment]) -> str:
    blocks = []
    for number, cue in enumerate(cues(segments), start=1):
        speaker = _speaker(cue)
        text = f"{speaker}: {cue.text}" if speaker else cue.text
        blocks.append(f"{number}\n{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}\n{text}\n")
    return "\n".join(blocks)


def webvtt(segments: Sequence[call_pb2.TranscriptSegment]) -> str:
    blocks = ["WEBVTT\n"]
    for cue in cues(segments):
        speaker = _speaker(cue)
        # "-->" may not appear in a cue's text; WebVTT escapes &, < and >.
        text = cue.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = f"<v {speaker}>{text}" if speaker else text
        blocks.append(f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}\n{text}\n")
    return "\n".join(blocks)


def as_json(
    session: pb.Session,
    segments: Sequence[call_pb2.TranscriptSegment],
    detections: Sequence[call_pb2.Detection],
) -> str:
    document = {
        "session": json_format.MessageToDict(session),
        "segments": [json_format.MessageToDict(s) for s in segments],
        "detections": [json_format.MessageToDict(d) for d in detections],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


FORMATS = {
    pb.TRANSCRIPT_FORMAT_SRT: ("application/x-subrip", "srt"),
    pb.TRANSCRIPT_FORMAT_WEBVTT: ("text/vtt", "vtt"),
    pb.TRANSCRIPT_FORMAT_JSON: ("application/json", "json"),
}
