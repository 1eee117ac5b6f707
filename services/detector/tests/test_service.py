from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2

from callcue.call.v1 import call_pb2
from callcue.core import database, scopes
from callcue.core.api_keys import ApiKeyStore
from callcue.core.auth import ApiKeyAuthenticator
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.settings import Environment
from callcue.detector.app import MIGRATIONS, build_server
from callcue.detector.keywords import KeywordStore
from callcue.detector.live import LiveMatchers
from callcue.detector.playbooks import PlaybookStore
from callcue.detector.settings import Settings
from callcue.detector.v1 import detector_service_pb2 as pb
from callcue.detector.v1 import detector_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from callcue.core.testing import ServiceTrust, TenantKeys


@pytest.fixture(scope="module")
async def port(
    database_url: str, authenticator: ApiKeyAuthenticator, service_trust: ServiceTrust
) -> AsyncIterator[int]:
    await database.migrate(database_url, "detector", Path(MIGRATIONS))
    pool = await database.open_pool(database_url, max_size=4)
    settings = Settings.from_env(
        Environment(
            {
                "CALLCUE_HOST": "127.0.0.1",
                "CALLCUE_PORT": "0",
                "DATABASE_URL": database_url,
                **service_trust.environment(),
            }
        )
    )
    keywords = KeywordStore(pool)
    matchers = LiveMatchers(keywords, None)
    listening = asyncio.Event()
    listener = asyncio.create_task(matchers.listen(database_url, listening))
    await listening.wait()
    doors = service_trust.doors("detector", authenticator)
    server = build_server(settings, keywords, PlaybookStore(pool), matchers, doors)
    yield await server.start()
    await server.stop(0)
    listener.cancel()
    await pool.close()


@pytest.fixture(scope="module")
async def stub(port: int, tenant_keys: TenantKeys) -> AsyncIterator[pb_grpc.PlaybookServiceStub]:
    """Playbook administration, as a client of tenant acme calls it."""
    credentials = api_key(tenant_keys.acme)
    async with open_channel(f"127.0.0.1:{port}", credentials=credentials) as channel:
        stub = pb_grpc.PlaybookServiceStub(channel)
        for playbook in PLAYBOOKS:
            await stub.CreatePlaybook(
                pb.CreatePlaybookRequest(playbook=pb.Playbook(playbook_id=playbook))
            )
        yield stub


@pytest.fixture(scope="module")
async def detection(
    port: int, service_trust: ServiceTrust
) -> AsyncIterator[pb_grpc.DetectionServiceStub]:
    """Detection streams, as the gateway calls them for tenant acme."""
    credentials = service_trust.as_gateway("acme", "detector")
    async with open_channel(f"127.0.0.1:{port}", credentials=credentials) as channel:
        yield pb_grpc.DetectionServiceStub(channel)


PLAYBOOKS = ("crud", "paging", "other", "dupes", "detect", "not-this-call")


def new_keyword(playbook: str, phrase: str, *aliases: str) -> pb.Keyword:
    return pb.Keyword(
        playbook_id=playbook,
        phrase=phrase,
        aliases=aliases,
        talking_point=call_pb2.TalkingPoint(
            title=f"Heard {phrase}",
            body="**Say this.**",
            links=["https://example.com/battlecard"],
            category=call_pb2.TALKING_POINT_CATEGORY_COMPETITOR,
            priority=7,
        ),
    )


async def create(stub: pb_grpc.PlaybookServiceStub, keyword: pb.Keyword) -> pb.Keyword:
    response = await stub.CreateKeyword(pb.CreateKeywordRequest(keyword=keyword))
    return response.keyword


async def test_create_get_update_delete(stub: pb_grpc.PlaybookServiceStub) -> None:
    created = await create(stub, new_keyword("crud", "HubSpot", "hub spot"))
    assert created.keyword_id and created.create_time.seconds > 0
    fetched = (await stub.GetKeyword(pb.GetKeywordRequest(keyword_id=created.keyword_id))).keyword
    assert fetched == created

    change = pb.Keyword(keyword_id=created.keyword_id, phrase="Pipedrive")
    mask = field_mask_pb2.FieldMask(paths=["phrase"])
    updated = (
        await stub.UpdateKeyword(pb.UpdateKeywordRequest(keyword=change, update_mask=mask))
    ).keyword
    assert updated.phrase == "Pipedrive"
    assert list(updated.aliases) == ["hub spot"]
    assert updated.talking_point == created.talking_point

    await stub.DeleteKeyword(pb.DeleteKeywordRequest(keyword_id=created.keyword_id))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetKeyword(pb.GetKeywordRequest(keyword_id=created.keyword_id))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_pages_through_one_playbook(stub: pb_grpc.PlaybookServiceStub) -> None:
    for index in range(5):
        await create(stub, new_keyword("paging", f"phrase {index}"))
    await create(stub, new_keyword("other", "phrase 0"))
    seen, token = [], ""
    while True:
        page = await stub.ListKeywords(
            pb.ListKeywordsRequest(playbook_id="paging", page_size=2, page_token=token)
        )
        seen += [k.phrase for k in page.keywords]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"phrase {index}" for index in range(5)]


@pytest.mark.parametrize(
    ("keyword", "field"),
    [
        (pb.Keyword(phrase="", talking_point=call_pb2.TalkingPoint(title="t")), "keyword.phrase"),
        (
            pb.Keyword(phrase=" ?! ", talking_point=call_pb2.TalkingPoint(title="t")),
            "keyword.phrase",
        ),
        (pb.Keyword(phrase="ok"), "keyword.talking_point.title"),
        (
            pb.Keyword(phrase="ok", aliases=[""], talking_point=call_pb2.TalkingPoint(title="t")),
            "keyword.aliases[0]",
        ),
    ],
)
async def test_invalid_keywords_name_the_field(
    stub: pb_grpc.PlaybookServiceStub, keyword: pb.Keyword, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await create(stub, keyword)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(field)


async def test_duplicate_phrase_in_a_playbook(stub: pb_grpc.PlaybookServiceStub) -> None:
    await create(stub, new_keyword("dupes", "Too expensive"))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await create(stub, new_keyword("dupes", "too EXPENSIVE!"))
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_unknown_keyword_ids(stub: pb_grpc.PlaybookServiceStub) -> None:
    for keyword_id in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.DeleteKeyword(pb.DeleteKeywordRequest(keyword_id=keyword_id))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


def final(text: str) -> pb.DetectRequest:
    return pb.DetectRequest(
        segment=call_pb2.TranscriptSegment(segment_id=text, text=text, is_final=True)
    )


async def test_detect_streams_detections_for_the_call_playbook(
    stub: pb_grpc.PlaybookServiceStub,
    detection: pb_grpc.DetectionServiceStub,
) -> None:
    await create(stub, new_keyword("detect", "Salesforce", "sales force"))
    await create(stub, new_keyword("detect", "too expensive"))
    await create(stub, new_keyword("not-this-call", "budget"))
    requests = [
        pb.DetectRequest(config=pb.DetectConfig(session_id="s1", playbook_ids=["detect"])),
        final("We use sales force today."),
        pb.DetectRequest(segment=call_pb2.TranscriptSegment(text="too expensive", is_final=False)),
        final("The budget is tight and it is too expensive."),
    ]
    streamed = [r async for r in detection.Detect(iter(requests))]
    # First what the transcriber should listen for, then the detections.
    assert list(streamed[0].vocabulary.phrases) == ["Salesforce", "too expensive"]
    responses = [r.detection for r in streamed[1:]]
    assert all(r.HasField("detection") for r in streamed[1:])
    assert [(d.phrase, d.segment_id) for d in responses] == [
        ("sales force", "We use sales force today."),
        ("too expensive", "The budget is tight and it is too expensive."),
    ]
    assert responses[0].talking_point.title == "Heard Salesforce"


async def test_segment_before_config_is_invalid(
    stub: pb_grpc.PlaybookServiceStub, detection: pb_grpc.DetectionServiceStub
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        [r async for r in detection.Detect(iter([final("hello")]))]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config" in (error.value.details() or "")


async def test_playbook_crud_and_listing(stub: pb_grpc.PlaybookServiceStub) -> None:
    created = (
        await stub.CreatePlaybook(
            pb.CreatePlaybookRequest(
                playbook=pb.Playbook(playbook_id="renewals", description="Renewal calls")
            )
        )
    ).playbook
    assert created.display_name == "renewals" and created.keyword_count == 0
    await create(stub, new_keyword("renewals", "auto renew"))
    fetched = (await stub.GetPlaybook(pb.GetPlaybookRequest(playbook_id="renewals"))).playbook
    assert fetched.keyword_count == 1
    updated = (
        await stub.UpdatePlaybook(
            pb.UpdatePlaybookRequest(
                playbook=pb.Playbook(playbook_id="renewals", display_name="Renewals"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            )
        )
    ).playbook
    assert (updated.display_name, updated.description) == ("Renewals", "Renewal calls")

    seen, token = [], ""
    while True:
        page = await stub.ListPlaybooks(pb.ListPlaybooksRequest(page_size=2, page_token=token))
        seen += [p.playbook_id for p in page.playbooks]
        if not (token := page.next_page_token):
            break
    assert "renewals" in seen and "default" in seen and seen == sorted(seen)

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.DeletePlaybook(pb.DeletePlaybookRequest(playbook_id="renewals"))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await stub.DeletePlaybook(pb.DeletePlaybookRequest(playbook_id="renewals", force=True))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetPlaybook(pb.GetPlaybookRequest(playbook_id="renewals"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_playbooks_and_keywords_in_unknown_playbooks(
    stub: pb_grpc.PlaybookServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.CreatePlaybook(
            pb.CreatePlaybookRequest(playbook=pb.Playbook(playbook_id="Not An Id"))
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("playbook.playbook_id")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.CreatePlaybook(
            pb.CreatePlaybookRequest(playbook=pb.Playbook(playbook_id="crud"))
        )
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await create(stub, new_keyword("nowhere", "hello"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "nowhere" in (error.value.details() or "")


@pytest.mark.parametrize(
    ("keyword", "code", "field"),
    [
        (
            pb.Keyword(phrase="a", patterns=["(x"], talking_point=call_pb2.TalkingPoint(title="t")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "keyword.patterns[0]",
        ),
        (
            pb.Keyword(
                phrase="a", semantic_threshold=2, talking_point=call_pb2.TalkingPoint(title="t")
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "keyword.semantic_threshold",
        ),
        (
            pb.Keyword(phrase="a", patterns=["x*"], talking_point=call_pb2.TalkingPoint(title="t")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "keyword.patterns[0]",
        ),
    ],
)
async def test_trigger_options_are_validated(
    stub: pb_grpc.PlaybookServiceStub, keyword: pb.Keyword, code: grpc.StatusCode, field: str
) -> None:
    keyword.playbook_id = "crud"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await create(stub, keyword)
    assert error.value.code() == code
    assert (error.value.details() or "").startswith(field)


async def test_duplicate_names_in_a_playbook(stub: pb_grpc.PlaybookServiceStub) -> None:
    first = new_keyword("dupes", "budget")
    first.display_name = "Money talk"
    await create(stub, first)
    second = new_keyword("dupes", "spend")
    second.display_name = "money TALK"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await create(stub, second)
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "Money talk" in (error.value.details() or "") or "money TALK" in (
        error.value.details() or ""
    )


IMPORT = b"""\
playbook_id: imported
display_name: Imported
keywords:
  - phrase: Salesforce
    talking_point: {title: Competitor, category: competitor}
  - phrase: price
    inflections: true
    talking_point: {title: Pricing, category: pricing}
"""


async def keyword_names(stub: pb_grpc.PlaybookServiceStub, playbook: str) -> list[str]:
    page = await stub.ListKeywords(pb.ListKeywordsRequest(playbook_id=playbook, page_size=100))
    return [k.display_name for k in page.keywords]


async def test_import_is_all_or_nothing_and_exports_back(
    stub: pb_grpc.PlaybookServiceStub,
) -> None:
    broken = IMPORT + b"  - phrase: x\n    patterns: ['(']\n    talking_point: {title: t}\n"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ImportPlaybook(pb.ImportPlaybookRequest(content=broken))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("keywords[2].patterns[0]: line 10:")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetPlaybook(pb.GetPlaybookRequest(playbook_id="imported"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND  # nothing half-written

    result = await stub.ImportPlaybook(pb.ImportPlaybookRequest(content=IMPORT))
    assert (result.playbook.keyword_count, result.keywords_created) == (2, 2)
    assert await keyword_names(stub, "imported") == ["Salesforce", "price"]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ImportPlaybook(pb.ImportPlaybookRequest(content=IMPORT))
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS

    # A replace that fails half-way leaves the old keywords in place.
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ImportPlaybook(pb.ImportPlaybookRequest(content=broken, replace=True))
    assert await keyword_names(stub, "imported") == ["Salesforce", "price"]

    exported = await stub.ExportPlaybook(
        pb.ExportPlaybookRequest(playbook_id="imported", format=pb.PLAYBOOK_FORMAT_JSON)
    )
    assert exported.content_type == "application/json"
    replaced = await stub.ImportPlaybook(
        pb.ImportPlaybookRequest(
            content=exported.content, format=pb.PLAYBOOK_FORMAT_JSON, replace=True
        )
    )
    assert (replaced.keywords_created, replaced.keywords_deleted) == (2, 2)
    assert await keyword_names(stub, "imported") == ["Salesforce", "price"]


async def test_detect_with_an_unknown_playbook_is_not_found(
    stub: pb_grpc.PlaybookServiceStub,
    detection: pb_grpc.DetectionServiceStub,
) -> None:
    requests = [pb.DetectRequest(config=pb.DetectConfig(playbook_ids=["no-such-playbook"]))]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        [r async for r in detection.Detect(iter(requests))]
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-playbook" in (error.value.details() or "")


class LiveCall:
    """A Detect stream kept open: segments are sent whenever the test wants, and the
    detections gathered as they come."""

    def __init__(self, detection: pb_grpc.DetectionServiceStub, playbook: str) -> None:
        self._queue: asyncio.Queue[pb.DetectRequest | None] = asyncio.Queue()
        self._queue.put_nowait(pb.DetectRequest(config=pb.DetectConfig(playbook_ids=[playbook])))
        self.responses: list[pb.DetectResponse] = []
        self._reader = asyncio.create_task(self._read(detection))

    async def _requests(self) -> AsyncIterator[pb.DetectRequest]:
        while (request := await self._queue.get()) is not None:
            yield request

    async def _read(self, detection: pb_grpc.DetectionServiceStub) -> None:
        async for response in detection.Detect(self._requests()):
            if response.HasField("detection"):
                self.responses.append(response)

    def say(self, text: str) -> None:
        self._queue.put_nowait(final(text))

    async def say_until_detected(self, text: str, seconds: float) -> float:
        """Repeats ``text`` until a detection comes back; the seconds that took."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < seconds and not self.responses:
            self.say(text)
            await asyncio.sleep(0.05)
        return loop.time() - started

    async def end(self) -> list[pb.DetectResponse]:
        self._queue.put_nowait(None)
        await self._reader
        return self.responses


async def test_edits_reach_a_running_call_within_a_second(
    stub: pb_grpc.PlaybookServiceStub,
    detection: pb_grpc.DetectionServiceStub,
) -> None:
    await stub.CreatePlaybook(pb.CreatePlaybookRequest(playbook=pb.Playbook(playbook_id="live")))
    call = LiveCall(detection, "live")
    call.say("Do you integrate with Zendesk?")
    await asyncio.sleep(0.2)
    assert call.responses == []  # the playbook is empty; add a keyword while the call runs
    await create(stub, new_keyword("live", "Zendesk"))
    await call.say_until_detected("Zendesk again.", 1.0)
    responses = await call.end()
    assert responses, "the new keyword did not reach the running call within a second"
    assert responses[0].detection.phrase == "Zendesk"


async def test_the_listener_reconnects_and_catches_up(
    stub: pb_grpc.PlaybookServiceStub, database_url: str, detection: pb_grpc.DetectionServiceStub
) -> None:
    """PostgreSQL drops the LISTEN connection (a failover, a restart): the detector
    reconnects, reloads what changed meanwhile, and running calls keep up."""
    await stub.CreatePlaybook(
        pb.CreatePlaybookRequest(playbook=pb.Playbook(playbook_id="relisten"))
    )
    call = LiveCall(detection, "relisten")
    call.say("warm up")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query = 'LISTEN callcue_playbooks' AND datname = current_database()"
        )
        # This detector's listener, and the shared stack's when that suite runs too.
        terminated = [row[0] for row in await cursor.fetchall()]
        assert terminated and all(terminated)
    await create(stub, new_keyword("relisten", "Freshdesk"))
    await call.say_until_detected("We moved to Freshdesk.", 5.0)
    responses = await call.end()
    assert responses and responses[0].detection.phrase == "Freshdesk"


async def test_test_playbook_finds_what_a_live_call_would(
    stub: pb_grpc.PlaybookServiceStub,
) -> None:
    await stub.CreatePlaybook(pb.CreatePlaybookRequest(playbook=pb.Playbook(playbook_id="dry")))
    await create(stub, new_keyword("dry", "Salesforce", "sales force"))
    tested = await stub.TestPlaybook(
        pb.TestPlaybookRequest(playbook_id="dry", text="We are on sales force now.")
    )
    assert [d.phrase for d in tested.detections] == ["sales force"]
    assert tested.detections[0].state == call_pb2.DETECTION_STATE_CONFIRMED
    nothing = await stub.TestPlaybook(pb.TestPlaybookRequest(playbook_id="dry", text="Hello."))
    assert list(nothing.detections) == []
    for text, message in (("   ", "say something"), ("word " * 500, "at most 2000")):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.TestPlaybook(pb.TestPlaybookRequest(playbook_id="dry", text=text))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in (error.value.details() or "")


async def test_a_tenant_key_cannot_open_a_detection_stream(
    port: int, tenant_keys: TenantKeys
) -> None:
    """Detections are the gateway's to ask for: a client with a key cannot feed invented
    transcripts in to fish for talking points."""
    credentials = api_key(tenant_keys.acme)
    async with open_channel(f"127.0.0.1:{port}", credentials=credentials) as channel:
        requests = [
            pb.DetectRequest(config=pb.DetectConfig(session_id="s", playbook_ids=["detect"]))
        ]
        with pytest.raises(grpc.aio.AioRpcError) as error:
            [r async for r in pb_grpc.DetectionServiceStub(channel).Detect(iter(requests))]
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_read_only_key_reads_playbooks_but_cannot_change_them(
    port: int, key_store: ApiKeyStore
) -> None:
    _, key = await key_store.create_key("acme", "reader", [scopes.PLAYBOOKS_READ])
    async with open_channel(f"127.0.0.1:{port}", credentials=api_key(key)) as channel:
        reader = pb_grpc.PlaybookServiceStub(channel)
        listed = await reader.ListPlaybooks(pb.ListPlaybooksRequest())
        assert "crud" in [p.playbook_id for p in listed.playbooks]
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await reader.DeletePlaybook(pb.DeletePlaybookRequest(playbook_id="crud", force=True))
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "playbooks:write" in (error.value.details() or "")
