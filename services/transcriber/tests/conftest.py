from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from callcue.core.settings import Environment
from callcue.transcriber.app import build_server, load_engine
from callcue.transcriber.engine import WhisperEngine
from callcue.transcriber.settings import Settings
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env(
        Environment(
            {"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_MAX_FILE_BYTES": "4000000"}
        )
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> WhisperEngine:
    return load_engine(settings)


@pytest.fixture(scope="session")
async def server_port(settings: Settings, engine: WhisperEngine) -> AsyncIterator[int]:
    server = build_server(settings, engine)
    yield await server.start()
    await server.stop(0)


@pytest.fixture(scope="session")
async def stub(server_port: int) -> AsyncIterator[pb_grpc.TranscriberServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server_port}") as channel:
        yield pb_grpc.TranscriberServiceStub(channel)
