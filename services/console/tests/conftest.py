"""The console on loopback in front of the whole stack (core.testing's `stack`), its
people, and a real Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from callcue.cli.call import stream_call
from callcue.cli.recording import read_recording
from callcue.cli.text_view import CallReport, EventView
from callcue.console import app
from callcue.console.people import Role
from callcue.console.settings import Settings
from callcue.core import database, http_server
from callcue.core.auth import Authenticator
from callcue.core.settings import Environment, ServerSettings
from callcue.core.testing import Stack
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb
from callcue.telephony import app as telephony_app
from callcue.telephony.connectors import ConnectorStore
from callcue.telephony.sealing import SecretBox, new_key

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "samples" / "sales_call.wav"
DIST = REPO / "clients" / "web" / "dist"
CHROMIUM = os.environ.get("CALLCUE_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "clients" / "web" / "test-results"
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Console:
    url: str
    port: int


@dataclass(frozen=True)
class People:
    rep: str = "rep-a@acme.test"
    other_rep: str = "rep-b@acme.test"
    supervisor: str = "lead@acme.test"
    admin: str = "admin@acme.test"
    other_tenant_admin: str = "admin@globex.test"


@pytest.fixture(scope="session")
async def connector_store(database_url: str) -> AsyncIterator[ConnectorStore]:
    """Telephony's connectors, in the test database."""
    await database.migrate(database_url, telephony_app.COMPONENT, telephony_app.MIGRATIONS)
    pool = await database.open_pool(database_url, max_size=2)
    yield ConnectorStore(pool, SecretBox(new_key()))
    await pool.close()


@pytest.fixture(scope="session")
async def telephony_port(
    connector_store: ConnectorStore, authenticator: Authenticator, database_url: str
) -> AsyncIterator[int]:
    """Telephony's ConnectorService over gRPC, which the console's admin pages call."""
    env = Environment({"CALLCUE_HOST": "127.0.0.1", "DATABASE_URL": database_url})
    server = telephony_app.build_grpc_server(
        ServerSettings.from_env(env, default_port=0),
        connector_store,
        authenticator,
        "wss://calls.acme.test",
    )
    port = await server.start()
    await server.set_serving()
    yield port
    await server.stop(0)


@pytest.fixture(scope="session")
async def console(stack: Stack, database_url: str, telephony_port: int) -> AsyncIterator[Console]:
    settings = Settings.from_env(
        Environment(
            {
                "DATABASE_URL": database_url,
                "CALLCUE_HOST": "127.0.0.1",
                "CALLCUE_PORT": "0",
                "CALLCUE_GATEWAY_ADDRESS": f"127.0.0.1:{stack.gateway_port}",
                "CALLCUE_NOTIFIER_ADDRESS": f"127.0.0.1:{stack.notifier_port}",
                "CALLCUE_DETECTOR_ADDRESS": f"127.0.0.1:{stack.detector_port}",
                "CALLCUE_TELEPHONY_ADDRESS": f"127.0.0.1:{telephony_port}",
                "CALLCUE_CONSOLE_SECURE_COOKIES": "false",
                "CALLCUE_CONSOLE_STATIC_DIR": str(DIST),
                "CALLCUE_CONSOLE_MAX_UPLOAD_BYTES": str(4 * 1024 * 1024),
            }
        )
    )
    await app.migrate(settings)
    readiness = app.Readiness()
    async with app.open_parts(settings) as parts:
        for username, role, tenant in (
            (People.rep, Role.REP, "acme"),
            (People.other_rep, Role.REP, "acme"),
            (People.supervisor, Role.SUPERVISOR, "acme"),
            (People.admin, Role.ADMIN, "acme"),
            (People.other_tenant_admin, Role.ADMIN, "globex"),
        ):
            await parts.people.add(username, tenant, role, PASSWORD)
        config = uvicorn.Config(
            app.build_app(settings, parts, readiness),
            host="127.0.0.1",
            port=0,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="websockets-sansio",
            # Browser streams still open at the end are cut, not waited for.
            timeout_graceful_shutdown=2,
        )
        server = http_server.UvicornServer(config)
        running = await http_server.start(server)
        assert running is not None, "the console did not start"
        readiness.ready = True
        port = http_server.bound_port(server)
        yield Console(f"http://127.0.0.1:{port}", port)
        server.should_exit = True
        await running


@pytest.fixture(scope="session")
def people() -> People:
    return People()


@pytest.fixture(scope="session")
async def sales_playbook(stack: Stack) -> str:
    content = (REPO / "playbooks" / "sales.yaml").read_bytes()
    imported = await stack.detector.ImportPlaybook(
        detector_pb.ImportPlaybookRequest(content=content, replace=True)
    )
    return imported.playbook.playbook_id


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CALLCUE_TEST_CHROMIUM)"
        )
    if not (DIST / "index.html").is_file():
        pytest.fail("the console's pages are not built: run `make install` (needs Node.js 20)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={SAMPLE}%noloop",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield launched
        await launched.close()


class FlakyLink:
    """A TCP relay to the console that can lose the network: every open connection is cut
    and new ones are refused until it comes back. Chromium's offline mode alone leaves a
    response that is already streaming untouched."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def drop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._open.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def signed_in(
    browser: Browser, console: Console, username: str, *, url: str | None = None
) -> AsyncIterator[tuple[BrowserContext, Page]]:
    context = await browser.new_context(
        base_url=url or console.url,
        permissions=["microphone"],
        viewport={"width": 1280, "height": 800},
    )
    page = await context.new_page()
    await page.goto("/")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("[data-testid=who]")
    try:
        yield context, page
    finally:
        await context.close()


async def stream_sample(
    stack: Stack, *, rep: str, title: str, playbook: str, on_session: asyncio.Future[str]
) -> CallReport:
    """The sample call at real-time pace, as `callcue call --rep` streams it."""
    config = gateway_pb.CallConfig(
        interim_results=True, title=title, playbook_ids=[playbook], metadata={"rep": rep}
    )

    def started(session_id: str) -> None:
        if not on_session.done():
            on_session.set_result(session_id)

    return await stream_call(
        stack.gateway, read_recording(SAMPLE), config, EventView(io.StringIO()), on_session=started
    )


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
