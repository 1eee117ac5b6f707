from __future__ import annotations

import asyncio
import dataclasses
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from callcue.call.v1 import call_pb2
from callcue.core.auth import SingleTenant
from callcue.transcriber.app import build_server
from callcue.transcriber.engine import WhisperEngine
from callcue.transcriber.settings import Settings
from callcue.transcriber.v1 import transcriber_service_pb2 as pb
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from callcue.core.testing import ServiceTrust, TenantKeys

SAMPLES = Path(__file__).parents[3] / "samples"
LINEAR16 = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)


def pcm(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        return wav.readframes(wav.getnframes())


def streaming(config: pb.StreamingConfig, audio: bytes) -> Iterator[pb.StreamingTranscribeRequest]:
    yield pb.StreamingTranscribeRequest(config=config)
    for start in range(0, len(audio), 3200):
        yield pb.StreamingTranscribeRequest(audio=audio[start : start + 3200])


def words(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c == " " else " " for c in text.lower()).split()


async def test_streams_the_sample_call_with_finals_and_partials(
    stub: pb_grpc.TranscriberServiceStub,
) -> None:
    config = pb.StreamingConfig(audio_format=LINEAR16, interim_results=True, session_id="t1")
    responses = [
        r
        async for r in stub.StreamingTranscribe(streaming(config, pcm(SAMPLES / "sales_call.wav")))
    ]
    assert responses[0].engine_status.engine == "faster-whisper"
    segments = [r.segment for r in responses if r.HasField("segment")]
    finals = [s for s in segments if s.is_final]
    assert len(finals) == 7
    assert any(not s.is_final for s in segments)
    text = words(" ".join(s.text for s in finals))
    for expected in ("jordan", "acme", "expensive", "contract", "security", "questionnaire"):
        assert expected in text
    starts = [s.start_offset.ToTimedelta().total_seconds() for s in finals]
    assert starts == sorted(starts)
    assert 18.0 < starts[3] < 19.0  # "Your plan looks too expensive" begins at 18.4 s
    last_word = finals[-1].words[-1]
    assert 37.0 < last_word.end_offset.ToTimedelta().total_seconds() < 39.0
    assert all(0 <= w.confidence <= 1 for s in finals for w in s.words)


async def test_audio_before_config_is_invalid(stub: pb_grpc.TranscriberServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        [
            r
            async for r in stub.StreamingTranscribe(
                iter([pb.StreamingTranscribeRequest(audio=b"\0\0")])
            )
        ]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config" in (error.value.details() or "")


async def test_a_stream_taking_a_call_over_stamps_call_time_and_its_own_ids(
    stub: pb_grpc.TranscriberServiceStub,
) -> None:
    """The gateway resumes a call on another replica from a point in it: that stream's
    segments are in call time and never reuse the ids of the stream before."""
    config = pb.StreamingConfig(audio_format=LINEAR16, session_id="t-takeover")
    config.call_offset.FromSeconds(100)
    config.segment_id_prefix = "r1."
    audio = pcm(SAMPLES / "sales_call.wav")[: 16000 * 2 * 12]  # the first two turns
    finals = [
        r.segment
        async for r in stub.StreamingTranscribe(streaming(config, audio))
        if r.HasField("segment") and r.segment.is_final
    ]
    assert finals and all(s.segment_id.startswith("r1.") for s in finals)
    first = finals[0].words[0]
    assert 100.3 < first.start_offset.ToTimedelta().total_seconds() < 101.0  # "Hi" at 0.5 s
    assert all(100 < s.start_offset.ToTimedelta().total_seconds() < 112.5 for s in finals)


@pytest.mark.parametrize(
    ("field", "value"), [("segment_id_prefix", "x" * 33), ("segment_id_prefix", "a\x00b")]
)
async def test_a_bad_takeover_is_invalid(
    stub: pb_grpc.TranscriberServiceStub, field: str, value: str
) -> None:
    config = pb.StreamingConfig(audio_format=LINEAR16, **{field: value})  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        [r async for r in stub.StreamingTranscribe(streaming(config, b""))]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(f"config.{field}")


async def test_unknown_encoding_is_invalid(stub: pb_grpc.TranscriberServiceStub) -> None:
    config = pb.StreamingConfig(audio_format=call_pb2.AudioFormat(sample_rate_hertz=16000))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        [
            r
            async for r in stub.StreamingTranscribe(
                iter([pb.StreamingTranscribeRequest(config=config)])
            )
        ]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("config.audio_format.encoding")


def file_requests(data: bytes, **config: object) -> Iterator[pb.TranscribeFileRequest]:
    yield pb.TranscribeFileRequest(config=pb.FileConfig(**config))  # type: ignore[arg-type]
    for start in range(0, len(data), 64 * 1024):
        yield pb.TranscribeFileRequest(data=data[start : start + 64 * 1024])


async def test_stereo_file_is_transcribed_per_speaker_with_progress(
    stub: pb_grpc.TranscriberServiceStub,
) -> None:
    data = (SAMPLES / "sales_call_stereo.flac").read_bytes()
    roles = [call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT]
    responses = [
        r
        async for r in stub.TranscribeFile(
            file_requests(data, filename="call.flac", channel_roles=roles)
        )
    ]
    segments = [r.segment for r in responses if r.HasField("segment")]
    progress = [r.progress.percent for r in responses if r.HasField("progress")]
    assert progress == sorted(progress) and progress[-1] == 100.0
    by_role = {
        role: words(" ".join(s.text for s in segments if s.speaker == role)) for role in roles
    }
    assert "jordan" in by_role[call_pb2.SPEAKER_ROLE_REP]
    assert "expensive" in by_role[call_pb2.SPEAKER_ROLE_PROSPECT]
    assert "expensive" not in by_role[call_pb2.SPEAKER_ROLE_REP]


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty"), (b"this is not audio at all" * 100, "cannot decode")],
)
async def test_unreadable_files_are_invalid(
    stub: pb_grpc.TranscriberServiceStub, data: bytes, reason: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        [r async for r in stub.TranscribeFile(file_requests(data, filename="x.wav"))]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in (error.value.details() or "")


async def test_truncated_file_is_invalid_or_transcribed_in_part(
    stub: pb_grpc.TranscriberServiceStub,
) -> None:
    data = (SAMPLES / "sales_call_stereo.flac").read_bytes()[:200]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        [r async for r in stub.TranscribeFile(file_requests(data, filename="x.flac"))]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_file_over_the_limit_is_resource_exhausted(
    stub: pb_grpc.TranscriberServiceStub, server_port: int, service_trust: ServiceTrust
) -> None:
    # A sync client: grpc.aio clients misreport a status that arrives while they are
    # still writing as INTERNAL (grpc/grpc#36066); the server's answer is what counts.
    def upload() -> grpc.RpcError:
        with grpc.insecure_channel(f"127.0.0.1:{server_port}") as channel:
            sync_stub = pb_grpc.TranscriberServiceStub(channel)
            try:
                requests = file_requests(bytes(5_000_000), filename="x.wav")
                metadata = service_trust.as_gateway("acme", "transcriber")()
                list(sync_stub.TranscribeFile(requests, metadata=metadata))
            except grpc.RpcError as error:
                return error
        raise AssertionError("the upload was accepted")

    error = await asyncio.to_thread(upload)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert "byte limit" in error.details()  # type: ignore[attr-defined]


async def test_at_real_time_pace_words_become_final_while_the_call_goes_on(
    stub: pb_grpc.TranscriberServiceStub,
) -> None:
    """The first two turns (11.5 s) paced like a live call: settled words are final
    before their utterance ends, and everything said is final soon after the audio."""
    audio = pcm(SAMPLES / "sales_call.wav")[: 16000 * 2 * 23 // 2]
    config = pb.StreamingConfig(audio_format=LINEAR16, interim_results=True)
    started = asyncio.get_running_loop().time()

    async def paced() -> AsyncIterator[pb.StreamingTranscribeRequest]:
        yield pb.StreamingTranscribeRequest(config=config)
        for index, offset in enumerate(range(0, len(audio), 3200)):
            await asyncio.sleep(max(0.0, started + index * 0.1 - asyncio.get_running_loop().time()))
            yield pb.StreamingTranscribeRequest(audio=audio[offset : offset + 3200])

    finals: list[tuple[float, pb.StreamingTranscribeResponse]] = []
    async for response in stub.StreamingTranscribe(paced()):
        if response.HasField("segment") and response.segment.is_final:
            finals.append((asyncio.get_running_loop().time() - started, response))
    first_turn = [f for f in finals if f[1].segment.end_offset.ToNanoseconds() < 6.2e9]
    # The first turn (0.5 to 6.1 s) arrives in several final pieces, all before the audio ends.
    assert len(first_turn) >= 2
    assert all(arrived < 11.5 for arrived, _ in first_turn)
    text = words(" ".join(r.segment.text for _, r in finals))
    for expected in ("jordan", "dana", "acme", "honest", "reporting"):
        assert expected in text
    ids = [r.segment.segment_id for _, r in finals]
    assert len(ids) == len(set(ids))


async def test_only_the_gateway_may_call_it(server_port: int, tenant_keys: TenantKeys) -> None:
    """A tenant's key, even a valid one, is refused: audio reaches the transcriber only
    through the gateway, which does the accounting and the storing."""

    # A sync client, as above: grpc.aio may report a refusal that arrives while it is still
    # writing as INTERNAL (grpc/grpc#36066).
    def transcribe() -> grpc.RpcError:
        with grpc.insecure_channel(f"127.0.0.1:{server_port}") as channel:
            stub = pb_grpc.TranscriberServiceStub(channel)
            metadata = [("authorization", f"Bearer {tenant_keys.acme}")]
            try:
                list(
                    stub.TranscribeFile(file_requests(b"RIFF", filename="x.wav"), metadata=metadata)
                )
            except grpc.RpcError as error:
                return error
        raise AssertionError("a tenant key was let in")

    refused = await asyncio.to_thread(transcribe)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]


async def test_streams_beyond_the_replicas_channels_are_refused_with_a_retry_hint(
    settings: Settings, engine: WhisperEngine
) -> None:
    """A replica sized for two live channels: a two-channel call fills it, a third
    channel is refused with RESOURCE_EXHAUSTED and a RetryInfo, unless it takes over a
    running call (up to twice the channels), and once the call ends the next stream is
    taken."""
    sized = dataclasses.replace(settings, max_live_channels=2)
    server = build_server(sized, engine, SingleTenant())
    port = await server.start()
    stereo = call_pb2.AudioFormat(
        encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=2
    )
    hang_up = asyncio.Event()

    async def held_call(
        config: pb.StreamingConfig,
    ) -> AsyncIterator[pb.StreamingTranscribeRequest]:
        yield pb.StreamingTranscribeRequest(config=config)
        yield pb.StreamingTranscribeRequest(audio=bytes(6400))
        await hang_up.wait()

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.TranscriberServiceStub(channel)
            first = stub.StreamingTranscribe(held_call(pb.StreamingConfig(audio_format=stereo)))
            assert (await first.read()).HasField("engine_status")
            one = pb.StreamingConfig(audio_format=LINEAR16)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                [r async for r in stub.StreamingTranscribe(streaming(one, bytes(3200)))]
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "2 of its 2 live channels" in (refused.value.details() or "")
            status = rpc_status.from_call(refused.value)  # type: ignore[arg-type]
            hints = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
            hint = error_details_pb2.RetryInfo()
            hints[0].Unpack(hint)
            assert hint.retry_delay.seconds == 5
            # A call taken over from a lost replica is not refused: up to twice the channels.
            moved = pb.StreamingConfig(audio_format=LINEAR16, takes_over=True)
            second = stub.StreamingTranscribe(held_call(moved))
            assert (await second.read()).HasField("engine_status")
            both = pb.StreamingConfig(audio_format=stereo, takes_over=True)
            with pytest.raises(grpc.aio.AioRpcError) as beyond:
                [r async for r in stub.StreamingTranscribe(streaming(both, bytes(6400)))]
            assert beyond.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            said = beyond.value.details() or ""
            assert "3 of its 2 live channels (calls taken over: 4)" in said
            hang_up.set()
            while await second.read() != grpc.aio.EOF:
                pass
            while await first.read() != grpc.aio.EOF:
                pass
            taken = [r async for r in stub.StreamingTranscribe(streaming(one, bytes(3200)))]
            assert taken[0].HasField("engine_status")
    finally:
        await server.stop(0)
