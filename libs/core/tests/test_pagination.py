from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
import pytest

from callcue.core.errors import RpcError
from callcue.core.pagination import Keyset, decode_token, encode_token

CREATED = Keyset(
    columns=("s.create_time", "s.id"), keys=("create_time", "id"), kinds=(datetime, uuid.UUID)
)


def test_round_trip() -> None:
    created, key = datetime(2026, 11, 24, 5, 0, 1, 123456, tzinfo=UTC), uuid.uuid4()
    assert decode_token(encode_token([created, key]), (datetime, uuid.UUID)) == [created, key]
    assert decode_token(encode_token(["sales"]), (str,)) == ["sales"]


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "!!!",
        encode_token([datetime.now(UTC), uuid.uuid4()])[:-6],
        encode_token(["sales"]),  # another list's token
        encode_token([uuid.uuid4(), datetime.now(UTC)]),  # the kinds swapped
    ],
)
def test_foreign_tokens_are_invalid(token: str) -> None:
    with pytest.raises(RpcError) as error:
        CREATED.after(token)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.message.startswith("page_token")


@pytest.mark.parametrize("size", [-1, 1001])
def test_a_page_size_out_of_range_is_invalid(size: int) -> None:
    with pytest.raises(RpcError) as error:
        CREATED.size(size)
    assert error.value.message == "page_size: must be 0 to 1000"


def test_pages_continue_after_the_last_row_in_the_sort_order() -> None:
    newest_first = Keyset(
        columns=("t", "id"), keys=("t", "id"), kinds=(datetime, uuid.UUID), descending=True
    )
    assert newest_first.size(0) == 100
    assert newest_first.after("") == ("TRUE", [])
    assert newest_first.order_by() == "ORDER BY t DESC, id DESC LIMIT %s"
    rows = [{"t": datetime(2026, 1, day, tzinfo=UTC), "id": uuid.uuid4()} for day in (3, 2, 1)]
    page, token = newest_first.page(rows, 2)
    assert page == rows[:2] and token
    condition, params = newest_first.after(token)
    assert condition == "(t, id) < (%s, %s)"
    assert params == [rows[1]["t"], rows[1]["id"]]
    assert newest_first.page(rows, 3) == (rows, "")
