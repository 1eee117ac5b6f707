"""The OpenAI engine against a real HTTP server on loopback, and the fallback to the
local model when the API fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from callcue.call.v1 import call_pb2
from callcue.core.settings import Environment, SettingsError
from callcue.transcriber.settings import Settings
from callcue.transcriber.v1 import transcriber_service_pb2 as pb
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from conftest import FakeOpenAI

SAMPLE = Path(__file__).parents[3] / "samples" / "sales_call.wav"
LINEAR16 = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)


def requests(seconds: float) -> Iterator[pb.StreamingTranscribeRequest]:
    import wave

    with wave.open(str(SAMPLE)) as wav:
        audio = wav.readframes(int(16000 * seconds))
    yield pb.StreamingTranscribeRequest(
        config=pb.StreamingConfig(audio_format=LINEAR16, interim_results=True, hotwords=["Acme"])
    )
    for offset in range(0, len(audio), 3200):
        yield pb.StreamingTranscribeRequest(audio=audio[offset : offset + 3200])


async def test_streams_are_transcribed_by_the_api_once_per_utterance(
    openai_stub: pb_grpc.TranscriberServiceStub, fake_openai: FakeOpenAI
) -> None:
    fake_openai.mode, fake_openai.requests = "ok", []
    responses = [r async for r in openai_stub.StreamingTranscribe(requests(11.5))]
    assert responses[0].engine_status.engine == "openai"
    finals = [r.segment for r in responses if r.HasField("segment") and r.segment.is_final]
    assert finals and all(s.text == fake_openai.TEXT for s in finals)
    assert finals[0].words[1].text == "answer"
    # Two utterances in 11.5 s: one request each, none for partials.
    assert len(fake_openai.requests) == 2
    request = fake_openai.requests[0]
    assert request["path"] == "/v1/audio/transcriptions"
    assert request["auth"] == "Bearer sk-test-not-a-secret"
    assert (request["model"], request["file"], request["response_format"]) == (
        "whisper-1",
        "audio/wav",
        "verbose_json",
    )
    assert "Acme" in request["prompt"]


@pytest.mark.parametrize("mode", ["quota", "error", "slow"])
async def test_when_the_api_fails_the_call_goes_on_with_the_local_model(
    openai_stub: pb_grpc.TranscriberServiceStub, fake_openai: FakeOpenAI, mode: str
) -> None:
    fake_openai.mode, fake_openai.requests = mode, []
    responses = [r async for r in openai_stub.StreamingTranscribe(requests(11.5))]
    statuses = [r.engine_status for r in responses if r.HasField("engine_status")]
    # The test's cool-down is 2 s (longer than a local decode, so the switch is seen
    # before the cool-down ends), so the engine tries the API again during the call.
    assert [s.engine for s in statuses[:2]] == ["openai", "faster-whisper"]
    assert "openai failed" in statuses[1].message
    if len(statuses) > 2:
        assert statuses[2].engine == "openai" and "trying openai again" in statuses[2].message
    expected = {
        "quota": "RateLimitError",
        "error": "InternalServerError",
        "slow": "APITimeoutError",
    }
    assert expected[mode] in statuses[1].message
    text = " ".join(
        r.segment.text for r in responses if r.HasField("segment") and r.segment.is_final
    )
    assert "Jordan" in text and fake_openai.TEXT not in text
    fake_openai.mode = "ok"


def test_the_openai_engine_needs_a_key_and_never_shows_it() -> None:
    with pytest.raises(SettingsError, match="OPENAI_API_KEY is required"):
        Settings.from_env(
            Environment({"CALLCUE_TRANSCRIBER_ENGINE": "openai", "CALLCUE_AUTH": "none"})
        )
    settings = Settings.from_env(
        Environment(
            {
                "CALLCUE_TRANSCRIBER_ENGINE": "openai",
                "OPENAI_API_KEY": "sk-live-123",
                "CALLCUE_AUTH": "none",
            }
        )
    )
    assert "sk-live-123" not in repr(settings) and "sk-live-123" not in str(settings)
