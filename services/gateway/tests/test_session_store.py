"""Sessions in PostgreSQL: paging, tenants, finishing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from callcue.call.v1 import call_pb2
from callcue.core import database
from callcue.core.errors import RpcError
from callcue.gateway import app as gateway_app
from callcue.gateway.session_store import SessionStore
from callcue.gateway.v1 import gateway_service_pb2 as pb


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SessionStore]:
    await database.migrate(database_url, "gateway", gateway_app.MIGRATIONS)
    pool = await database.open_pool(database_url, max_size=2)
    yield SessionStore(pool)
    await pool.close()


async def test_pages_are_newest_first_and_never_repeat_or_skip(store: SessionStore) -> None:
    tenant = f"pages-{uuid.uuid4().hex[:8]}"
    made = [
        (await store.create(tenant, pb.SESSION_SOURCE_LIVE, pb.CallConfig(title=f"call {n}")))
        for n in range(5)
    ]
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        sessions, token = await store.page(tenant, call_pb2.CALL_STATE_UNSPECIFIED, 2, token)
        seen += [s.session_id for s in sessions]
        pages += 1
        if not token:
            break
    assert pages == 3
    assert seen == [s.session_id for s in reversed(made)]
    ended = made[1].session_id
    await store.finish(ended, call_pb2.CALL_STATE_ENDED, 1.0, "")
    only_ended, _ = await store.page(tenant, call_pb2.CALL_STATE_ENDED, 0, "")
    assert [s.session_id for s in only_ended] == [ended]


@pytest.mark.parametrize(("size", "token"), [(1001, ""), (-1, ""), (10, "not-ours")])
async def test_a_bad_page_request_is_invalid_argument(
    store: SessionStore, size: int, token: str
) -> None:
    with pytest.raises(RpcError) as error:
        await store.page("acme", call_pb2.CALL_STATE_UNSPECIFIED, size, token)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_another_tenants_session_does_not_exist(store: SessionStore) -> None:
    session = await store.create("acme", pb.SESSION_SOURCE_LIVE, pb.CallConfig())
    with pytest.raises(RpcError) as error:
        await store.get("globex", session.session_id)
    assert error.value.code == grpc.StatusCode.NOT_FOUND
    listed, _ = await store.page("globex", call_pb2.CALL_STATE_UNSPECIFIED, 1000, "")
    assert session.session_id not in {s.session_id for s in listed}
