"""Keywords and their talking points, stored in PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import re2
from google.protobuf import duration_pb2, field_mask_pb2
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from callcue.call.v1 import call_pb2
from callcue.core import errors
from callcue.core.pagination import Keyset
from callcue.detector.matcher import compile_pattern
from callcue.detector.text import normalize
from callcue.detector.v1 import detector_service_pb2 as pb

DEFAULT_PLAYBOOK = "default"
MAX_PHRASE_CHARS = 200
MAX_ALIASES = 50
MAX_PATTERNS = 20
MAX_EXAMPLES = 50
MAX_DURATION_SECONDS = 24 * 3600
WRITABLE_FIELDS = (
    "playbook_id",
    "display_name",
    "phrase",
    "aliases",
    "speaker",
    "talking_point",
    "inflections",
    "fuzzy_threshold",
    "phonetic",
    "patterns",
    "examples",
    "semantic_threshold",
    "conditions",
)
_COLUMNS = """keyword_id, playbook_id, display_name, phrase, aliases, speaker, title, body, links,
              category, priority, inflections, fuzzy_threshold, phonetic, patterns, examples,
              semantic_threshold, cooldown_ms, max_per_call, exclude_phrases, active_from_ms,
              active_until_ms, create_time, update_time"""


def validate(keyword: pb.Keyword, field: str = "keyword") -> pb.Keyword:
    """A copy with defaults filled in, or INVALID_ARGUMENT naming the first bad field."""
    clean = pb.Keyword()
    clean.CopyFrom(keyword)
    clean.playbook_id = keyword.playbook_id.strip() or DEFAULT_PLAYBOOK
    clean.phrase = keyword.phrase.strip()
    if clean.phrase:
        _check_phrase(f"{field}.phrase", clean.phrase)
    clean.aliases[:] = _phrases(f"{field}.aliases", keyword.aliases, MAX_ALIASES)
    del clean.patterns[:]
    for index, pattern in enumerate(keyword.patterns):
        clean.patterns.append(_check_pattern(f"{field}.patterns[{index}]", pattern))
    if len(keyword.patterns) > MAX_PATTERNS:
        raise errors.invalid_argument(f"{field}.patterns", f"at most {MAX_PATTERNS} patterns")
    clean.examples[:] = _phrases(f"{field}.examples", keyword.examples, MAX_EXAMPLES)
    if not (clean.phrase or clean.aliases or clean.patterns or clean.examples):
        raise errors.invalid_argument(
            f"{field}.phrase",
            "a keyword needs something to listen for: a phrase, aliases, patterns or examples",
        )
    if clean.aliases and not clean.phrase:
        raise errors.invalid_argument(f"{field}.phrase", "aliases need a phrase to be aliases of")
    for name in ("fuzzy_threshold", "semantic_threshold"):
        value = getattr(keyword, name)
        if not 0 <= value <= 1:
            raise errors.invalid_argument(f"{field}.{name}", f"must be 0 to 1, not {value:g}")
    if keyword.speaker not in call_pb2.SpeakerRole.values():
        raise errors.invalid_argument(f"{field}.speaker", f"unknown speaker role {keyword.speaker}")
    _check_conditions(f"{field}.conditions", clean.conditions)
    point = clean.talking_point
    point.title = point.title.strip()
    if not point.title:
        raise errors.invalid_argument(
            f"{field}.talking_point.title", "must not be empty: it is what the rep sees"
        )
    if point.category not in call_pb2.TalkingPointCategory.values():
        raise errors.invalid_argument(
            f"{field}.talking_point.category", f"unknown category {point.category}"
        )
    if not 0 <= point.priority <= 100:
        raise errors.invalid_argument(f"{field}.talking_point.priority", "must be 0 to 100")
    clean.display_name = keyword.display_name.strip() or clean.phrase or point.title
    if len(clean.display_name) > MAX_PHRASE_CHARS:
        raise errors.invalid_argument(
            f"{field}.display_name", f"must be at most {MAX_PHRASE_CHARS} characters"
        )
    return clean


def _phrases(field: str, phrases: Sequence[str], limit: int) -> list[str]:
    if len(phrases) > limit:
        raise errors.invalid_argument(field, f"at most {limit}")
    clean = []
    for index, phrase in enumerate(phrases):
        _check_phrase(f"{field}[{index}]", phrase.strip())
        clean.append(phrase.strip())
    return clean


def _check_phrase(field: str, phrase: str) -> None:
    if not normalize(phrase):
        raise errors.invalid_argument(
            field, "must contain at least one word (letters or digits), for example 'pricing'"
        )
    if len(phrase) > MAX_PHRASE_CHARS:
        raise errors.invalid_argument(field, f"must be at most {MAX_PHRASE_CHARS} characters")


def _check_pattern(field: str, pattern: str) -> str:
    if not pattern.strip():
        raise errors.invalid_argument(field, "must not be empty")
    if len(pattern) > MAX_PHRASE_CHARS:
        raise errors.invalid_argument(field, f"must be at most {MAX_PHRASE_CHARS} characters")
    try:
        compiled = compile_pattern(pattern)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise errors.invalid_argument(
            field, f"not a valid RE2 regular expression ({reason}): {pattern!r}"
        ) from None
    if compiled.search("") is not None:
        raise errors.invalid_argument(field, f"{pattern!r} matches empty text, so everywhere")
    return pattern


def _check_conditions(field: str, conditions: pb.KeywordConditions) -> None:
    for name in ("cooldown", "active_from", "active_until"):
        value = getattr(conditions, name).ToNanoseconds() / 1e9
        if not 0 <= value <= MAX_DURATION_SECONDS:
            raise errors.invalid_argument(
                f"{field}.{name}", f"must be 0 to {MAX_DURATION_SECONDS} seconds"
            )
    if conditions.max_per_call < 0:
        raise errors.invalid_argument(f"{field}.max_per_call", "must be 0 (no limit) or more")
    until = conditions.active_until.ToNanoseconds()
    if until and until <= conditions.active_from.ToNanoseconds():
        raise errors.invalid_argument(f"{field}.active_until", "must be after active_from")
    conditions.exclude_phrases[:] = _phrases(
        f"{field}.exclude_phrases", conditions.exclude_phrases, MAX_ALIASES
    )


def _duration(milliseconds: int) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromMilliseconds(milliseconds)
    return value


def _row_to_keyword(row: dict[str, Any]) -> pb.Keyword:
    keyword = pb.Keyword(
        keyword_id=str(row["keyword_id"]),
        playbook_id=row["playbook_id"],
        display_name=row["display_name"],
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
        inflections=row["inflections"],
        fuzzy_threshold=row["fuzzy_threshold"],
        phonetic=row["phonetic"],
        patterns=row["patterns"],
        examples=row["examples"],
        semantic_threshold=row["semantic_threshold"],
        conditions=pb.KeywordConditions(
            cooldown=_duration(row["cooldown_ms"]),
            max_per_call=row["max_per_call"],
            exclude_phrases=row["exclude_phrases"],
            active_from=_duration(row["active_from_ms"]),
            active_until=_duration(row["active_until_ms"]),
        ),
    )
    keyword.create_time.FromDatetime(row["create_time"])
    keyword.update_time.FromDatetime(row["update_time"])
    return keyword


def _values(keyword: pb.Keyword) -> dict[str, Any]:
    point = keyword.talking_point
    conditions = keyword.conditions
    return {
        "playbook_id": keyword.playbook_id,
        "display_name": keyword.display_name,
        "normalized_name": keyword.display_name.casefold(),
        "phrase": keyword.phrase,
        "normalized_phrase": normalize(keyword.phrase),
        "aliases": list(keyword.aliases),
        "speaker": keyword.speaker,
        "title": point.title,
        "body": point.body,
        "links": list(point.links),
        "category": point.category,
        "priority": point.priority,
        "inflections": keyword.inflections,
        "fuzzy_threshold": keyword.fuzzy_threshold,
        "phonetic": keyword.phonetic,
        "patterns": list(keyword.patterns),
        "examples": list(keyword.examples),
        "semantic_threshold": keyword.semantic_threshold,
        "cooldown_ms": conditions.cooldown.ToMilliseconds(),
        "max_per_call": conditions.max_per_call,
        "exclude_phrases": list(conditions.exclude_phrases),
        "active_from_ms": conditions.active_from.ToMilliseconds(),
        "active_until_ms": conditions.active_until.ToMilliseconds(),
    }


def _parse_id(keyword_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(keyword_id)
    except ValueError:
        raise errors.not_found("keyword", keyword_id) from None


def _conflict(keyword: pb.Keyword, error: psycopg.errors.UniqueViolation) -> errors.RpcError:
    constraint = error.diag.constraint_name or ""
    if "name" in constraint:
        return errors.already_exists(
            "keyword",
            keyword.display_name,
            f"playbook {keyword.playbook_id!r} already has a keyword named "
            f"{keyword.display_name!r}",
        )
    return errors.already_exists(
        "keyword",
        keyword.phrase,
        f"playbook {keyword.playbook_id!r} already has the phrase {keyword.phrase!r}",
    )


async def insert(
    cursor: psycopg.AsyncCursor[dict[str, Any]], tenant_id: str, keyword: pb.Keyword
) -> pb.Keyword:
    """Inserts a validated keyword with the caller's cursor (and so its transaction)."""
    if keyword.playbook_id == DEFAULT_PLAYBOOK:
        await ensure_default_playbook(cursor, tenant_id)
    values = {"tenant_id": tenant_id, **_values(keyword)}
    names = ", ".join(values)
    placeholders = ", ".join(f"%({name})s" for name in values)
    try:
        async with cursor.connection.transaction():
            await cursor.execute(
                f"INSERT INTO keywords ({names}) VALUES ({placeholders}) RETURNING {_COLUMNS}",
                values,
            )
    except psycopg.errors.UniqueViolation as error:
        raise _conflict(keyword, error) from None
    except psycopg.errors.ForeignKeyViolation:
        raise errors.not_found("playbook", keyword.playbook_id) from None
    row = await cursor.fetchone()
    assert row is not None
    return _row_to_keyword(row)


async def ensure_default_playbook(cursor: psycopg.AsyncCursor[Any], tenant_id: str) -> None:
    """Every tenant has the playbook calls use when they name none, from its first use."""
    await cursor.execute(
        "INSERT INTO playbooks (tenant_id, playbook_id, display_name) VALUES (%s, %s, 'Default') "
        "ON CONFLICT DO NOTHING",
        (tenant_id, DEFAULT_PLAYBOOK),
    )


_PAGES = Keyset(
    columns=("create_time", "keyword_id"),
    keys=("create_time", "keyword_id"),
    kinds=(datetime, uuid.UUID),
)


@dataclass(frozen=True)
class KeywordFilter:
    playbook_id: str = ""
    category: int = 0
    query: str = ""


class KeywordStore:
    """Every read and write is scoped to a tenant: another tenant's keyword does not exist."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create(self, tenant_id: str, keyword: pb.Keyword) -> pb.Keyword:
        clean = validate(keyword)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return await insert(cur, tenant_id, clean)

    async def get(self, tenant_id: str, keyword_id: str) -> pb.Keyword:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {_COLUMNS} FROM keywords WHERE keyword_id = %s AND tenant_id = %s",
                (_parse_id(keyword_id), tenant_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise errors.not_found("keyword", keyword_id)
        return _row_to_keyword(row)

    async def page(
        self, tenant_id: str, where: KeywordFilter, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[pb.Keyword], str]:
        size = _PAGES.size(page_size)
        if where.category not in call_pb2.TalkingPointCategory.values():
            raise errors.invalid_argument("category", f"unknown category {where.category}")
        after, params = _PAGES.after(page_token)
        conditions: list[str] = ["tenant_id = %s", after]
        params = [tenant_id, *params]
        if where.playbook_id:
            conditions.append("playbook_id = %s")
            params.append(where.playbook_id)
        if where.category:
            conditions.append("category = %s")
            params.append(where.category)
        if where.query.strip():
            conditions.append(
                "strpos(lower(display_name || ' ' || phrase || ' ' || title || ' ' "
                "|| array_to_string(aliases, ' ')), lower(%s)) > 0"
            )
            params.append(where.query.strip())
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {_COLUMNS} FROM keywords WHERE {' AND '.join(conditions)} "
                f"{_PAGES.order_by()}",
                (*params, _PAGES.limit(size)),
            )
            rows, next_token = _PAGES.page(await cur.fetchall(), size)
        return [_row_to_keyword(row) for row in rows], next_token

    async def for_playbooks(self, tenant_id: str, playbook_ids: Sequence[str]) -> list[pb.Keyword]:
        """Every keyword of these playbooks; NOT_FOUND names one that does not exist."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT playbook_id FROM playbooks WHERE tenant_id = %s AND playbook_id = ANY(%s)",
                (tenant_id, list(playbook_ids)),
            )
            known = {row["playbook_id"] for row in await cur.fetchall()} | {DEFAULT_PLAYBOOK}
            for playbook_id in playbook_ids:
                if playbook_id not in known:
                    raise errors.not_found("playbook", playbook_id)
            await cur.execute(
                f"SELECT {_COLUMNS} FROM keywords WHERE tenant_id = %s AND playbook_id = ANY(%s) "
                "ORDER BY create_time, keyword_id",
                (tenant_id, list(playbook_ids)),
            )
            return [_row_to_keyword(row) for row in await cur.fetchall()]

    async def update(
        self, tenant_id: str, keyword: pb.Keyword, mask: field_mask_pb2.FieldMask
    ) -> pb.Keyword:
        paths = list(mask.paths) or list(WRITABLE_FIELDS)
        for path in paths:
            if path.split(".")[0] not in WRITABLE_FIELDS:
                raise errors.invalid_argument(
                    "update_mask",
                    f"{path!r} cannot be changed; writable: {', '.join(WRITABLE_FIELDS)}",
                )
        key = _parse_id(keyword.keyword_id)
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    f"SELECT {_COLUMNS} FROM keywords WHERE keyword_id = %s AND tenant_id = %s "
                    "FOR UPDATE",
                    (key, tenant_id),
                )
                row = await cur.fetchone()
                if row is None:
                    raise errors.not_found("keyword", keyword.keyword_id)
                merged = _row_to_keyword(row)
                if "display_name" not in paths and "phrase" in paths:
                    merged.display_name = ""  # follows the new phrase
                field_mask_pb2.FieldMask(paths=paths).MergeMessage(
                    keyword, merged, replace_message_field=True, replace_repeated_field=True
                )
                clean = validate(merged)
                if clean.playbook_id == DEFAULT_PLAYBOOK:
                    await ensure_default_playbook(cur, tenant_id)
                values = _values(clean)
                assignments = ", ".join(f"{name} = %({name})s" for name in values)
                try:
                    await cur.execute(
                        f"UPDATE keywords SET {assignments}, update_time = now() "
                        f"WHERE keyword_id = %(key)s RETURNING {_COLUMNS}",
                        {**values, "key": key},
                    )
                except psycopg.errors.UniqueViolation as error:
                    raise _conflict(clean, error) from None
                except psycopg.errors.ForeignKeyViolation:
                    raise errors.not_found("playbook", clean.playbook_id) from None
                updated = await cur.fetchone()
        assert updated is not None
        return _row_to_keyword(updated)

    async def delete(self, tenant_id: str, keyword_id: str) -> None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM keywords WHERE keyword_id = %s AND tenant_id = %s",
                (_parse_id(keyword_id), tenant_id),
            )
            if cursor.rowcount == 0:
                raise errors.not_found("keyword", keyword_id)
