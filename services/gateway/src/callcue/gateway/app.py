"""Builds and runs the gateway server."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

from callcue.core import database, doors
from callcue.core.auth import Authenticator
from callcue.core.server import Assembled, GrpcServer, run_service_until_signalled
from callcue.gateway.call_session import Downstream
from callcue.gateway.redaction_policy import PolicyStore
from callcue.gateway.service import GatewayService
from callcue.gateway.session_store import SessionStore
from callcue.gateway.settings import Settings
from callcue.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc

SERVICE_NAME = gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"


def build_server(
    settings: Settings,
    downstream: Downstream,
    store: SessionStore,
    authenticator: Authenticator,
    policies: PolicyStore,
) -> tuple[GrpcServer, GatewayService]:
    server = GrpcServer(settings.server, [SERVICE_NAME], authenticator)
    service = GatewayService(downstream, store, settings, policies)
    gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server(service, server.server)
    return server, service


async def migrate(settings: Settings) -> None:
    await database.migrate(settings.database_url, "gateway", MIGRATIONS)


async def serve(settings: Settings) -> None:
    await migrate(settings)

    async def assemble(authenticator: Authenticator, resources: AsyncExitStack) -> Assembled:
        pool = await database.open_pool(settings.database_url, max_size=settings.database_pool_size)
        resources.push_async_callback(pool.close)
        downstream, channels = Downstream.connect(
            settings.transcriber_address,
            settings.detector_address,
            settings.notifier_address,
            signer=doors.signer(settings.server.auth),
            max_message_bytes=settings.server.max_message_bytes,
        )
        for channel in channels:
            resources.push_async_callback(channel.close)
        server, service = build_server(
            settings,
            downstream,
            SessionStore(pool, lease_seconds=settings.session_lease_seconds),
            authenticator,
            PolicyStore(pool),
        )
        leases = asyncio.create_task(service.sessions.keep_leases())
        resources.callback(leases.cancel)
        resources.push_async_callback(service.sessions.drain)
        return Assembled(server)

    await run_service_until_signalled(settings.server, assemble)
