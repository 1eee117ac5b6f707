from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from callcue.call.v1 import call_pb2
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb

if TYPE_CHECKING:
    from callcue.core.testing import Stack

SAMPLES = Path(__file__).parents[3] / "samples"
ROLES = [call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT]


def upload_requests(data: bytes, config: pb.RecordingConfig) -> Iterator[pb.UploadRecordingRequest]:
    yield pb.UploadRecordingRequest(config=config)
    for start in range(0, len(data), 32 * 1024):
        yield pb.UploadRecordingRequest(data=data[start : start + 32 * 1024])


async def test_stereo_upload_is_processed_with_speakers_and_progress(
    stack: Stack, playbook: str
) -> None:
    keyword = detector_pb.Keyword(
        playbook_id=playbook,
        phrase="too expensive",
        speaker=call_pb2.SPEAKER_ROLE_PROSPECT,
        talking_point=call_pb2.TalkingPoint(title="Handle the price objection"),
    )
    await stack.detector.CreateKeyword(detector_pb.CreateKeywordRequest(keyword=keyword))
    config = pb.RecordingConfig(
        filename="sales_call_stereo.flac", channel_roles=ROLES, playbook_ids=[playbook]
    )
    data = (SAMPLES / "sales_call_stereo.flac").read_bytes()
    response = await stack.gateway.UploadRecording(upload_requests(data, config))
    session = response.session
    assert session.source == pb.SESSION_SOURCE_UPLOAD
    assert session.state == call_pb2.CALL_STATE_ACTIVE

    request = notifier_pb.SubscribeRequest(session_id=session.session_id)
    events = [r.event async for r in stack.notifier.Subscribe(request, timeout=120)]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[-1].status.state == call_pb2.CALL_STATE_ENDED
    progress = [e.status.progress_percent for e in events if e.HasField("status")]
    assert progress[-1] == 100 and progress == sorted(progress)
    segments = [e.transcript for e in events if e.HasField("transcript")]
    assert {s.speaker for s in segments} == set(ROLES)
    [detection] = [e.detection for e in events if e.HasField("detection")]
    assert detection.speaker == call_pb2.SPEAKER_ROLE_PROSPECT

    stored = (
        await stack.gateway.GetSession(pb.GetSessionRequest(session_id=session.session_id))
    ).session
    assert stored.state == call_pb2.CALL_STATE_ENDED
    assert 38 < stored.audio_duration.ToNanoseconds() / 1e9 < 40
    assert stored.segment_count == len(segments)


async def test_corrupt_upload_fails_the_session_with_the_reason(stack: Stack) -> None:
    config = pb.RecordingConfig(filename="notes.mp3")
    response = await stack.gateway.UploadRecording(upload_requests(b"\x00garbage" * 500, config))
    request = notifier_pb.SubscribeRequest(session_id=response.session.session_id)
    events = [r.event async for r in stack.notifier.Subscribe(request, timeout=60)]
    assert events[-1].status.state == call_pb2.CALL_STATE_FAILED
    assert "INVALID_ARGUMENT" in events[-1].status.message
    stored = (
        await stack.gateway.GetSession(pb.GetSessionRequest(session_id=response.session.session_id))
    ).session
    assert stored.state == call_pb2.CALL_STATE_FAILED
    assert "decode" in stored.error_message


async def test_upload_without_config_or_data_is_invalid(stack: Stack) -> None:
    for requests in (
        [pb.UploadRecordingRequest(data=b"abc")],
        [pb.UploadRecordingRequest(config=pb.RecordingConfig(filename="a.wav"))],
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stack.gateway.UploadRecording(iter(requests))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_sessions_are_listed_newest_first_in_pages(stack: Stack) -> None:
    seen: list[pb.Session] = []
    token = ""
    while True:
        page = await stack.gateway.ListSessions(
            pb.ListSessionsRequest(page_size=2, page_token=token)
        )
        seen += page.sessions
        token = page.next_page_token
        if not token:
            break
    assert len(seen) >= 2
    times = [s.create_time.ToNanoseconds() for s in seen]
    assert times == sorted(times, reverse=True)
    assert len({s.session_id for s in seen}) == len(seen)
    ended = await stack.gateway.ListSessions(
        pb.ListSessionsRequest(state=call_pb2.CALL_STATE_ENDED, page_size=1000)
    )
    assert all(s.state == call_pb2.CALL_STATE_ENDED for s in ended.sessions)
