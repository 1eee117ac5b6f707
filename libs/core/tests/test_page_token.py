from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
import pytest

from callcue.core import page_token
from callcue.core.errors import RpcError


def test_round_trip() -> None:
    created, key = datetime(2026, 11, 24, 5, 0, 1, 123456, tzinfo=UTC), uuid.uuid4()
    assert page_token.decode(page_token.encode(created, key)) == (created, key)


@pytest.mark.parametrize(
    "token", ["garbage", "!!!", page_token.encode(datetime.now(UTC), uuid.uuid4())[:-6]]
)
def test_foreign_tokens_are_invalid(token: str) -> None:
    with pytest.raises(RpcError) as error:
        page_token.decode(token)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.message.startswith("page_token")
