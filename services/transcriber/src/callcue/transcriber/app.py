"""Builds and runs the transcriber server."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import openai
import structlog

from callcue.core.auth import Authenticator
from callcue.core.server import Assembled, GrpcServer, run_service_until_signalled
from callcue.transcriber.engine import SpeechEngine, WhisperEngine
from callcue.transcriber.fallback_engine import FallbackEngine
from callcue.transcriber.openai_engine import OpenAIEngine
from callcue.transcriber.service import TranscriberService
from callcue.transcriber.settings import Settings
from callcue.transcriber.v1 import transcriber_service_pb2, transcriber_service_pb2_grpc

SERVICE_NAME = transcriber_service_pb2.DESCRIPTOR.services_by_name["TranscriberService"].full_name

log = structlog.get_logger("callcue.transcriber")


def load_engine(settings: Settings) -> SpeechEngine:
    """The local model, behind the OpenAI API when that is the configured engine."""
    local = WhisperEngine.load(
        settings.model,
        device=settings.device,
        compute_type=settings.compute_type,
        cpu_threads=settings.cpu_threads,
        workers=settings.workers,
        beam_size=settings.beam_size,
        short_windows=settings.short_windows,
    )
    if settings.engine == "local":
        return local
    client = openai.AsyncOpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_seconds,
        # Falling back to the local model beats retrying a failing API mid-call.
        max_retries=0,
    )
    remote = OpenAIEngine(client, settings.openai_model)
    return FallbackEngine(remote, local, settings.openai_cooldown_seconds)


def build_server(
    settings: Settings, engine: SpeechEngine, authenticator: Authenticator
) -> GrpcServer:
    server = GrpcServer(settings.server, [SERVICE_NAME], authenticator)
    transcriber_service_pb2_grpc.add_TranscriberServiceServicer_to_server(
        TranscriberService(engine, settings), server.server
    )
    return server


async def serve(settings: Settings) -> None:
    # The model loads before the port opens: until then probes see "not ready".
    engine = await asyncio.to_thread(load_engine, settings)
    log.info(
        "engine ready",
        engine=settings.engine,
        model=settings.model,
        compute_type=settings.compute_type,
        openai_model=settings.openai_model if settings.engine == "openai" else None,
    )

    async def assemble(authenticator: Authenticator, resources: AsyncExitStack) -> Assembled:
        resources.callback(engine.close)
        return Assembled(build_server(settings, engine, authenticator))

    await run_service_until_signalled(settings.server, assemble)
