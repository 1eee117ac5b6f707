from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import argon2
import pytest
from psycopg_pool import AsyncConnectionPool

from callcue.console import app
from callcue.console.browser_sessions import BrowserSessions
from callcue.console.people import InvalidPerson, PeopleStore, Role
from callcue.core import api_keys, database


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    await database.migrate(database_url, api_keys.COMPONENT, api_keys.MIGRATIONS)
    await database.migrate(database_url, app.COMPONENT, app.MIGRATIONS)
    opened = await database.open_pool(database_url, max_size=2)
    yield opened
    await opened.close()


@pytest.fixture
def store(pool: AsyncConnectionPool) -> PeopleStore:
    # Cheap parameters: these tests check behaviour, not the hash's cost.
    return PeopleStore(pool, argon2.PasswordHasher(time_cost=1, memory_cost=8192))


def name() -> str:
    return f"p{uuid.uuid4().hex[:10]}@example.test"


async def test_a_password_is_kept_only_as_an_argon2id_hash(
    store: PeopleStore, pool: AsyncConnectionPool
) -> None:
    username = name()
    await store.add(username, "acme", Role.REP, "s3cret password")
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT password_hash FROM console_users WHERE username = %s", (username,)
            )
        ).fetchone()
    assert row is not None
    assert row[0].startswith("$argon2id$")
    assert "s3cret" not in row[0]


async def test_only_the_right_password_signs_in(store: PeopleStore) -> None:
    username = name()
    await store.add(username, "acme", Role.SUPERVISOR, "right password", "Pat")
    person = await store.check_password(username, "right password")
    assert person is not None
    assert (person.tenant_id, person.role, person.display_name) == ("acme", Role.SUPERVISOR, "Pat")
    assert await store.check_password(username, "wrong password") is None
    assert await store.check_password(name(), "right password") is None


async def test_bad_names_passwords_and_duplicates_are_refused(store: PeopleStore) -> None:
    with pytest.raises(InvalidPerson, match="not a username"):
        await store.add("Has Spaces", "acme", Role.REP, "long enough")
    with pytest.raises(InvalidPerson, match="at least 8"):
        await store.add(name(), "acme", Role.REP, "short")
    username = name()
    await store.add(username, "acme", Role.REP, "long enough")
    with pytest.raises(InvalidPerson, match="exists already"):
        await store.add(username, "acme", Role.ADMIN, "long enough")


async def test_a_new_password_or_removal_ends_every_sign_in(
    store: PeopleStore, pool: AsyncConnectionPool
) -> None:
    sessions = BrowserSessions(pool, timedelta(hours=1))
    username = name()
    person = await store.add(username, "acme", Role.REP, "first password")
    token, _ = await sessions.start(person)
    assert await sessions.find(token) is not None
    assert await store.set_password(username, "second password")
    assert await sessions.find(token) is None
    assert await store.check_password(username, "second password") is not None
    token, _ = await sessions.start(person)
    assert await store.remove(username)
    assert await sessions.find(token) is None
    assert await store.get(username) is None


async def test_an_expired_sign_in_is_not_found(
    store: PeopleStore, pool: AsyncConnectionPool
) -> None:
    person = await store.add(name(), "acme", Role.REP, "a password")
    token, session = await BrowserSessions(pool, timedelta(seconds=-1)).start(person)
    assert session.csrf_token
    assert await BrowserSessions(pool, timedelta(hours=1)).find(token) is None


async def test_only_the_tokens_hash_is_stored(
    store: PeopleStore, pool: AsyncConnectionPool
) -> None:
    person = await store.add(name(), "acme", Role.REP, "a password")
    token, _ = await BrowserSessions(pool, timedelta(hours=1)).start(person)
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT token_hash FROM console_sessions")).fetchall()
    assert all(token.encode() not in bytes(row[0]) for row in rows)
