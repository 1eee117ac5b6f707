"""Builds and runs the notifier server."""

from __future__ import annotations

from contextlib import AsyncExitStack

from callcue.core.auth import Authenticator
from callcue.core.server import Assembled, GrpcServer, run_service_until_signalled
from callcue.notifier.event_log import EventLog, MemoryEventLog
from callcue.notifier.orphans import PublisherWatch
from callcue.notifier.redis_log import RedisEventLog
from callcue.notifier.service import PublisherService, SubscriberService
from callcue.notifier.settings import Settings
from callcue.notifier.v1 import notifier_service_pb2, notifier_service_pb2_grpc

SERVICE_NAMES = [
    notifier_service_pb2.DESCRIPTOR.services_by_name[name].full_name
    for name in ("PublisherService", "SubscriberService")
]


def build_server(settings: Settings, events: EventLog, authenticator: Authenticator) -> GrpcServer:
    server = GrpcServer(settings.server, SERVICE_NAMES, authenticator)
    publishers = PublisherWatch(events, patience=settings.orphaned_session_seconds)
    notifier_service_pb2_grpc.add_PublisherServiceServicer_to_server(
        PublisherService(events, publishers), server.server
    )
    notifier_service_pb2_grpc.add_SubscriberServiceServicer_to_server(
        SubscriberService(events), server.server
    )
    return server


def event_log(settings: Settings) -> EventLog:
    if not settings.redis_url:
        return MemoryEventLog(settings.events_per_session, settings.ended_sessions_kept)
    return RedisEventLog(
        settings.redis_url,
        events_per_session=settings.events_per_session,
        session_ttl_seconds=settings.session_ttl_seconds,
    )


async def serve(settings: Settings) -> None:
    async def assemble(authenticator: Authenticator, resources: AsyncExitStack) -> Assembled:
        events = event_log(settings)
        if isinstance(events, RedisEventLog):
            await events.ping()  # fail at start, with the URL's problem, not at the first call
            resources.push_async_callback(events.close)
        return Assembled(build_server(settings, events, authenticator))

    await run_service_until_signalled(settings.server, assemble)
