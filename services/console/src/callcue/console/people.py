"""People who sign in to the console: who they are, their tenant and role, and their
passwords, kept only as Argon2id hashes."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from enum import Enum

import argon2
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from callcue.core.api_keys import check_tenant_id

# Email-like names, or plain ones: what a login form and a log line can carry safely.
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,127}")
MIN_PASSWORD_LENGTH = 8


class Role(Enum):
    REP = "rep"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    def sees_every_call(self) -> bool:
        return self in (Role.SUPERVISOR, Role.ADMIN)


@dataclass(frozen=True)
class Person:
    username: str
    tenant_id: str
    role: Role
    display_name: str = ""


class InvalidPerson(ValueError):
    """A username, role or password that the console does not accept, with the rule."""


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
        raise InvalidPerson(
            f"{username!r} is not a username: 1 to 128 lowercase letters, digits and . _ @ + -, "
            "starting with a letter or digit"
        )
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidPerson(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return password


class PeopleStore:
    """Users in PostgreSQL. Hashing runs in a thread: Argon2 is slow on purpose, and the
    event loop serves live calls meanwhile."""

    def __init__(self, pool: AsyncConnectionPool, hasher: argon2.PasswordHasher) -> None:
        self._pool = pool
        self._hasher = hasher
        # Checked against when the username is unknown, so a wrong name costs the same
        # time as a wrong password and timing does not tell which names exist.
        self._decoy = hasher.hash("not a password of anyone")

    async def add(
        self, username: str, tenant_id: str, role: Role, password: str, display_name: str = ""
    ) -> Person:
        check_username(username)
        check_tenant_id(tenant_id)
        digest = await asyncio.to_thread(self._hasher.hash, check_password(password))
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO tenants (tenant_id) VALUES (%s) ON CONFLICT DO NOTHING", (tenant_id,)
            )
            cursor = await conn.execute(
                "INSERT INTO console_users (username, tenant_id, role, display_name, "
                "password_hash) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (username, tenant_id, role.value, display_name, digest),
            )
            if cursor.rowcount == 0:
                raise InvalidPerson(f"user {username!r} exists already")
        return Person(username, tenant_id, role, display_name)

    async def set_password(self, username: str, password: str) -> bool:
        """True if the user exists. Their browser sessions end."""
        digest = await asyncio.to_thread(self._hasher.hash, check_password(password))
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "UPDATE console_users SET password_hash = %s WHERE username = %s",
                (digest, username),
            )
            await conn.execute("DELETE FROM console_sessions WHERE username = %s", (username,))
            return cursor.rowcount == 1

    async def remove(self, username: str) -> bool:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM console_users WHERE username = %s", (username,)
            )
            return cursor.rowcount == 1

    async def list(self, tenant_id: str | None = None) -> list[Person]:
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                "SELECT username, tenant_id, role, display_name FROM console_users "
                "WHERE %(tenant)s::text IS NULL OR tenant_id = %(tenant)s "
                "ORDER BY tenant_id, username",
                {"tenant": tenant_id},
            )
            return [_person(row) for row in await cursor.fetchall()]

    async def get(self, username: str) -> Person | None:
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                "SELECT username, tenant_id, role, display_name FROM console_users "
                "WHERE username = %s",
                (username,),
            )
            row = await cursor.fetchone()
        return None if row is None else _person(row)

    async def check_password(self, username: str, password: str) -> Person | None:
        """The person if the password is theirs, else None (unknown name included)."""
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                "SELECT username, tenant_id, role, display_name, password_hash "
                "FROM console_users WHERE username = %s",
                (username,),
            )
            row = await cursor.fetchone()
        digest = self._decoy if row is None else row["password_hash"]
        try:
            await asyncio.to_thread(self._hasher.verify, digest, password)
        except argon2.exceptions.VerificationError:
            return None
        except argon2.exceptions.InvalidHashError:
            return None
        return None if row is None else _person(row)


def _person(row: dict[str, str]) -> Person:
    return Person(row["username"], row["tenant_id"], Role(row["role"]), row["display_name"])
