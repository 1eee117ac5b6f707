from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import numpy as np
import pytest

from callcue.call.v1 import call_pb2
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb
from callcue.transcriber.files import decode_file

if TYPE_CHECKING:
    from callcue.core.testing import Stack

SAMPLES = Path(__file__).parents[3] / "samples"

LINEAR16_16K = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)


async def add_playbook(stack: Stack, playbook: str) -> None:
    for phrase, title, category in [
        ("Salesforce", "Winning against Salesforce", call_pb2.TALKING_POINT_CATEGORY_COMPETITOR),
        ("too expensive", "Handle the price objection", call_pb2.TALKING_POINT_CATEGORY_PRICING),
        (
            "security questionnaire",
            "Send the trust pack",
            call_pb2.TALKING_POINT_CATEGORY_COMPLIANCE,
        ),
        ("HubSpot", "Never said in this call", call_pb2.TALKING_POINT_CATEGORY_COMPETITOR),
    ]:
        keyword = detector_pb.Keyword(
            playbook_id=playbook,
            phrase=phrase,
            talking_point=call_pb2.TalkingPoint(title=title, category=category),
        )
        await stack.detector.CreateKeyword(detector_pb.CreateKeywordRequest(keyword=keyword))


def sample_pcm() -> bytes:
    with wave.open(str(SAMPLES / "sales_call.wav")) as wav:
        return wav.readframes(wav.getnframes())


async def call_requests(config: pb.CallConfig, audio: bytes) -> AsyncIterator[pb.StreamCallRequest]:
    yield pb.StreamCallRequest(config=config)
    for start in range(0, len(audio), 3200):  # 100 ms chunks, as fast as the server takes them
        yield pb.StreamCallRequest(audio=audio[start : start + 3200])


async def subscribe(stack: Stack, session_id: str) -> list[call_pb2.CallEvent]:
    request = notifier_pb.SubscribeRequest(session_id=session_id)
    return [response.event async for response in stack.notifier.Subscribe(request)]


def words(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c == " " else " " for c in text.lower()).split()


async def test_a_call_is_transcribed_and_talking_points_reach_caller_and_subscriber(
    stack: Stack, playbook: str
) -> None:
    await add_playbook(stack, playbook)
    config = pb.CallConfig(
        audio_format=LINEAR16_16K, interim_results=True, playbook_ids=[playbook], title="e2e"
    )
    caller_events: list[call_pb2.CallEvent] = []
    subscriber: asyncio.Task[list[call_pb2.CallEvent]] | None = None
    async for response in stack.gateway.StreamCall(call_requests(config, sample_pcm())):
        caller_events.append(response.event)
        if subscriber is None:
            subscriber = asyncio.create_task(subscribe(stack, response.event.session_id))
    assert subscriber is not None
    subscriber_events = await asyncio.wait_for(subscriber, 30)

    session_id = caller_events[0].session_id
    assert [e.sequence for e in caller_events] == list(range(1, len(caller_events) + 1))
    assert subscriber_events == caller_events
    assert caller_events[0].status.state == call_pb2.CALL_STATE_ACTIVE
    assert caller_events[-1].status.state == call_pb2.CALL_STATE_ENDED
    assert caller_events[-1].status.audio_received.seconds == 39

    finals = [
        e.transcript for e in caller_events if e.HasField("transcript") and e.transcript.is_final
    ]
    assert len(finals) == 7
    spoken = words(" ".join(s.text for s in finals))
    for expected in ("jordan", "dana", "acme", "expensive", "contract", "questionnaire", "week"):
        assert expected in spoken
    assert any(e.HasField("transcript") and not e.transcript.is_final for e in caller_events)

    detections = [e.detection for e in caller_events if e.HasField("detection")]
    titles = [d.talking_point.title for d in detections]
    assert "Handle the price objection" in titles
    assert "Send the trust pack" in titles
    assert "Never said in this call" not in titles
    price = next(d for d in detections if d.phrase == "too expensive")
    assert 18.5 < price.start_offset.ToNanoseconds() / 1e9 < 21.5

    session = (await stack.gateway.GetSession(pb.GetSessionRequest(session_id=session_id))).session
    assert session.state == call_pb2.CALL_STATE_ENDED
    assert session.source == pb.SESSION_SOURCE_LIVE
    assert (session.segment_count, session.detection_count) == (7, len(detections))
    transcript = await stack.gateway.GetTranscript(pb.GetTranscriptRequest(session_id=session_id))
    assert list(transcript.segments) == finals
    assert {d.detection_id for d in transcript.detections} == {d.detection_id for d in detections}

    # The same session as files and as a summary.
    vtt = await stack.gateway.ExportTranscript(pb.ExportTranscriptRequest(session_id=session_id))
    assert (vtt.content_type, vtt.filename) == ("text/vtt", f"{session_id}.vtt")
    assert vtt.content.startswith(b"WEBVTT\n") and b"too expensive" in vtt.content.lower()
    srt = await stack.gateway.ExportTranscript(
        pb.ExportTranscriptRequest(session_id=session_id, format=pb.TRANSCRIPT_FORMAT_SRT)
    )
    assert srt.content.startswith(b"1\n00:00:0") and b" --> " in srt.content
    exported = await stack.gateway.ExportTranscript(
        pb.ExportTranscriptRequest(session_id=session_id, format=pb.TRANSCRIPT_FORMAT_JSON)
    )
    document = json.loads(exported.content)
    assert document["session"]["sessionId"] == session_id
    assert len(document["segments"]) == 7 and len(document["detections"]) == len(detections)
    summary = (
        await stack.gateway.GetCallSummary(pb.GetCallSummaryRequest(session_id=session_id))
    ).summary
    assert summary.duration.seconds == 39
    [talk] = summary.talk_times
    assert 20 < talk.talk_time.ToNanoseconds() / 1e9 < 39 and talk.word_count > 60
    assert list(summary.talking_points) == list(transcript.detections)
    assert sum(k.count for k in summary.keyword_counts) == len(detections)
    assert {k.title for k in summary.keyword_counts} == set(titles)


async def test_exports_of_unknown_sessions_and_formats(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stack.gateway.ExportTranscript(
            pb.ExportTranscriptRequest(session_id="00000000-0000-0000-0000-000000000000")
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stack.gateway.ExportTranscript(
            pb.ExportTranscriptRequest(session_id="x", format=9)  # type: ignore[arg-type]
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_audio_before_config_is_invalid(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in stack.gateway.StreamCall(iter([pb.StreamCallRequest(audio=b"\0" * 320)])):
            pass
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config" in (error.value.details() or "")


async def test_unknown_encoding_is_invalid(stack: Stack) -> None:
    config = pb.CallConfig(audio_format=call_pb2.AudioFormat(encoding=7, sample_rate_hertz=8000))  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in stack.gateway.StreamCall(iter([pb.StreamCallRequest(config=config)])):
            pass
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("config.audio_format.encoding")


async def test_oversized_chunk_ends_the_call_with_resource_exhausted(stack: Stack) -> None:
    config = pb.CallConfig(audio_format=LINEAR16_16K)
    requests = [pb.StreamCallRequest(config=config), pb.StreamCallRequest(audio=bytes(100_000))]
    events = []
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for response in stack.gateway.StreamCall(iter(requests)):
            events.append(response.event)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "exceeds the limit" in (error.value.details() or "")
    # The session is closed properly: subscribers see it fail, the record says why.
    assert events[-1].status.state == call_pb2.CALL_STATE_FAILED
    session = (
        await stack.gateway.GetSession(pb.GetSessionRequest(session_id=events[0].session_id))
    ).session
    assert session.state == call_pb2.CALL_STATE_FAILED
    assert "exceeds the limit" in session.error_message


@pytest.mark.parametrize("session_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
async def test_unknown_session_is_not_found(stack: Stack, session_id: str) -> None:
    for call in (
        stack.gateway.GetSession(pb.GetSessionRequest(session_id=session_id)),
        stack.gateway.GetTranscript(pb.GetTranscriptRequest(session_id=session_id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert session_id in (error.value.details() or "")


async def test_a_dual_channel_call_knows_who_said_what(stack: Stack, playbook: str) -> None:
    """Rep on the left channel, prospect on the right: segments and detections carry the
    speaker, and a keyword limited to the prospect ignores the rep saying it."""
    for phrase, speaker in [
        ("Salesforce", call_pb2.SPEAKER_ROLE_PROSPECT),  # both say it; only the prospect counts
        ("starter plan", call_pb2.SPEAKER_ROLE_PROSPECT),  # only the rep says it
        ("follow up call", call_pb2.SPEAKER_ROLE_REP),
    ]:
        keyword = detector_pb.Keyword(
            playbook_id=playbook,
            phrase=phrase,
            speaker=speaker,
            talking_point=call_pb2.TalkingPoint(title=phrase),
        )
        await stack.detector.CreateKeyword(detector_pb.CreateKeywordRequest(keyword=keyword))
    [left, right] = await asyncio.to_thread(
        decode_file, (SAMPLES / "sales_call_stereo.flac").read_bytes(), split_channels=True
    )
    stereo = np.stack([left, right], axis=1)
    pcm = (np.clip(stereo, -1, 1) * 32767).astype("<i2").tobytes()
    config = pb.CallConfig(
        audio_format=call_pb2.AudioFormat(
            encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=2
        ),
        channel_roles=[call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT],
        playbook_ids=[playbook],
    )

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(config=config)
        for start in range(0, len(pcm), 6400):
            yield pb.StreamCallRequest(audio=pcm[start : start + 6400])

    events = [response.event async for response in stack.gateway.StreamCall(requests())]
    finals = [e.transcript for e in events if e.HasField("transcript") and e.transcript.is_final]
    said = {
        role: " ".join(s.text for s in finals if s.speaker == role).lower()
        for role in (call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT)
    }
    assert "jordan" in said[call_pb2.SPEAKER_ROLE_REP]
    assert "starter plan" in said[call_pb2.SPEAKER_ROLE_REP]  # heard, but not the prospect's
    assert "expensive" in said[call_pb2.SPEAKER_ROLE_PROSPECT]
    assert {s.channel for s in finals if s.speaker == call_pb2.SPEAKER_ROLE_REP} == {0}
    detections = [e.detection for e in events if e.HasField("detection")]
    fired = sorted((d.phrase, d.speaker) for d in detections)
    assert ("starter plan", call_pb2.SPEAKER_ROLE_REP) not in fired
    assert [d for d in detections if d.phrase == "starter plan"] == []
    assert all(
        d.speaker == call_pb2.SPEAKER_ROLE_PROSPECT for d in detections if d.phrase == "Salesforce"
    )
    assert ("Salesforce", call_pb2.SPEAKER_ROLE_PROSPECT) in fired
    assert ("follow up call", call_pb2.SPEAKER_ROLE_REP) in fired
