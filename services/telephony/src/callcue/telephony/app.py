"""Builds and runs the telephony service: one WebSocket path per protocol
(``/twilio/<connector>``, ``/audiohook/<connector>``, ``/freeswitch/<connector>``) and
the health endpoints on one HTTP port, served by uvicorn; and the gRPC ConnectorService
(with health and reflection, as every service) on another.

Uvicorn with the websockets (sans-I/O) protocol: it answers pings, bounds message sizes,
allows a denial response with a status before the upgrade (which AudioHook's 401 needs),
and runs thousands of idle-heavy, hour-long sockets on one event loop; the console
already runs on it, so the operators have one server to know."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from callcue.core import api_keys, database, garbage_collection, http_server, scopes
from callcue.core.auth import Authenticator
from callcue.core.channel import open_channel
from callcue.core.doors import open_authenticator
from callcue.core.http_server import Readiness
from callcue.core.server import GrpcServer, stop_signal
from callcue.core.service_keys import ServiceKeys
from callcue.core.settings import ServerSettings
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.telephony import audiohook, freeswitch, twilio
from callcue.telephony.admission import Telephony
from callcue.telephony.connector_service import ConnectorService
from callcue.telephony.connectors import ConnectorStore
from callcue.telephony.held_calls import HeldCalls
from callcue.telephony.request_signatures import NonceCache
from callcue.telephony.sealing import SecretBox
from callcue.telephony.settings import Settings
from callcue.telephony.v1 import connector_service_pb2, connector_service_pb2_grpc

log = structlog.get_logger("callcue.telephony")

MIGRATIONS = Path(__file__).parent / "migrations"
COMPONENT = "telephony"
SERVICE_NAME = connector_service_pb2.DESCRIPTOR.services_by_name["ConnectorService"].full_name


def build_app(telephony: Telephony, readiness: Readiness) -> Starlette:
    def route(
        handler: Callable[[Telephony, WebSocket], Awaitable[None]],
    ) -> Callable[[WebSocket], Awaitable[None]]:
        async def endpoint(websocket: WebSocket) -> None:
            await handler(telephony, websocket)

        return endpoint

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if readiness.ready and not telephony.draining:
            return JSONResponse({"status": "serving", "streams": telephony.streams})
        return JSONResponse({"status": "not serving"}, status_code=503)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            WebSocketRoute("/twilio/{connector_id}", route(twilio.handle)),
            WebSocketRoute("/audiohook/{connector_id}", route(audiohook.handle)),
            WebSocketRoute("/freeswitch/{connector_id}", route(freeswitch.handle)),
        ]
    )


def build_grpc_server(
    server_settings: ServerSettings,
    connectors: ConnectorStore,
    authenticator: Authenticator,
    public_url: str = "",
) -> GrpcServer:
    server = GrpcServer(server_settings, [SERVICE_NAME], authenticator)
    connector_service_pb2_grpc.add_ConnectorServiceServicer_to_server(
        ConnectorService(connectors, public_url), server.server
    )
    return server


@contextlib.asynccontextmanager
async def open_parts(settings: Settings) -> AsyncIterator[Telephony]:
    pool = await database.open_pool(settings.database_url, max_size=10)
    channel = open_channel(settings.gateway_address)
    keys = ServiceKeys(api_keys.ApiKeyStore(pool), "telephony", [scopes.CALLS_STREAM])
    held = HeldCalls(settings.limits.reconnect_grace_seconds)
    try:
        yield Telephony(
            connectors=ConnectorStore(pool, SecretBox(settings.secrets_key)),
            gateway=gateway_service_pb2_grpc.GatewayServiceStub(channel),
            keys=keys,
            limits=settings.limits,
            public_url=settings.public_url,
            nonces=NonceCache(),
            held=held,
        )
    finally:
        await held.close()
        await keys.close()
        await channel.close()
        await pool.close()


async def migrate(settings: Settings) -> None:
    await database.migrate(settings.database_url, COMPONENT, MIGRATIONS)


def uvicorn_config(app: Starlette, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.server.host.strip("[]"),
        port=settings.server.port,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="websockets-sansio",
        ws_max_size=settings.limits.max_message_bytes,
        # Pings keep load balancers from closing a quiet call, and find dead peers.
        ws_ping_interval=20,
        ws_ping_timeout=20,
    )


async def drain(telephony: Telephony, readiness: Readiness, grace_seconds: float) -> None:
    """Not ready, new streams refused, and running calls given the grace period to end."""
    readiness.ready = False
    telephony.draining = True
    deadline = time.monotonic() + grace_seconds
    log.info("draining", streams=telephony.streams, grace_seconds=grace_seconds)
    while telephony.streams and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    if telephony.streams:
        log.warning("grace period over; closing the streams still open", streams=telephony.streams)


async def serve(settings: Settings) -> None:
    await database.migrate(settings.database_url, api_keys.COMPONENT, api_keys.MIGRATIONS)
    await migrate(settings)
    readiness = Readiness()
    authenticator, close_auth = await open_authenticator(settings.server.auth)
    async with open_parts(settings) as telephony:
        admin = build_grpc_server(
            dataclasses.replace(settings.server, port=settings.grpc_port),
            telephony.connectors,
            authenticator,
            settings.public_url,
        )
        await admin.start()
        server = http_server.UvicornServer(
            uvicorn_config(build_app(telephony, readiness), settings)
        )
        running = await http_server.start(server)
        if running is None:
            return
        readiness.ready = True
        await admin.set_serving()
        log.info("serving", port=settings.server.port, grpc_port=admin.port)
        garbage_collection.freeze_startup_objects()
        signalled = asyncio.ensure_future(stop_signal().wait())
        await asyncio.wait([running, signalled], return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        log.info("shutdown requested")
        await asyncio.gather(
            drain(telephony, readiness, settings.server.shutdown_grace_seconds),
            admin.stop(grace=5),  # unary admin calls; the phone calls get the full grace
        )
        server.should_exit = True
        await running
    await close_auth()
    log.info("stopped")
