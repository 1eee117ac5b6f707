"""Keywords and their talking points, stored in PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from google.protobuf import field_mask_pb2
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from callcue.call.v1 import call_pb2
from callcue.core import errors
from callcue.core import page_token as page_token_codec
from callcue.detector.text import normalize
from callcue.detector.v1 import detector_service_pb2 as pb

DEFAULT_PLAYBOOK = "default"
MAX_PHRASE_CHARS = 200
MAX_ALIASES = 50
_WRITABLE = ("playbook_id", "phrase", "aliases", "speaker", "talking_point")
_COLUMNS = """keyword_id, playbook_id, phrase, aliases, speaker, title, body, links,
              category, priority, create_time, update_time"""


def validate(keyword: pb.Keyword) -> pb.Keyword:
    """A copy with defaults filled in, or INVALID_ARGUMENT naming the first bad field."""
    clean = pb.Keyword()
    clean.CopyFrom(keyword)
    clean.playbook_id = keyword.playbook_id.strip() or DEFAULT_PLAYBOOK
    clean.phrase = keyword.phrase.strip()
    _check_phrase("keyword.phrase", clean.phrase)
    if len(keyword.aliases) > MAX_ALIASES:
        raise errors.invalid_argument("keyword.aliases", f"at most {MAX_ALIASES} aliases")
    del clean.aliases[:]
    for index, alias in enumerate(keyword.aliases):
        _check_phrase(f"keyword.aliases[{index}]", alias.strip())
        clean.aliases.append(alias.strip())
    if keyword.speaker not in call_pb2.SpeakerRole.values():
        raise errors.invalid_argument("keyword.speaker", f"unknown speaker role {keyword.speaker}")
    point = clean.talking_point
    point.title = point.title.strip()
    if not point.title:
        raise errors.invalid_argument(
            "keyword.talking_point.title", "must not be empty: it is what the rep sees"
        )
    if point.category not in call_pb2.TalkingPointCategory.values():
        raise errors.invalid_argument(
            "keyword.talking_point.category", f"unknown category {point.category}"
        )
    if not 0 <= point.priority <= 100:
        raise errors.invalid_argument("keyword.talking_point.priority", "must be 0 to 100")
    return clean


def _check_phrase(field: str, phrase: str) -> None:
    if not normalize(phrase):
        raise errors.invalid_argument(
            field, "must contain at least one word (letters or digits), for example 'pricing'"
        )
    if len(phrase) > MAX_PHRASE_CHARS:
        raise errors.invalid_argument(field, f"must be at most {MAX_PHRASE_CHARS} characters")


def _row_to_keyword(row: dict[str, Any]) -> pb.Keyword:
    keyword = pb.Keyword(
        keyword_id=str(row["keyword_id"]),
        playbook_id=row["playbook_id"],
        phrase=row["phrase"],
        aliases=row["aliases"],
        speaker=row["speaker"],
        talking_point=call_pb2.TalkingPoint(
            title=row["title"],
            body=row["body"],
            links=row["links"],
            category=row["category"],
            priority=row["priority"],
        ),
    )
    keyword.create_time.FromDatetime(row["create_time"])
    keyword.update_time.FromDatetime(row["update_time"])
    return keyword


def _values(keyword: pb.Keyword) -> dict[str, Any]:
    point = keyword.talking_point
    return {
        "playbook_id": keyword.playbook_id,
        "phrase": keyword.phrase,
        "normalized_phrase": normalize(keyword.phrase),
        "aliases": list(keyword.aliases),
        "speaker": keyword.speaker,
        "title": point.title,
        "body": point.body,
        "links": list(point.links),
        "category": point.category,
        "priority": point.priority,
    }


def _parse_id(keyword_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(keyword_id)
    except ValueError:
        raise errors.not_found("keyword", keyword_id) from None


def _duplicate(keyword: pb.Keyword) -> errors.RpcError:
    return errors.already_exists(
        "keyword",
        keyword.phrase,
        f"playbook {keyword.playbook_id!r} already has the phrase {keyword.phrase!r}",
    )


class KeywordStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create(self, keyword: pb.Keyword) -> pb.Keyword:
        clean = validate(keyword)
        values = _values(clean)
        names = ", ".join(values)
        placeholders = ", ".join(f"%({name})s" for name in values)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            try:
                await cur.execute(
                    f"INSERT INTO keywords ({names}) VALUES ({placeholders}) RETURNING {_COLUMNS}",
                    values,
                )
            except psycopg.errors.UniqueViolation:
                raise _duplicate(clean) from None
            row = await cur.fetchone()
        assert row is not None
        return _row_to_keyword(row)

    async def get(self, keyword_id: str) -> pb.Keyword:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {_COLUMNS} FROM keywords WHERE keyword_id = %s", (_parse_id(keyword_id),)
            )
            row = await cur.fetchone()
        if row is None:
            raise errors.not_found("keyword", keyword_id)
        return _row_to_keyword(row)

    async def page(
        self, playbook_id: str = "", page_size: int = 100, page_token: str = ""
    ) -> tuple[list[pb.Keyword], str]:
        if page_size < 0 or page_size > 1000:
            raise errors.invalid_argument("page_size", "must be 0 to 1000")
        page_size = page_size or 100
        where: list[str] = ["TRUE"]
        params: list[object] = []
        if playbook_id:
            where.append("playbook_id = %s")
            params.append(playbook_id)
        if page_token:
            where.append("(create_time, keyword_id) > (%s, %s)")
            params.extend(page_token_codec.decode(page_token))
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {_COLUMNS} FROM keywords WHERE {' AND '.join(where)} "
                "ORDER BY create_time, keyword_id LIMIT %s",
                (*params, page_size + 1),
            )
            rows = await cur.fetchall()
        next_token = ""
        if len(rows) > page_size:
            last = rows[page_size - 1]
            next_token = page_token_codec.encode(last["create_time"], last["keyword_id"])
        return [_row_to_keyword(row) for row in rows[:page_size]], next_token

    async def for_playbooks(self, playbook_ids: Sequence[str]) -> list[pb.Keyword]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {_COLUMNS} FROM keywords WHERE playbook_id = ANY(%s)",
                (list(playbook_ids),),
            )
            return [_row_to_keyword(row) for row in await cur.fetchall()]

    async def update(self, keyword: pb.Keyword, mask: field_mask_pb2.FieldMask) -> pb.Keyword:
        paths = list(mask.paths) or list(_WRITABLE)
        for path in paths:
            if path.split(".")[0] not in _WRITABLE:
                raise errors.invalid_argument(
                    "update_mask", f"{path!r} cannot be changed; writable: {', '.join(_WRITABLE)}"
                )
        key = _parse_id(keyword.keyword_id)
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    f"SELECT {_COLUMNS} FROM keywords WHERE keyword_id = %s FOR UPDATE", (key,)
                )
                row = await cur.fetchone()
                if row is None:
                    raise errors.not_found("keyword", keyword.keyword_id)
                merged = _row_to_keyword(row)
                field_mask_pb2.FieldMask(paths=paths).MergeMessage(
                    keyword, merged, replace_message_field=True, replace_repeated_field=True
                )
                clean = validate(merged)
                values = _values(clean)
                assignments = ", ".join(f"{name} = %({name})s" for name in values)
                try:
                    await cur.execute(
                        f"UPDATE keywords SET {assignments}, update_time = now() "
                        f"WHERE keyword_id = %(key)s RETURNING {_COLUMNS}",
                        {**values, "key": key},
                    )
                except psycopg.errors.UniqueViolation:
                    raise _duplicate(clean) from None
                updated = await cur.fetchone()
        assert updated is not None
        return _row_to_keyword(updated)

    async def delete(self, keyword_id: str) -> None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM keywords WHERE keyword_id = %s", (_parse_id(keyword_id),)
            )
            if cursor.rowcount == 0:
                raise errors.not_found("keyword", keyword_id)
