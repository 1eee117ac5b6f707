"""Keyset pagination for every List RPC (AIP-158): page sizes, opaque tokens, the SQL.

A page continues after the last row of the one before, by the columns of a unique sort
order, so rows added meanwhile never shift a page and no row is skipped or repeated.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from callcue.core import errors

Key = datetime | uuid.UUID | str
R = TypeVar("R", bound=Mapping[str, Any])
T = TypeVar("T")


def encode_token(values: Sequence[Key]) -> str:
    """An opaque token for the sort key of a page's last row."""
    tagged = [_tag(value) for value in values]
    return base64.urlsafe_b64encode(json.dumps(tagged, separators=(",", ":")).encode()).decode()


def _tag(value: Key) -> list[str]:
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["u", str(value)]
    return ["s", value]


def decode_token(token: str, kinds: Sequence[type]) -> list[Key]:
    """The sort key in ``token``, whose values must be of ``kinds``; INVALID_ARGUMENT for
    anything this service did not hand out."""
    parse: dict[type, tuple[str, Any]] = {
        datetime: ("t", datetime.fromisoformat),
        uuid.UUID: ("u", uuid.UUID),
        str: ("s", str),
    }
    try:
        tagged = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
        if not isinstance(tagged, list) or len(tagged) != len(kinds):
            raise ValueError("wrong shape")
        values: list[Key] = []
        for (tag, text), kind in zip(tagged, kinds, strict=True):
            want, convert = parse[kind]
            if tag != want or not isinstance(text, str):
                raise ValueError("wrong kind")
            values.append(convert(text))
        return values
    except (ValueError, TypeError, UnicodeDecodeError):
        raise errors.invalid_argument(
            "page_token", "is not a token this service returned"
        ) from None


@dataclass(frozen=True)
class Keyset:
    """One List RPC's paging: ``columns`` (SQL expressions, the last unique) with the
    row keys they are read back from, in ascending or descending order."""

    columns: tuple[str, ...]
    keys: tuple[str, ...]
    kinds: tuple[type, ...]
    descending: bool = False
    default_size: int = 100
    max_size: int = 1000

    def size(self, requested: int) -> int:
        if not 0 <= requested <= self.max_size:
            raise errors.invalid_argument("page_size", f"must be 0 to {self.max_size}")
        return requested or self.default_size

    def after(self, token: str) -> tuple[str, list[Any]]:
        """The WHERE condition (and its parameters) of the page after ``token``; the empty
        condition "TRUE" for the first page."""
        if not token:
            return "TRUE", []
        values = decode_token(token, self.kinds)
        operator = "<" if self.descending else ">"
        marks = ", ".join(["%s"] * len(values))
        return f"({', '.join(self.columns)}) {operator} ({marks})", list(values)

    def order_by(self) -> str:
        """ORDER BY and LIMIT (one parameter: the page size plus one, from ``limit``)."""
        direction = " DESC" if self.descending else ""
        return "ORDER BY " + ", ".join(f"{c}{direction}" for c in self.columns) + " LIMIT %s"

    @staticmethod
    def limit(size: int) -> int:
        return size + 1  # one more row says whether there is a next page

    def page(self, rows: Sequence[R], size: int) -> tuple[Sequence[R], str]:
        """The page's rows and the token of the next page ("" after the last)."""
        if len(rows) <= size:
            return rows, ""
        last = rows[size - 1]
        return rows[:size], encode_token([last[key] for key in self.keys])


async def every_page(
    fetch: Callable[[str], Awaitable[tuple[Sequence[T], str]]], *, limit: int | None = None
) -> list[T]:
    """A List RPC's items page after page, for its clients: ``fetch`` takes a page token
    ("" for the first) and returns the page's items and the next token ("" after the
    last). Stops early once ``limit`` items are in."""
    found: list[T] = []
    token = ""
    while limit is None or len(found) < limit:
        items, token = await fetch(token)
        found.extend(items)
        if not token:
            break
    return found
