"""`callcue upload`: send a recording to the gateway; its processing (progress, transcript,
talking points) is then followed through the notifier like any other session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from callcue.call.v1 import call_pb2
from callcue.cli.text_view import Output
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

CHUNK_BYTES = 256 * 1024
ROLES = {
    "rep": call_pb2.SPEAKER_ROLE_REP,
    "prospect": call_pb2.SPEAKER_ROLE_PROSPECT,
    "mixed": call_pb2.SPEAKER_ROLE_MIXED,
}


def parse_roles(text: str) -> list[call_pb2.SpeakerRole.ValueType]:
    """``rep,prospect`` -> the role of each channel, in order."""
    roles = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        raise ValueError(f"unknown role {unknown[0]!r}; use {', '.join(ROLES)}")
    return [ROLES[role] for role in roles]


async def upload(
    gateway: pb_grpc.GatewayServiceAsyncStub,
    path: Path,
    roles: Sequence[call_pb2.SpeakerRole.ValueType],
    *,
    playbooks: Sequence[str],
    err: Output,
) -> str:
    """Sends the recording with a progress bar; returns the session that processes it,
    whose events (progress, transcript, talking points) then come from the notifier."""
    size = (await asyncio.to_thread(path.stat)).st_size
    config = pb.RecordingConfig(
        filename=path.name, channel_roles=roles, title=path.name, playbook_ids=playbooks
    )

    async def requests() -> AsyncIterator[pb.UploadRecordingRequest]:
        yield pb.UploadRecordingRequest(config=config)
        sent = 0
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                yield pb.UploadRecordingRequest(data=chunk)
                sent += len(chunk)
                _bar(err, "uploading", sent / max(size, 1))
        if err.isatty():
            err.write("\n")

    session = (await gateway.UploadRecording(requests())).session
    err.write(f"callcue: {path.name} ({size / 1e6:.1f} MB) is session {session.session_id}\n")
    return session.session_id


def _bar(err: Output, label: str, fraction: float) -> None:
    filled = int(fraction * 30)
    line = f"{label} [{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:3.0f}%"
    # On a terminal the bar redraws in place; in a log, only the finished bar.
    if err.isatty():
        err.write("\r" + line)
    elif fraction >= 1:
        err.write(line + "\n")
    err.flush()
