from __future__ import annotations

import email
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import numpy as np
import openai
import pytest
from faster_whisper.audio import decode_audio

from callcue.core.auth import SingleTenant
from callcue.core.channel import open_channel
from callcue.core.settings import Environment
from callcue.transcriber.app import build_server, load_engine
from callcue.transcriber.engine import WhisperEngine
from callcue.transcriber.fallback_engine import FallbackEngine
from callcue.transcriber.files import decode_file
from callcue.transcriber.openai_engine import OpenAIEngine
from callcue.transcriber.settings import Settings
from callcue.transcriber.testing import comparable
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from callcue.core.testing import ServiceTrust


@pytest.fixture(scope="session")
def settings(service_trust: ServiceTrust) -> Settings:
    """No DATABASE_URL: the transcriber serves only the gateway, whose credentials it checks
    with the gateway's public key."""
    return Settings.from_env(
        Environment(
            {
                "CALLCUE_HOST": "127.0.0.1",
                "CALLCUE_PORT": "0",
                "CALLCUE_MAX_FILE_BYTES": "4000000",
                "CALLCUE_TRUSTED_SERVICES_DIR": str(service_trust.directory),
            }
        )
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> WhisperEngine:
    local = load_engine(settings)
    assert isinstance(local, WhisperEngine)
    return local


@pytest.fixture(scope="session")
async def server_port(
    settings: Settings, engine: WhisperEngine, service_trust: ServiceTrust
) -> AsyncIterator[int]:
    server = build_server(settings, engine, service_trust.doors("transcriber", None))
    yield await server.start()
    await server.stop(0)


@pytest.fixture(scope="session")
async def stub(
    server_port: int, service_trust: ServiceTrust
) -> AsyncIterator[pb_grpc.TranscriberServiceStub]:
    """The transcriber as the gateway calls it for tenant acme."""
    credentials = service_trust.as_gateway("acme", "transcriber")
    async with open_channel(f"127.0.0.1:{server_port}", credentials=credentials) as channel:
        yield pb_grpc.TranscriberServiceStub(channel)


class FakeOpenAI:
    """A real HTTP server on loopback that speaks the OpenAI transcription API
    (POST /v1/audio/transcriptions, multipart), and fails on request."""

    TEXT = "this answer came from the fake openai server"

    def __init__(self) -> None:
        self.mode = "ok"  # ok | quota | error | slow
        self.requests: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                form = email.message_from_bytes(
                    b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
                )
                fields = {
                    part.get_param("name", header="content-disposition"): (
                        part.get_content_type()
                        if part.get_filename()
                        else part.get_payload(decode=True).decode()
                    )
                    for part in form.get_payload()
                }
                fake.requests.append(
                    {"path": self.path, "auth": self.headers["Authorization"], **fields}
                )
                if fake.mode == "quota":
                    self._reply(
                        429,
                        {
                            "error": {
                                "message": "You exceeded your current quota",
                                "type": "insufficient_quota",
                                "code": "insufficient_quota",
                            }
                        },
                    )
                elif fake.mode == "error":
                    self._reply(
                        500,
                        {"error": {"message": "The server had an error", "type": "server_error"}},
                    )
                else:
                    if fake.mode == "slow":
                        time.sleep(3)
                    words = FakeOpenAI.TEXT.split()
                    self._reply(
                        200,
                        {
                            "text": FakeOpenAI.TEXT,
                            "language": "english",
                            "duration": 1.0,
                            "words": [
                                {"word": w, "start": i * 0.2, "end": i * 0.2 + 0.2}
                                for i, w in enumerate(words)
                            ],
                            "segments": [],
                        },
                    )

            def _reply(self, status: int, payload: dict[str, object]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.server.shutdown()


@pytest.fixture
async def openai_stub(
    fake_openai: FakeOpenAI, engine: WhisperEngine
) -> AsyncIterator[pb_grpc.TranscriberServiceStub]:
    """A transcriber whose engine is the fake OpenAI server, falling back to the real
    local model (shared with the other tests) for a short cool-down. New for each test,
    so that one test's cool-down does not carry into the next."""
    settings = Settings.from_env(
        Environment(
            {
                "CALLCUE_HOST": "127.0.0.1",
                "CALLCUE_PORT": "0",
                "CALLCUE_TRANSCRIBER_ENGINE": "openai",
                "OPENAI_API_KEY": "sk-test-not-a-secret",
                "CALLCUE_OPENAI_BASE_URL": fake_openai.url,
                "CALLCUE_OPENAI_TIMEOUT_SECONDS": "1",
                "CALLCUE_AUTH": "none",
            }
        )
    )
    client = openai.AsyncOpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=1.0,
        max_retries=0,
    )
    combined = FallbackEngine(OpenAIEngine(client, "whisper-1"), engine, cooldown_seconds=2.0)
    server = build_server(settings, combined, SingleTenant())
    port = await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield pb_grpc.TranscriberServiceStub(channel)
    await server.stop(0)


SAMPLE = Path(__file__).parents[3] / "samples" / "sales_call.wav"
SAMPLE_RATE = 16000


def band_limited(audio: np.ndarray, low: float, high: float, taps: int = 257) -> np.ndarray:
    """A windowed-sinc band-pass filter: the sample call as heard on a thin line."""
    t = np.arange(taps) - (taps - 1) / 2
    kernel = (2 * high / SAMPLE_RATE) * np.sinc(2 * high / SAMPLE_RATE * t) - (
        2 * low / SAMPLE_RATE
    ) * np.sinc(2 * low / SAMPLE_RATE * t)
    return np.convolve(audio, kernel * np.hamming(taps), "same").astype(np.float32)


@dataclass(frozen=True)
class TurnAudio:
    audio: np.ndarray  # float32, 16 kHz mono
    turns: list[tuple[float, float]]  # each speaker turn's start and end, seconds


@pytest.fixture(scope="session")
def thin_line_call() -> TurnAudio:
    """The sample call band-limited to 1-3 kHz. Silero scores its turns far below its 0.5
    threshold (the last turn's median window 0.02, as low as silence), while Whisper still
    hears every word."""
    turns = [
        (float(start), float(end))
        for start, end in re.findall(
            r"^\[([\d.]+)-([\d.]+)\]", SAMPLE.with_suffix(".turns.txt").read_text(), re.M
        )
    ]
    return TurnAudio(band_limited(decode_audio(str(SAMPLE)), 1000.0, 3000.0), turns)


SHORT_TURNS = Path(__file__).parent / "fixtures" / "short_turns.flac"


@dataclass(frozen=True)
class PartyAudio:
    channels: np.ndarray  # float32, 16 kHz, the rep's channel then the prospect's
    said: dict[int, list[str]]  # each channel's words, as ``comparable`` makes them


@pytest.fixture(scope="session")
def short_turns_call() -> PartyAudio:
    """A dual-channel call of short turns (fixtures/make_short_turns.py)."""
    said: dict[int, list[str]] = {0: [], 1: []}
    for line in SHORT_TURNS.with_suffix(".turns.txt").read_text().splitlines():
        role, text = line.split("] ", 1)[1].split(": ", 1)
        said[0 if role == "REP" else 1] += [comparable(w) for w in text.split()]
    channels = decode_file(SHORT_TURNS.read_bytes(), split_channels=True)
    return PartyAudio(np.stack(channels), said)


@pytest.fixture(scope="session")
def not_speech() -> list[tuple[str, np.ndarray]]:
    """Silence, steady noise, mains hum and a synthetic band (sustained chords, a melody,
    a hi-hat), each after a second of silence: nothing anybody said."""
    rng = np.random.default_rng(7)
    second = SAMPLE_RATE
    t = np.arange(8 * second) / SAMPLE_RATE
    music = np.zeros_like(t)
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6)]
    for bar in range(4):
        span = slice(bar * 2 * second, (bar + 1) * 2 * second)
        for note in chords[bar % 3]:
            for harmonic in (1, 2, 3):
                music[span] += np.sin(2 * np.pi * note * harmonic * t[span]) / harmonic / 3
        melody = (523.3, 587.3, 659.3, 784.0)[bar]
        music[span] += 0.25 * np.sin(2 * np.pi * melody * t[span]) * (1 + np.sin(8 * t[span]))
    for beat in range(0, len(t), second // 4):
        music[beat : beat + 800] += rng.normal(0, 0.5, 800) * np.exp(-np.arange(800) / 150)
    pieces = {
        "silence": np.zeros(4 * second),
        "white noise": rng.normal(0, 0.03, 6 * second),
        "hum": 0.05 * np.sin(2 * np.pi * 60 * t[: 4 * second]),
        "music": music / np.abs(music).max() * 0.3,
    }
    quiet = np.zeros(second)
    return [
        (name, np.concatenate([quiet, piece]).astype(np.float32)) for name, piece in pieces.items()
    ]


@pytest.fixture(scope="session")
def long_turn() -> np.ndarray:
    """The sample call's first four turns as one speaker's 20 s turn: 100 ms between
    sentences, never the pause that ends an utterance, so it is cut where words settle."""
    audio = decode_audio(str(SAMPLE))
    turns = [
        (float(start), float(end))
        for start, end in re.findall(
            r"^\[([\d.]+)-([\d.]+)\]", SAMPLE.with_suffix(".turns.txt").read_text(), re.M
        )
    ][:4]
    gap = np.zeros(SAMPLE_RATE // 10, dtype=np.float32)
    return np.concatenate(
        [
            part
            for start, end in turns
            for part in (audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE) + 800], gap)
        ]
    )
