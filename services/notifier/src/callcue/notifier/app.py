"""Builds and runs the notifier server."""

from __future__ import annotations

from callcue.core.server import GrpcServer, serve_until_signalled
from callcue.notifier.event_log import EventLog, MemoryEventLog
from callcue.notifier.service import NotifierService
from callcue.notifier.settings import Settings
from callcue.notifier.v1 import notifier_service_pb2, notifier_service_pb2_grpc

SERVICE_NAME = notifier_service_pb2.DESCRIPTOR.services_by_name["NotifierService"].full_name


def build_server(settings: Settings, events: EventLog) -> GrpcServer:
    server = GrpcServer(settings.server, [SERVICE_NAME])
    notifier_service_pb2_grpc.add_NotifierServiceServicer_to_server(
        NotifierService(events), server.server
    )
    return server


async def serve(settings: Settings) -> None:
    events = MemoryEventLog(settings.events_per_session, settings.ended_sessions_kept)
    server = build_server(settings, events)
    await server.start()
    await server.set_serving()
    await serve_until_signalled(server)
