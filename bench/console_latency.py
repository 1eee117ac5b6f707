"""Talking-point latency to the browser: the whole system as separate processes (the four
services and the console), calls from ../shared/eval/hvb_calls streamed at real-time pace
by a gRPC caller, and the call open in real Chromium pages of the console.

For every detection the final transcript confirms, the time from the end of its
trigger's last word in the audio to (a) its first arrival at the gRPC caller and (b) its
card first appearing in each page's DOM (a MutationObserver stamps it); p50/p95 of both,
with one page per call and then with many pages of one call. Pages and caller share the
machine's clock.

    uv run python bench/console_latency.py ../shared/eval [--calls 4] [--views 1,50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import argon2
import httpx
import psutil
from detector_quality import load_playbook
from e2e_latency import CHUNK_SECONDS, PHONE, Recording, percentile
from evaldata import hvb_calls
from playwright.async_api import Browser, Page, async_playwright

from callcue.call.v1 import call_pb2
from callcue.cli import devstack
from callcue.console.people import PeopleStore, Role
from callcue.core import api_keys, database, scopes
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.postgres import create_database, drop_database
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.detector.v1 import detector_service_pb2_grpc
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc

TENANT, SUPERVISOR, PASSWORD = "bench", "lead@bench.test", "bench password"
# Cards whose words ended this soon after the call began may arrive before a page has
# subscribed (they come from the replay, not live): not counted.
SETTLE_SECONDS = 5.0
WATCH_CARDS = """() => {
    window.cardsSeen = {};
    new MutationObserver(() => {
        for (const card of document.querySelectorAll('[data-testid=card]')) {
            const id = card.dataset.detectionId;
            if (!(id in window.cardsSeen)) window.cardsSeen[id] = Date.now() / 1000;
        }
    }).observe(document.body, {subtree: true, childList: true});
}"""


def _seconds(value: object) -> float:
    return float(value.ToNanoseconds()) / 1e9  # type: ignore[attr-defined]


async def signed_in_page(browser: Browser, url: str) -> Page:
    # A context each: its own connections, so no page waits behind the six that
    # Chromium allows one host over HTTP/1.1.
    context = await browser.new_context(base_url=url)
    page = await context.new_page()
    await page.goto("/")
    await page.fill("input[name=username]", SUPERVISOR)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("[data-testid=who]")
    return page


class StreamViewer:
    """A view of a call without a browser: the Connect stream read over HTTP, each
    detection stamped on arrival. Tells the console's cost apart from the browser's."""

    def __init__(self, client: httpx.AsyncClient, csrf: str) -> None:
        self._client = client
        self._csrf = csrf
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def goto(self, path: str) -> None:
        session_id = path.rsplit("/", 1)[1]
        self._task = asyncio.create_task(self._read(session_id))

    async def evaluate(self, script: str) -> dict[str, float] | None:
        return self.seen if script == "window.cardsSeen" else None

    async def _read(self, session_id: str) -> None:
        body = json.dumps({"sessionId": session_id}).encode()
        request = struct.pack(">BI", 0, len(body)) + body
        headers = {"content-type": "application/connect+json", "x-csrf-token": self._csrf}
        async with self._client.stream(
            "POST", "/callcue.console.v1.LiveService/WatchCall", content=request, headers=headers
        ) as reply:
            buffer = b""
            async for piece in reply.aiter_bytes():
                buffer += piece
                while len(buffer) >= 5:
                    flags, length = struct.unpack(">BI", buffer[:5])
                    if len(buffer) < 5 + length:
                        break
                    message, buffer = json.loads(buffer[5 : 5 + length]), buffer[5 + length :]
                    detection = message.get("event", {}).get("detection")
                    if not flags and detection:
                        self.seen.setdefault(detection["detectionId"], time.time())


async def stream_viewer(url: str) -> StreamViewer:
    client = httpx.AsyncClient(base_url=url, timeout=None)
    reply = await client.post(
        "/callcue.console.v1.AuthService/Login",
        json={"username": SUPERVISOR, "password": PASSWORD},
    )
    return StreamViewer(client, reply.json()["csrfToken"])


async def one_call(
    call: Recording, gateway_address: str, key: str, pages: list[Page] | list[StreamViewer]
) -> tuple[list[float], list[float], list[float]]:
    """Delays after the words ended at the caller and in the pages, and what the console
    added to each card (page minus caller, per page)."""
    chunk = int(8000 * 2 * CHUNK_SECONDS)
    started = time.time()
    first_at: dict[str, tuple[float, float]] = {}
    confirmed: set[str] = set()

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        config = pb.CallConfig(
            audio_format=PHONE, interim_results=True, playbook_ids=["hvb-bank"], title=call.name
        )
        yield pb.StreamCallRequest(config=config)
        for index, begin in enumerate(range(0, len(call.pcm), chunk)):
            await asyncio.sleep(max(0.0, started + index * CHUNK_SECONDS - time.time()))
            yield pb.StreamCallRequest(audio=call.pcm[begin : begin + chunk])

    async with open_channel(gateway_address, credentials=api_key(key)) as channel:
        gateway = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        opened = False
        async for response in gateway.StreamCall(requests()):
            event = response.event
            if not opened:
                opened = True
                for page in pages:
                    await page.goto(f"/call/{event.session_id}")
                    await page.evaluate(WATCH_CARDS)  # type: ignore[arg-type]
            if event.WhichOneof("event") == "detection":
                detection = event.detection
                first_at.setdefault(
                    detection.detection_id, (time.time(), _seconds(detection.end_offset))
                )
                if detection.state == call_pb2.DETECTION_STATE_CONFIRMED:
                    confirmed.add(detection.detection_id)
    await asyncio.sleep(1.0)  # the last cards reach the pages
    seen = [await page.evaluate("window.cardsSeen") for page in pages]
    caller: list[float] = []
    browser: list[float] = []
    added: list[float] = []
    for detection_id in confirmed:
        arrival, word_end = first_at[detection_id]
        if word_end < SETTLE_SECONDS:
            continue
        caller.append(arrival - (started + word_end))
        shown = [s[detection_id] for s in seen if detection_id in s]
        browser += [at - (started + word_end) for at in shown]
        added += [at - arrival for at in shown]
    return caller, browser, added


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--calls", type=int, default=4, help="hvb calls streamed per level")
    parser.add_argument("--views", default="1,50", help="browser pages per call, per level")
    parser.add_argument(
        "--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL"
    )
    parser.add_argument("--port-base", type=int, default=54051)
    parser.add_argument("--console-port", type=int, default=54080)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument(
        "--http-views",
        action="store_true",
        help="views are Connect streams read over HTTP, not browser pages",
    )
    args = parser.parse_args()
    calls = [Recording.joined([call]) for call in hvb_calls(args.eval_dir, args.calls)]
    name = f"callcue_console_{uuid.uuid4().hex[:8]}"
    url = await create_database(args.postgres, name)
    os.environ["CALLCUE_LOG_LEVEL"] = "warning"
    logs = Path(tempfile.mkdtemp(prefix="callcue-console-bench-"))
    stack = devstack.DevStack(
        devstack.ports_from(args.port_base, args.console_port),
        url,
        service_keys=devstack.service_keys(logs),
    )
    processes = devstack.start_services(stack, logs, (*devstack.SERVICES, devstack.CONSOLE))
    try:
        await devstack.wait_until_serving(stack, processes)
        pool = await database.open_pool(url, max_size=1)
        _, key = await api_keys.ApiKeyStore(pool).create_key(TENANT, "bench", [scopes.ADMIN])
        await PeopleStore(pool, argon2.PasswordHasher()).add(
            SUPERVISOR, TENANT, Role.SUPERVISOR, PASSWORD
        )
        await pool.close()
        async with open_channel(stack.address("detector"), credentials=api_key(key)) as channel:
            detector = detector_service_pb2_grpc.PlaybookServiceStub(channel)
            playbook = detector_pb.Playbook(playbook_id="hvb-bank")
            await detector.CreatePlaybook(detector_pb.CreatePlaybookRequest(playbook=playbook))
            for keyword in load_playbook():
                keyword.keyword_id, keyword.playbook_id = "", "hvb-bank"
                await detector.CreateKeyword(detector_pb.CreateKeywordRequest(keyword=keyword))
        console_url = f"http://localhost:{args.console_port}"
        services = [psutil.Process(p.process.pid) for p in processes]
        rows = []
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=args.chromium)
            for views in [int(n) for n in args.views.split(",")]:
                pages: list[Page] | list[StreamViewer] = (
                    [await stream_viewer(console_url) for _ in range(views)]
                    if args.http_views
                    else [await signed_in_page(browser, console_url) for _ in range(views)]
                )
                before = [sum(p.cpu_times()[:2]) for p in services]
                wall = time.monotonic()
                caller: list[float] = []
                seen: list[float] = []
                added: list[float] = []
                for call in calls:
                    got = await one_call(call, stack.address("gateway"), key, pages)
                    caller += got[0]
                    seen += got[1]
                    added += got[2]
                console_cpu = (sum(services[-1].cpu_times()[:2]) - before[-1]) / (
                    time.monotonic() - wall
                )
                for page in pages:
                    if isinstance(page, StreamViewer):
                        await page._client.aclose()
                    else:
                        await page.context.close()
                row = (
                    f"| {views} | {len(caller)} | {percentile(caller, 0.5):.2f} | "
                    f"{percentile(caller, 0.95):.2f} | {len(seen)} | {percentile(seen, 0.5):.2f} | "
                    f"{percentile(seen, 0.95):.2f} | "
                    f"{percentile(seen, 0.95) - percentile(caller, 0.95):+.3f} | "
                    f"{statistics.median(added) if added else float('nan'):+.3f} | "
                    f"{percentile(added, 0.95):+.3f} | "
                    f"{len(seen) / max(1, len(caller) * views):.0%} | "
                    f"{console_cpu:.3f} |"
                )
                print(row, flush=True)
                rows.append(row)
            await browser.close()
        print(
            "\n| pages per call | cards (caller) | caller p50 s | caller p95 s | cards seen in "
            "pages | page p50 s | page p95 s | p95 page - p95 caller | added p50 s | added p95 s "
            "| cards shown | console CPU (cores) |\n" + "|---" * 12 + "|"
        )
        print("\n".join(rows))
    finally:
        devstack.stop_services(processes)
        await drop_database(args.postgres, name)


if __name__ == "__main__":
    asyncio.run(main())
