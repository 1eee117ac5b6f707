"""Signed-in browsers: a random token in an HttpOnly cookie, a CSRF token beside it.

Only the token's SHA-256 is stored, so a leaked table does not sign anyone in. The CSRF
token is returned to the page (never in a cookie) and must come back in the
``x-csrf-token`` header: a page of another site can make the browser send the cookie,
but cannot read the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from callcue.console.people import Person, Role

COOKIE = "callcue_session"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class BrowserSession:
    person: Person
    csrf_token: str

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf_token)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class BrowserSessions:
    def __init__(self, pool: AsyncConnectionPool, lifetime: timedelta) -> None:
        self._pool = pool
        self._lifetime = lifetime

    @property
    def lifetime(self) -> timedelta:
        return self._lifetime

    async def start(self, person: Person) -> tuple[str, BrowserSession]:
        """A new session: the cookie's token (returned only here) and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO console_sessions (token_hash, username, csrf_token, expire_time) "
                "VALUES (%s, %s, %s, now() + %s)",
                (_hash(token), person.username, csrf, self._lifetime),
            )
            # Expired rows go as new ones come: no sweeper task to own.
            await conn.execute("DELETE FROM console_sessions WHERE expire_time < now()")
        return token, BrowserSession(person, csrf)

    async def find(self, token: str) -> BrowserSession | None:
        """The live session of a cookie's token; None if unknown or expired."""
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                "SELECT u.username, u.tenant_id, u.role, u.display_name, s.csrf_token "
                "FROM console_sessions s JOIN console_users u USING (username) "
                "WHERE s.token_hash = %s AND s.expire_time > now()",
                (_hash(token),),
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        person = Person(row["username"], row["tenant_id"], Role(row["role"]), row["display_name"])
        return BrowserSession(person, row["csrf_token"])

    async def end(self, token: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM console_sessions WHERE token_hash = %s", (_hash(token),)
            )
