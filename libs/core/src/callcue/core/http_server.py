"""The HTTP side of the services that speak it (the console, telephony): uvicorn, run by the
service itself, which on SIGTERM turns not ready and drains before it lets uvicorn stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn


class Readiness:
    """What /readyz answers: false until the server listens, and again once it drains."""

    def __init__(self) -> None:
        self.ready = False


class UvicornServer(uvicorn.Server):
    """Uvicorn without its own signal handling (the service's stop_signal decides)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def start(server: uvicorn.Server) -> asyncio.Task[None] | None:
    """Runs the server until it listens; its task, or None if it ended first (what stopped
    it, a port in use say, is raised)."""
    running = asyncio.create_task(server.serve())
    while not server.started:
        if running.done():
            await running
            return None
        await asyncio.sleep(0.05)
    return running


def bound_port(server: uvicorn.Server) -> int:
    """The port it listens on (useful when asked for port 0)."""
    return int(server.servers[0].sockets[0].getsockname()[1])
