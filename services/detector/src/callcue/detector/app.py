"""Builds and runs the detector server."""

from __future__ import annotations

from pathlib import Path

from callcue.core import database
from callcue.core.server import GrpcServer, serve_until_signalled
from callcue.detector.keywords import KeywordStore
from callcue.detector.service import DetectorService, Keywords
from callcue.detector.settings import Settings
from callcue.detector.v1 import detector_service_pb2, detector_service_pb2_grpc

SERVICE_NAME = detector_service_pb2.DESCRIPTOR.services_by_name["DetectorService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"


def build_server(settings: Settings, keywords: Keywords) -> GrpcServer:
    server = GrpcServer(settings.server, [SERVICE_NAME])
    detector_service_pb2_grpc.add_DetectorServiceServicer_to_server(
        DetectorService(keywords), server.server
    )
    return server


async def serve(settings: Settings) -> None:
    await database.migrate(settings.database_url, "detector", MIGRATIONS)
    pool = await database.open_pool(settings.database_url, max_size=settings.database_pool_size)
    server = build_server(settings, KeywordStore(pool))
    await server.start()
    await server.set_serving()
    await serve_until_signalled(server, [pool.close])
