from __future__ import annotations

import email
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import grpc
import openai
import pytest

from callcue.core.auth import ApiKeyAuthenticator, SingleTenant
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.settings import Environment
from callcue.transcriber.app import build_server, load_engine
from callcue.transcriber.engine import WhisperEngine
from callcue.transcriber.fallback_engine import FallbackEngine
from callcue.transcriber.openai_engine import OpenAIEngine
from callcue.transcriber.settings import Settings
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from conftest import TenantKeys


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings.from_env(
        Environment(
            {
                "CALLCUE_HOST": "127.0.0.1",
                "CALLCUE_PORT": "0",
                "CALLCUE_MAX_FILE_BYTES": "4000000",
                "DATABASE_URL": database_url,
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
    settings: Settings, engine: WhisperEngine, authenticator: ApiKeyAuthenticator
) -> AsyncIterator[int]:
    server = build_server(settings, engine, authenticator)
    yield await server.start()
    await server.stop(0)


@pytest.fixture(scope="session")
async def stub(
    server_port: int, tenant_keys: TenantKeys
) -> AsyncIterator[pb_grpc.TranscriberServiceStub]:
    credentials = api_key(tenant_keys.acme)
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
