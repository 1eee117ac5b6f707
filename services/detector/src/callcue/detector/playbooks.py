"""Playbooks in PostgreSQL: named sets of keywords, written alone or as a whole file."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from google.protobuf import field_mask_pb2
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from callcue.core import errors
from callcue.core.pagination import Keyset
from callcue.detector.keywords import DEFAULT_PLAYBOOK, ensure_default_playbook, insert
from callcue.detector.v1 import detector_service_pb2 as pb

# AIP-122 resource ids: they appear in URLs, files and logs, so keep them plain.
_ID = re.compile(r"[a-z][a-z0-9-]{0,62}")
MAX_TEXT_CHARS = 2000
_WRITABLE = ("display_name", "description")
_COLUMNS = """p.playbook_id, p.display_name, p.description, p.create_time, p.update_time,
              (SELECT count(*) FROM keywords k
               WHERE k.tenant_id = p.tenant_id AND k.playbook_id = p.playbook_id)
              AS keyword_count"""


def validate_playbook(
    playbook: pb.Playbook,
    field: str = "",
    on_error: Callable[[str, str], errors.RpcError] = errors.invalid_argument,
) -> pb.Playbook:
    clean = pb.Playbook(
        playbook_id=playbook.playbook_id.strip(),
        display_name=playbook.display_name.strip(),
        description=playbook.description.strip(),
    )
    at = f"{field}." if field else ""
    if not _ID.fullmatch(clean.playbook_id):
        raise on_error(
            f"{at}playbook_id",
            f"{clean.playbook_id!r} is not a playbook id: 1 to 63 lowercase letters, digits "
            "and hyphens, starting with a letter, for example 'sales-emea'",
        )
    for name in ("display_name", "description"):
        if len(getattr(clean, name)) > MAX_TEXT_CHARS:
            raise on_error(f"{at}{name}", f"must be at most {MAX_TEXT_CHARS} characters")
    clean.display_name = clean.display_name or clean.playbook_id
    return clean


def _row_to_playbook(row: dict[str, Any]) -> pb.Playbook:
    playbook = pb.Playbook(
        playbook_id=row["playbook_id"],
        display_name=row["display_name"],
        description=row["description"],
        keyword_count=row["keyword_count"],
    )
    playbook.create_time.FromDatetime(row["create_time"])
    playbook.update_time.FromDatetime(row["update_time"])
    return playbook


_PAGES = Keyset(columns=("p.playbook_id",), keys=("playbook_id",), kinds=(str,))


@dataclass(frozen=True)
class ImportResult:
    playbook: pb.Playbook
    created: int
    deleted: int


class PlaybookStore:
    """Every read and write is scoped to a tenant: another tenant's playbook does not exist."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create(self, tenant_id: str, playbook: pb.Playbook) -> pb.Playbook:
        clean = validate_playbook(playbook, "playbook")
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            try:
                await cur.execute(
                    "INSERT INTO playbooks (tenant_id, playbook_id, display_name, description) "
                    "VALUES (%s, %s, %s, %s)",
                    (tenant_id, clean.playbook_id, clean.display_name, clean.description),
                )
            except psycopg.errors.UniqueViolation:
                raise _exists(clean.playbook_id) from None
            return await self._get(cur, tenant_id, clean.playbook_id)

    async def get(self, tenant_id: str, playbook_id: str) -> pb.Playbook:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            if playbook_id == DEFAULT_PLAYBOOK:
                await ensure_default_playbook(cur, tenant_id)
            return await self._get(cur, tenant_id, playbook_id)

    async def _get(
        self, cur: psycopg.AsyncCursor[dict[str, Any]], tenant_id: str, playbook_id: str
    ) -> pb.Playbook:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM playbooks p WHERE p.tenant_id = %s AND p.playbook_id = %s",
            (tenant_id, playbook_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise errors.not_found("playbook", playbook_id)
        return _row_to_playbook(row)

    async def page(
        self, tenant_id: str, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[pb.Playbook], str]:
        size = _PAGES.size(page_size)
        after, params = _PAGES.after(page_token)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await ensure_default_playbook(cur, tenant_id)
            await cur.execute(
                f"SELECT {_COLUMNS} FROM playbooks p WHERE p.tenant_id = %s AND {after} "
                f"{_PAGES.order_by()}",
                (tenant_id, *params, _PAGES.limit(size)),
            )
            rows, next_token = _PAGES.page(await cur.fetchall(), size)
        return [_row_to_playbook(row) for row in rows], next_token

    async def update(
        self, tenant_id: str, playbook: pb.Playbook, mask: field_mask_pb2.FieldMask
    ) -> pb.Playbook:
        paths = list(mask.paths) or list(_WRITABLE)
        for path in paths:
            if path not in _WRITABLE:
                raise errors.invalid_argument(
                    "update_mask", f"{path!r} cannot be changed; writable: {', '.join(_WRITABLE)}"
                )
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=dict_row) as cur:
                current = await self._get(cur, tenant_id, playbook.playbook_id)
                field_mask_pb2.FieldMask(paths=paths).MergeMessage(playbook, current)
                clean = validate_playbook(current, "playbook")
                await cur.execute(
                    "UPDATE playbooks SET display_name = %s, description = %s, update_time = now() "
                    "WHERE tenant_id = %s AND playbook_id = %s",
                    (clean.display_name, clean.description, tenant_id, clean.playbook_id),
                )
                return await self._get(cur, tenant_id, clean.playbook_id)

    async def delete(self, tenant_id: str, playbook_id: str, force: bool) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=dict_row) as cur:
                playbook = await self._get(cur, tenant_id, playbook_id)
                if playbook.keyword_count and not force:
                    raise errors.failed_precondition(
                        f"playbook {playbook_id!r} has {playbook.keyword_count} keywords; "
                        "delete them first or pass force"
                    )
                await cur.execute(
                    "DELETE FROM playbooks WHERE tenant_id = %s AND playbook_id = %s",
                    (tenant_id, playbook_id),
                )

    async def import_file(
        self, tenant_id: str, playbook: pb.Playbook, keywords: list[pb.Keyword], replace: bool
    ) -> ImportResult:
        """Writes a parsed, validated playbook file in one transaction: all or nothing."""
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor(row_factory=dict_row) as cur:
                # Two imports of one playbook at once would interleave their keywords.
                await cur.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('callcue.playbook:' || %s))",
                    (f"{tenant_id}/{playbook.playbook_id}",),
                )
                await cur.execute(
                    "INSERT INTO playbooks (tenant_id, playbook_id, display_name, description) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (tenant_id, playbook_id) DO NOTHING "
                    "RETURNING 1",
                    (tenant_id, playbook.playbook_id, playbook.display_name, playbook.description),
                )
                deleted = 0
                if await cur.fetchone() is None:
                    if not replace:
                        raise _exists(playbook.playbook_id, hint=" (import with replace)")
                    await cur.execute(
                        "UPDATE playbooks SET display_name = %s, description = %s, "
                        "update_time = now() WHERE tenant_id = %s AND playbook_id = %s",
                        (
                            playbook.display_name,
                            playbook.description,
                            tenant_id,
                            playbook.playbook_id,
                        ),
                    )
                    await cur.execute(
                        "DELETE FROM keywords WHERE tenant_id = %s AND playbook_id = %s",
                        (tenant_id, playbook.playbook_id),
                    )
                    deleted = cur.rowcount
                for index, keyword in enumerate(keywords):
                    try:
                        await insert(cur, tenant_id, keyword)
                    except errors.RpcError as error:
                        raise errors.RpcError(
                            error.code, f"keywords[{index}]: {error.message}", *error.details
                        ) from None
                return ImportResult(
                    await self._get(cur, tenant_id, playbook.playbook_id), len(keywords), deleted
                )


def _exists(playbook_id: str, hint: str = "") -> errors.RpcError:
    return errors.already_exists(
        "playbook", playbook_id, f"playbook {playbook_id!r} already exists{hint}"
    )
