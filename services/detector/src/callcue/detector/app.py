"""Builds and runs the detector server."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from pathlib import Path

import structlog

from callcue.core import database
from callcue.core.auth import Authenticator
from callcue.core.server import Assembled, GrpcServer, run_service_until_signalled
from callcue.detector.keywords import KeywordStore
from callcue.detector.live import LiveMatchers
from callcue.detector.playbooks import PlaybookStore
from callcue.detector.sentences import MiniLM, SentenceEncoder
from callcue.detector.service import DetectionService, Keywords, Playbooks, PlaybookService
from callcue.detector.settings import Settings
from callcue.detector.v1 import detector_service_pb2, detector_service_pb2_grpc

SERVICE_NAMES = [
    detector_service_pb2.DESCRIPTOR.services_by_name[name].full_name
    for name in ("DetectionService", "PlaybookService")
]
MIGRATIONS = Path(__file__).parent / "migrations"
log = structlog.get_logger("callcue.detector")


def build_server(
    settings: Settings,
    keywords: Keywords,
    playbooks: Playbooks,
    matchers: LiveMatchers,
    authenticator: Authenticator,
) -> GrpcServer:
    server = GrpcServer(settings.server, SERVICE_NAMES, authenticator)
    detector_service_pb2_grpc.add_DetectionServiceServicer_to_server(
        DetectionService(matchers), server.server
    )
    detector_service_pb2_grpc.add_PlaybookServiceServicer_to_server(
        PlaybookService(keywords, playbooks, matchers), server.server
    )
    return server


def load_sentences(settings: Settings) -> SentenceEncoder | None:
    if not settings.semantic_triggers:
        return None
    encoder = MiniLM.bundled()
    log.info("sentence model loaded", model="all-MiniLM-L6-v2")
    return encoder


async def migrate(settings: Settings) -> None:
    await database.migrate(settings.database_url, "detector", MIGRATIONS)


async def serve(settings: Settings) -> None:
    await migrate(settings)

    async def assemble(authenticator: Authenticator, resources: AsyncExitStack) -> Assembled:
        pool = await database.open_pool(settings.database_url, max_size=settings.database_pool_size)
        resources.push_async_callback(pool.close)
        keywords = KeywordStore(pool)
        matchers = LiveMatchers(keywords, await asyncio.to_thread(load_sentences, settings))
        server = build_server(settings, keywords, PlaybookStore(pool), matchers, authenticator)
        listening = asyncio.Event()
        listener = asyncio.create_task(matchers.listen(settings.database_url, listening))

        async def stop_listening() -> None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

        resources.push_async_callback(stop_listening)

        async def until_listening() -> None:
            # Serving before the listener runs could let a call miss an edit.
            await asyncio.wait_for(listening.wait(), timeout=30)

        return Assembled(server, until_listening)

    await run_service_until_signalled(settings.server, assemble)
