"""gRPC server bootstrap: health, reflection, interceptors, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from callcue.core import access, garbage_collection
from callcue.core.auth import Authenticator
from callcue.core.doors import open_authenticator
from callcue.core.interceptor import RpcInterceptor
from callcue.core.settings import ServerSettings

log = structlog.get_logger("callcue.server")

# What every handler receives; requests and responses are typed on the handler itself.
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class GrpcServer:
    """A grpc.aio server with the standard health and reflection services, and every
    other RPC authenticated.

    Health starts NOT_SERVING; the service marks itself serving once its dependencies
    (model, database) are ready, and back to NOT_SERVING first thing on shutdown so
    load balancers stop sending new calls while in-flight ones drain.
    """

    def __init__(
        self,
        settings: ServerSettings,
        service_names: Sequence[str],
        authenticator: Authenticator,
        rules: access.Rules = access.RULES,
    ) -> None:
        self.settings = settings
        self.service_names = tuple(service_names)
        options: list[tuple[str, int]] = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # Clients keep long call streams alive with pings; allow them.
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
        if settings.max_connection_age_seconds > 0:
            options += [
                ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
                (
                    "grpc.max_connection_age_grace_ms",
                    int(settings.max_connection_age_grace_seconds * 1000),
                ),
            ]
        self.server = grpc.aio.server(
            interceptors=[RpcInterceptor(authenticator, rules)],
            options=options,
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs or None,
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.port = 0

    async def start(self) -> int:
        """Binds and starts; returns the port (useful when the settings ask for port 0)."""
        address = f"{self.settings.host}:{self.settings.port}"
        tls = self.settings.tls
        if tls is None:
            self.port = self.server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.private_key, tls.certificate_chain)],
                root_certificates=tls.client_ca,
                require_client_auth=tls.client_ca is not None,
            )
            self.port = self.server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")
        await self.server.start()
        await self._set_all(health_pb2.HealthCheckResponse.NOT_SERVING)
        log.info(
            "listening",
            address=address,
            port=self.port,
            services=self.service_names,
            tls="off" if tls is None else ("mutual" if tls.client_ca else "server"),
        )
        return self.port

    async def set_serving(self) -> None:
        await self._set_all(health_pb2.HealthCheckResponse.SERVING)
        log.info("serving")

    async def _set_all(
        self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType
    ) -> None:
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    async def stop(self, grace: float | None = None) -> None:
        await self.health.enter_graceful_shutdown()
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        log.info("draining", grace_seconds=grace)
        await self.server.stop(grace)


def stop_signal() -> asyncio.Event:
    """Set on the process's first SIGTERM or SIGINT: what every service waits for before it
    turns not ready and drains."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    return stopping


async def serve_until_signalled(
    server: GrpcServer, cleanups: Sequence[Callable[[], Awaitable[None]]] = ()
) -> None:
    """Runs until SIGTERM or SIGINT, then drains the server and runs the cleanups."""
    garbage_collection.freeze_startup_objects()
    await stop_signal().wait()
    log.info("shutdown requested")
    await server.stop()
    for cleanup in cleanups:
        await cleanup()
    log.info("stopped")


@dataclass(frozen=True)
class Assembled:
    """A service put together: its server, and what must finish after the port opens and
    before health says SERVING (the detector's playbook listener, say)."""

    server: GrpcServer
    until_ready: Callable[[], Awaitable[None]] | None = None


Assemble: TypeAlias = Callable[[Authenticator, contextlib.AsyncExitStack], Awaitable[Assembled]]


async def run_service_until_signalled(settings: ServerSettings, assemble: Assemble) -> None:
    """The life of every service process: its authenticator, then what ``assemble`` builds
    with it (registering how to release each resource on the stack, in the order they were
    made), the port, readiness, SERVING; on SIGTERM NOT_SERVING and the drain, then the
    resources released last-made first."""
    async with contextlib.AsyncExitStack() as resources:
        authenticator, close_auth = await open_authenticator(settings.auth)
        resources.push_async_callback(close_auth)
        assembled = await assemble(authenticator, resources)
        await assembled.server.start()
        if assembled.until_ready is not None:
            await assembled.until_ready()
        await assembled.server.set_serving()
        await serve_until_signalled(assembled.server)
