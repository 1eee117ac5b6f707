"""The console in a real Chromium against the real services: each screen as its people
use it."""

from __future__ import annotations

import asyncio
import io
import re

from playwright.async_api import Browser, expect

from callcue.call.v1 import call_pb2
from callcue.cli.call import stream_call
from callcue.cli.recording import read_recording
from callcue.cli.text_view import EventView
from callcue.core.testing import Stack
from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb
from callcue.telephony.connectors import ConnectorStore

from .conftest import SAMPLE, Console, FlakyLink, People, screenshot, signed_in, stream_sample

CALL_SECONDS = 90  # the 39 s sample at real-time pace, with room for a busy machine


async def test_a_rep_calls_from_the_microphone_and_sees_words_and_cards(
    browser: Browser, console: Console, people: People, sales_playbook: str
) -> None:
    async with signed_in(browser, console, people.rep) as (_, page):
        await page.fill("[aria-label=playbook]", sales_playbook)
        await page.click("[data-testid=start-call]")
        await expect(page.get_by_test_id("connection")).to_have_text("connected", timeout=20_000)
        transcript = page.get_by_test_id("transcript")
        await expect(transcript).to_contain_text("Salesforce", timeout=CALL_SECONDS * 1000)
        cards = page.get_by_test_id("card")
        await expect(cards.filter(has_text="Competitor: Salesforce")).to_have_count(
            1, timeout=30_000
        )
        await expect(cards.filter(has_text="Price objection")).to_have_count(
            1, timeout=CALL_SECONDS * 1000
        )
        # Cards are ordered by priority: the price objection (90) above the competitor (80).
        titles = await page.locator("[data-testid=card] h3").all_inner_texts()
        assert titles.index("Price objection") < titles.index("Competitor: Salesforce")
        await expect(page.get_by_test_id("final-text").first).to_be_visible()
        await screenshot(page, "rep-view")
        await page.click("[data-testid=stop-call]")
        await expect(page.get_by_test_id("call-state")).to_have_text("ended", timeout=30_000)


async def test_calls_from_the_cli_show_on_the_wall_and_in_the_reps_view(
    browser: Browser, console: Console, people: People, stack: Stack, sales_playbook: str
) -> None:
    async with (
        signed_in(browser, console, people.supervisor) as (_, wall),
        signed_in(browser, console, people.rep) as (_, rep),
    ):
        await wall.goto("/wall")
        await expect(wall.get_by_test_id("wall-connection")).to_have_text("connected")
        first: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        second: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        calls = asyncio.gather(
            stream_sample(
                stack,
                rep=people.rep,
                title="wall call one",
                playbook=sales_playbook,
                on_session=first,
            ),
            stream_sample(
                stack,
                rep=people.other_rep,
                title="wall call two",
                playbook=sales_playbook,
                on_session=second,
            ),
        )
        tiles = wall.get_by_test_id("wall-tile")
        await expect(tiles.filter(has_text="wall call one")).to_have_count(1, timeout=20_000)
        await expect(tiles.filter(has_text="wall call two")).to_have_count(1)
        await rep.goto(f"/call/{await first}")
        await expect(rep.get_by_test_id("transcript")).to_contain_text(
            "Salesforce", timeout=CALL_SECONDS * 1000
        )
        await expect(tiles.filter(has_text="wall call one")).to_contain_text(
            "Competitor: Salesforce", timeout=30_000
        )
        await screenshot(wall, "supervisor-wall")
        await asyncio.wait_for(calls, CALL_SECONDS)
        # Ended calls leave the wall.
        await expect(tiles.filter(has_text=re.compile("wall call"))).to_have_count(
            0, timeout=30_000
        )


async def test_a_keyword_added_in_the_browser_fires_in_a_running_call(
    browser: Browser, console: Console, people: People, stack: Stack, sales_playbook: str
) -> None:
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    async with (
        signed_in(browser, console, people.admin) as (_, admin),
        signed_in(browser, console, people.rep) as (_, rep),
    ):
        call = asyncio.create_task(
            stream_sample(
                stack,
                rep=people.rep,
                title="keyword call",
                playbook=sales_playbook,
                on_session=started,
            )
        )
        await rep.goto(f"/call/{await started}")
        await admin.goto("/admin")
        await admin.select_option("[data-testid=playbook-select]", sales_playbook)
        await admin.click("[data-testid=new-keyword]")
        form = admin.get_by_test_id("keyword-form")
        # Said at the end of the sample (about 37 s); the call is already running.
        await form.locator("input[name=phrase]").fill("next week")
        await form.locator("input[name=title]").fill("Book for next week")
        await form.locator("textarea[name=body]").fill(
            "Send the **SOC 2 report** first.<script>window.pwned = 1</script>"
            '<img src=x onerror="window.pwned = 2">'
        )
        await screenshot(admin, "playbook-editor")
        await admin.click("[data-testid=save-keyword]")
        await expect(
            admin.get_by_test_id("keyword-row").filter(has_text="next week")
        ).to_have_count(1)
        report = await asyncio.wait_for(call, CALL_SECONDS)
        titles = [d.talking_point.title for d in report.detections]
        assert "Book for next week" in titles, titles
        card = rep.get_by_test_id("card").filter(has_text="Book for next week")
        await expect(card).to_have_count(1, timeout=10_000)
        # Markdown renders; HTML from the playbook does not.
        await expect(card.locator("strong")).to_have_text("SOC 2 report")
        assert await card.locator("script, img").count() == 0
        assert await rep.evaluate("window.pwned") is None


async def test_a_rep_cannot_open_another_reps_call_or_the_playbooks(
    browser: Browser, console: Console, people: People, stack: Stack
) -> None:
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    config = gateway_pb.CallConfig(metadata={"rep": people.rep}, title="private call")
    await stream_call(
        stack.gateway,
        read_recording(SAMPLE),
        config,
        EventView(io.StringIO()),
        realtime=False,
        on_session=lambda session_id: started.set_result(session_id),
    )
    session_id = await started
    async with signed_in(browser, console, people.other_rep) as (_, page):
        await page.goto(f"/call/{session_id}")
        await expect(page.get_by_role("alert")).to_contain_text("not one of your calls")
        await page.goto(f"/history/{session_id}")
        await expect(page.get_by_role("alert")).to_contain_text("not one of your calls")
        await page.goto("/admin")
        await expect(page.get_by_role("alert")).to_contain_text("for admins")
        # The API refuses too, whatever the page shows.
        answer = await page.evaluate(
            """async () => {
                const me = await fetch('/callcue.console.v1.AuthService/GetMe', {
                    method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'});
                const token = (await me.json()).csrfToken;
                const admin = '/callcue.console.v1.PlaybookAdminService/';
                const reply = await fetch(admin + 'ListPlaybooks', {
                    method: 'POST',
                    headers: {'content-type': 'application/json', 'x-csrf-token': token},
                    body: '{}'});
                return [reply.status, (await reply.json()).code];
            }"""
        )
        assert answer == [403, "permission_denied"]
        rows = page.get_by_test_id("session-row")
        await page.goto("/history")
        await page.wait_for_load_state("networkidle")
        assert "private call" not in " ".join(await rows.all_inner_texts())
    async with signed_in(browser, console, people.other_tenant_admin) as (_, page):
        await page.goto(f"/history/{session_id}")
        await expect(page.get_by_role("alert")).to_be_visible()
        assert "private call" not in await page.content()


async def test_a_dropped_network_resumes_the_view_with_nothing_missing_or_twice(
    browser: Browser, console: Console, people: People, stack: Stack, sales_playbook: str
) -> None:
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    link = FlakyLink(console.port)
    await link.start()
    url = f"http://127.0.0.1:{link.port}"
    async with signed_in(browser, console, people.rep, url=url) as (context, page):
        call = asyncio.create_task(
            stream_sample(
                stack,
                rep=people.rep,
                title="flaky network",
                playbook=sales_playbook,
                on_session=started,
            )
        )
        session_id = await started
        await page.goto(f"/call/{session_id}")
        await expect(page.get_by_test_id("final-text").first).to_be_visible(timeout=30_000)
        await context.set_offline(True)
        await link.drop()
        await expect(page.get_by_test_id("connection")).to_have_text("reconnecting", timeout=10_000)
        await asyncio.sleep(6)  # words and cards keep coming meanwhile
        await link.start()
        await context.set_offline(False)
        await expect(page.get_by_test_id("connection")).to_have_text(
            re.compile("connected|ended"), timeout=15_000
        )
        await asyncio.wait_for(call, CALL_SECONDS)
        await expect(page.get_by_test_id("call-state")).to_have_text("ended", timeout=20_000)
        shown = " ".join(await page.get_by_test_id("final-text").all_inner_texts())
        transcript = await stack.gateway.GetTranscript(
            gateway_pb.GetTranscriptRequest(session_id=session_id)
        )
        stored = " ".join(segment.text for segment in transcript.segments)
        assert shown.split() == stored.split()
        cards = await page.locator("[data-testid=card]").evaluate_all(
            "cards => cards.map(card => card.dataset.detectionId)"
        )
        confirmed = [
            d.detection_id
            for d in transcript.detections
            if d.state == call_pb2.DETECTION_STATE_CONFIRMED
        ]
        assert sorted(cards) == sorted(confirmed)


async def test_an_upload_shows_progress_and_ends_with_the_transcript(
    browser: Browser, console: Console, people: People
) -> None:
    async with signed_in(browser, console, people.rep) as (_, page):
        await page.goto("/history")
        await page.evaluate(
            """() => {
                window.progressSeen = [];
                new MutationObserver(() => {
                    const bar = document.querySelector('[data-testid=upload-progress]');
                    if (bar) window.progressSeen.push(Number(bar.getAttribute('value')));
                }).observe(document.body, {subtree: true, childList: true, attributes: true});
            }"""
        )
        await page.get_by_test_id("upload-file").set_input_files(str(SAMPLE))
        await page.wait_for_url(re.compile(r"/call/"), timeout=30_000)
        assert await page.evaluate("window.progressSeen.length") > 0
        await expect(page.get_by_test_id("call-state")).to_have_text("ended", timeout=120_000)
        await expect(page.get_by_test_id("transcript")).to_contain_text("contract")


async def test_an_admin_tries_a_sentence_and_sees_import_errors_by_line(
    browser: Browser, console: Console, people: People, sales_playbook: str
) -> None:
    async with signed_in(browser, console, people.admin) as (_, page):
        await page.goto("/admin")
        await page.select_option("[data-testid=playbook-select]", sales_playbook)
        await page.fill("[aria-label='try sentence']", "honestly we already use Salesforce")
        await page.click("[data-testid=try-button]")
        await expect(page.get_by_test_id("try-results")).to_contain_text("Competitor: Salesforce")
        await page.fill("[aria-label='try sentence']", "the weather is nice today")
        await page.click("[data-testid=try-button]")
        await expect(page.get_by_test_id("try-results")).to_have_text("nothing would fire")
        await page.fill(
            "[aria-label='playbook document']",
            "playbook_id: broken\nkeywords:\n  - phrase: ok\n"
            "    talking_point: {title: [unclosed\n",
        )
        await page.get_by_role("button", name="Import").click()
        await expect(page.get_by_test_id("import-error")).to_contain_text("line")


async def test_an_admin_connects_a_phone_system_and_sees_its_credentials_once(
    browser: Browser, console: Console, people: People, connector_store: ConnectorStore
) -> None:
    async with signed_in(browser, console, people.admin) as (_, page):
        await page.get_by_role("link", name="Phone systems").click()
        # A Twilio connector without the auth token it is signed with is refused, by field.
        await page.get_by_test_id("add-connector").click()
        await expect(page.get_by_role("alert")).to_contain_text("twilio_auth_token")
        await page.get_by_test_id("connector-protocol").select_option(
            label="Genesys Cloud AudioHook"
        )
        await page.get_by_test_id("connector-name").fill("Genesys EU")
        await page.get_by_test_id("add-connector").click()
        shown = page.get_by_test_id("new-credentials")
        await expect(shown).to_be_visible()
        api_key = await page.get_by_test_id("new-api-key").inner_text()
        secret = await page.get_by_test_id("new-client-secret").inner_text()
        url = await page.get_by_test_id("new-url").inner_text()
        assert re.fullmatch(r"wss://calls\.acme\.test/audiohook/tc_\w+", url)
        connector = await connector_store.get(url.rsplit("/", 1)[1])
        assert connector is not None and connector.tenant_id == "acme"
        assert connector.key_matches(api_key) and connector_store.secret(connector) == secret
        await screenshot(page, "phone-systems")
        # Shown once: a reload lists the connector without its credentials.
        await page.reload()
        row = page.get_by_test_id("connector").filter(has_text="Genesys EU")
        await expect(row).to_contain_text("internal")
        assert api_key not in await page.content()
        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await row.get_by_role("button", name="Delete").click()
        await expect(row).to_have_count(0)
        assert await connector_store.get(connector.connector_id) is None
    async with signed_in(browser, console, people.rep) as (_, page):
        await page.goto("/phone")
        await expect(page.get_by_role("alert")).to_contain_text("for admins")
