"""Streams a recording (or the microphone) through the gateway as a live call, at the pace
it was spoken, and hands what comes back to a view."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from callcue.call.v1 import call_pb2
from callcue.cli.recording import Recording
from callcue.cli.text_view import CallReport, CallView
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

CHUNK_SECONDS = 0.1


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
