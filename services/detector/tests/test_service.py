from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2

from callcue.call.v1 import call_pb2
from callcue.core import database
from callcue.core.settings import Environment
from callcue.detector.app import MIGRATIONS, build_server
from callcue.detector.keywords import KeywordStore
from callcue.detector.settings import Settings
from callcue.detector.v1 import detector_service_pb2 as pb
from callcue.detector.v1 import detector_service_pb2_grpc as pb_grpc


@pytest.fixture(scope="module")
async def stub(database_url: str) -> AsyncIterator[pb_grpc.DetectorServiceStub]:
    await database.migrate(database_url, "detector", Path(MIGRATIONS))
    pool = await database.open_pool(database_url, max_size=4)
    settings = Settings.from_env(
        Environment(
            {"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "DATABASE_URL": database_url}
        )
    )
    server = build_server(settings, KeywordStore(pool))
    port = await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield pb_grpc.DetectorServiceStub(channel)
    await server.stop(0)
    await pool.close()


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


async def create(stub: pb_grpc.DetectorServiceStub, keyword: pb.Keyword) -> pb.Keyword:
    response = await stub.CreateKeyword(pb.CreateKeywordRequest(keyword=keyword))
    return response.keyword


async def test_create_get_update_delete(stub: pb_grpc.DetectorServiceStub) -> None:
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


async def test_list_pages_through_one_playbook(stub: pb_grpc.DetectorServiceStub) -> None:
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
    stub: pb_grpc.DetectorServiceStub, keyword: pb.Keyword, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await create(stub, keyword)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(field)


async def test_duplicate_phrase_in_a_playbook(stub: pb_grpc.DetectorServiceStub) -> None:
    await create(stub, new_keyword("dupes", "Too expensive"))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await create(stub, new_keyword("dupes", "too EXPENSIVE!"))
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_unknown_keyword_ids(stub: pb_grpc.DetectorServiceStub) -> None:
    for keyword_id in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.DeleteKeyword(pb.DeleteKeywordRequest(keyword_id=keyword_id))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


def final(text: str) -> pb.DetectRequest:
    return pb.DetectRequest(
        segment=call_pb2.TranscriptSegment(segment_id=text, text=text, is_final=True)
    )


async def test_detect_streams_detections_for_the_call_playbook(
    stub: pb_grpc.DetectorServiceStub,
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
    responses = [r.detection async for r in stub.Detect(iter(requests))]
    assert [(d.phrase, d.segment_id) for d in responses] == [
        ("sales force", "We use sales force today."),
        ("too expensive", "The budget is tight and it is too expensive."),
    ]
    assert responses[0].talking_point.title == "Heard Salesforce"


async def test_segment_before_config_is_invalid(stub: pb_grpc.DetectorServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        [r async for r in stub.Detect(iter([final("hello")]))]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "config" in (error.value.details() or "")
