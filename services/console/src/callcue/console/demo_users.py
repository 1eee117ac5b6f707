"""The demo admin and rep of `make run`: made once per state directory, with random
passwords kept in a file only its owner reads, and printed so a person can sign in."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import argon2
from psycopg_pool import AsyncConnectionPool

from callcue.console.people import PeopleStore, Role
from callcue.core import api_keys, database

DEMO = (("admin", Role.ADMIN, "Demo Admin"), ("rep", Role.REP, "Demo Rep"))


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    password: str


async def ensure_demo_users(database_url: str, kept: Path) -> list[Login]:
    """Called once the console is serving: it has applied its migrations already."""
    pool = await database.open_pool(database_url, max_size=1)
    try:
        return await _ensure(pool, kept)
    finally:
        await pool.close()


async def _ensure(pool: AsyncConnectionPool, kept: Path) -> list[Login]:
    people = PeopleStore(pool, argon2.PasswordHasher())
    logins = _read(kept)
    for username, role, name in DEMO:
        login = logins.get(username)
        if login is None:
            login = Login(username, role.value, secrets.token_urlsafe(9))
            logins[username] = login
        if await people.get(username) is None:
            await people.add(username, api_keys.DEFAULT_TENANT, role, login.password, name)
        elif not await people.check_password(username, login.password):
            await people.set_password(username, login.password)
    _write(kept, list(logins.values()))
    return list(logins.values())


def _write(kept: Path, logins: list[Login]) -> None:
    kept.touch(mode=0o600)
    os.chmod(kept, 0o600)  # before the passwords are in it
    kept.write_text(json.dumps([asdict(login) for login in logins], indent=2) + "\n")


def _read(kept: Path) -> dict[str, Login]:
    try:
        return {item["username"]: Login(**item) for item in json.loads(kept.read_text())}
    except (OSError, ValueError, TypeError, KeyError):
        return {}
