"""`callcue sessions` and `callcue summary`: what calls left behind, from the gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path

from callcue.call.v1 import call_pb2
from callcue.cli.json_output import as_json
from callcue.cli.text_view import Output
from callcue.core.durations import seconds
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

FORMATS = {
    "srt": pb.TRANSCRIPT_FORMAT_SRT,
    "vtt": pb.TRANSCRIPT_FORMAT_WEBVTT,
    "json": pb.TRANSCRIPT_FORMAT_JSON,
}
STATES = {"active": call_pb2.CALL_STATE_ACTIVE, "ended": call_pb2.CALL_STATE_ENDED}
STATES["failed"] = call_pb2.CALL_STATE_FAILED


def _state(value: int) -> str:
    return call_pb2.CallState.Name(value).removeprefix("CALL_STATE_").lower()  # type: ignore[arg-type]


async def list_sessions(
    gateway: pb_grpc.GatewayServiceAsyncStub,
    out: Output,
    *,
    state: str = "",
    limit: int = 20,
    json_lines: bool = False,
) -> int:
    request = pb.ListSessionsRequest(
        page_size=min(limit, 1000),
        state=STATES.get(state, call_pb2.CALL_STATE_UNSPECIFIED),
    )
    listed: list[pb.Session] = []
    while len(listed) < limit:
        page = await gateway.ListSessions(request)
        listed += page.sessions
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    for session in listed[:limit]:
        if json_lines:
            out.write(as_json(session) + "\n")
            continue
        created = session.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M")
        source = pb.SessionSource.Name(session.source).removeprefix("SESSION_SOURCE_").lower()
        out.write(
            f"{session.session_id}  {created}  {_state(session.state):<6}  {source:<6}  "
            f"{seconds(session.audio_duration):7.1f} s  {session.segment_count:4d} segments  "
            f"{session.detection_count:3d} points  {session.title}\n"
        )
    return len(listed[:limit])


async def show_session(
    gateway: pb_grpc.GatewayServiceAsyncStub, session_id: str, out: Output, *, json_out: bool
) -> None:
    session = (await gateway.GetSession(pb.GetSessionRequest(session_id=session_id))).session
    if json_out:
        out.write(as_json(session) + "\n")
        return
    rows = [
        ("session", session.session_id),
        ("title", session.title or "-"),
        (
            "state",
            _state(session.state) + (f": {session.error_message}" if session.error_message else ""),
        ),
        ("created", session.create_time.ToDatetime().isoformat(timespec="seconds") + "Z"),
        ("audio", f"{seconds(session.audio_duration):.1f} s"),
        ("segments", str(session.segment_count)),
        ("talking points", str(session.detection_count)),
        ("playbooks", ", ".join(session.playbook_ids) or "default"),
    ]
    for name, value in rows:
        out.write(f"{name + ':':<16}{value}\n")


async def export(
    gateway: pb_grpc.GatewayServiceAsyncStub,
    session_id: str,
    file_format: str,
    destination: Path | None,
    out: Output,
) -> str:
    request = pb.ExportTranscriptRequest(session_id=session_id, format=FORMATS[file_format])
    exported = await gateway.ExportTranscript(request)
    if destination is None:
        out.write(exported.content.decode())
        return "-"
    await asyncio.to_thread(destination.write_bytes, exported.content)
    return str(destination)


async def summary(
    gateway: pb_grpc.GatewayServiceAsyncStub, session_id: str, out: Output, *, json_out: bool
) -> None:
    request = pb.GetCallSummaryRequest(session_id=session_id)
    found = (await gateway.GetCallSummary(request)).summary
    if json_out:
        out.write(as_json(found) + "\n")
        return
    out.write(
        f"session {found.session_id}: {_state(found.state)}, {seconds(found.duration):.1f} s\n"
    )
    out.write("talk time:\n")
    for talk in found.talk_times:
        role = call_pb2.SpeakerRole.Name(talk.speaker).removeprefix("SPEAKER_ROLE_").lower()
        out.write(
            f"  channel {talk.channel} ({role}): {seconds(talk.talk_time):.1f} s, "
            f"{talk.word_count} words\n"
        )
    out.write("talking points shown:\n")
    for point in found.talking_points:
        at = seconds(point.start_offset)
        clock = f"{int(at // 60):02d}:{at % 60:04.1f}"
        out.write(f"  {clock}  {point.talking_point.title}  ({point.matched_text!r})\n")
    out.write("keywords:\n")
    for count in found.keyword_counts:
        out.write(f"  {count.count:3d} x {count.phrase} ({count.title})\n")
