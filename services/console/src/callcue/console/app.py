"""Builds and runs the console: the Connect API, the microphone WebSocket, uploads and
the built pages, on one HTTP port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import argon2
import structlog
import uvicorn
from connectrpc.server import ConnectASGIApplication
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from callcue.console.access import Gatekeeper
from callcue.console.auth_service import AuthService
from callcue.console.backend import Backend
from callcue.console.browser_sessions import BrowserSessions
from callcue.console.history_service import HistoryService
from callcue.console.live_service import LiveService
from callcue.console.login_limiter import LoginLimiter
from callcue.console.microphone import MicrophoneCalls
from callcue.console.people import PeopleStore
from callcue.console.phone_connector_service import PhoneConnectorService
from callcue.console.playbook_admin_service import PlaybookAdminService
from callcue.console.settings import Settings
from callcue.console.upload import Uploads
from callcue.console.v1 import console_service_connect as connect
from callcue.core import api_keys, database, garbage_collection, http_server, scopes
from callcue.core.http_server import Readiness
from callcue.core.server import stop_signal
from callcue.core.service_keys import ServiceKeys

log = structlog.get_logger("callcue.console")

MIGRATIONS = Path(__file__).parent / "migrations"
COMPONENT = "console"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_NOT_BUILT = """<!doctype html><title>callcue console</title>
<h1>The console's pages are not built</h1>
<p>Run <code>make install</code> on a machine with Node.js 20 and npm; the API and the
other services work without them.</p>"""

# Pages must not be framed (clickjacking) or run scripts from anywhere but here.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


@dataclass(frozen=True)
class Parts:
    people: PeopleStore
    sessions: BrowserSessions
    backend: Backend


def build_app(settings: Settings, parts: Parts, readiness: Readiness) -> ASGIApp:
    gatekeeper = Gatekeeper(parts.sessions)
    window = settings.login_window_seconds
    by_name = LoginLimiter(failures=settings.login_failures, window_seconds=window)
    # One office behind one address has many people; a guesser there is still held back.
    by_address = LoginLimiter(failures=settings.login_failures * 10, window_seconds=window)
    rpc_apps: list[ConnectASGIApplication[Any]] = [
        connect.AuthServiceASGIApplication(
            AuthService(
                parts.people,
                parts.sessions,
                gatekeeper,
                by_name,
                by_address,
                secure_cookies=settings.secure_cookies,
            )
        ),
        connect.LiveServiceASGIApplication(LiveService(parts.backend, gatekeeper)),
        connect.HistoryServiceASGIApplication(HistoryService(parts.backend, gatekeeper)),
        connect.PlaybookAdminServiceASGIApplication(
            PlaybookAdminService(parts.backend, gatekeeper)
        ),
        connect.PhoneConnectorServiceASGIApplication(
            PhoneConnectorService(parts.backend, gatekeeper)
        ),
    ]

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if readiness.ready:
            return JSONResponse({"status": "serving"})
        return JSONResponse({"status": "not serving"}, status_code=503)

    pages = _pages(settings.static_dir)
    web = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route(
                "/api/upload",
                Uploads(parts.backend, gatekeeper, settings.max_upload_bytes).handle,
                methods=["POST"],
            ),
            WebSocketRoute("/ws/microphone", MicrophoneCalls(parts.backend, gatekeeper).handle),
        ]
    )
    web.add_route("/{path:path}", pages, methods=["GET", "HEAD"])
    by_prefix = {f"{rpc.path}/": rpc for rpc in rpc_apps}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for prefix, rpc in by_prefix.items():
                if scope["path"].startswith(prefix):
                    await rpc(scope, receive, _with_headers(send))
                    return
            await web(scope, receive, _with_headers(send))
            return
        await web(scope, receive, send)

    return app


def _with_headers(send: Send) -> Send:
    async def sending(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers += [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
            message["headers"] = headers
        await send(message)

    return sending


def _pages(static_dir: Path) -> Callable[[Request], Awaitable[Response]]:
    """The built single-page app: its assets, and index.html for every other path (the
    app routes in the browser)."""
    root = static_dir.resolve()
    index = root / "index.html"

    async def page(request: Request) -> Response:
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=503)
        path = request.path_params.get("path", "")
        candidate = root / path
        if path and ".." not in Path(path).parts and candidate.is_file():
            response: Response = FileResponse(candidate)
            if path.startswith("assets/"):
                # Vite puts a content hash in every asset's name.
                response.headers["cache-control"] = "public, max-age=31536000, immutable"
            return response
        response = FileResponse(index)
        response.headers["cache-control"] = "no-cache"
        return response

    return page


@contextlib.asynccontextmanager
async def open_parts(settings: Settings) -> AsyncIterator[Parts]:
    pool = await database.open_pool(settings.database_url, max_size=10)
    try:
        keys = ServiceKeys(api_keys.ApiKeyStore(pool), "console", [scopes.ADMIN])
        async with Backend.connect(
            settings.gateway_address,
            settings.notifier_address,
            settings.detector_address,
            settings.telephony_address,
            keys,
        ) as backend:
            yield Parts(
                PeopleStore(pool, argon2.PasswordHasher()),
                BrowserSessions(pool, settings.session_lifetime),
                backend,
            )
    finally:
        await pool.close()


async def migrate(settings: Settings) -> None:
    await database.migrate(settings.database_url, COMPONENT, MIGRATIONS)


async def serve(settings: Settings) -> None:
    await database.migrate(settings.database_url, api_keys.COMPONENT, api_keys.MIGRATIONS)
    await migrate(settings)
    readiness = Readiness()
    async with open_parts(settings) as parts:
        app = build_app(settings, parts, readiness)
        config = uvicorn.Config(
            app,
            host=settings.server.host.strip("[]"),
            port=settings.server.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="websockets-sansio",
            timeout_graceful_shutdown=int(settings.server.shutdown_grace_seconds) or None,
        )
        server = http_server.UvicornServer(config)
        running = await http_server.start(server)
        if running is None:
            return
        readiness.ready = True
        log.info("serving", port=settings.server.port, static_dir=str(settings.static_dir))
        garbage_collection.freeze_startup_objects()
        signalled = asyncio.ensure_future(stop_signal().wait())
        await asyncio.wait([running, signalled], return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        log.info("shutdown requested")
        readiness.ready = False
        server.should_exit = True
        await running
        log.info("stopped")
