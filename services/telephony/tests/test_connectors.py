"""Connectors in PostgreSQL and `callcue connectors`: secrets sealed or hashed, never in
clear."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import psycopg
import pytest

from callcue.telephony import connector_admin
from callcue.telephony.connectors import Protocol
from callcue.telephony.sealing import SealingError, SecretBox, new_key

from .conftest import Service


async def test_no_secret_or_key_is_stored_in_clear(service: Service, database_url: str) -> None:
    store = service.telephony.connectors
    twilio, _ = await store.create("acme", Protocol.TWILIO, auth_token="tok-secret-123456")
    hook, credentials = await store.create("acme", Protocol.AUDIOHOOK)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute("SELECT * FROM telephony_connectors")).fetchall()
    dump = repr(rows).encode()
    for secret in ("tok-secret-123456", credentials.api_key, credentials.client_secret):
        assert secret.encode() not in dump
    assert store.secret(twilio) == "tok-secret-123456"
    assert store.secret(hook) == credentials.client_secret
    assert hook.key_matches(credentials.api_key) and not hook.key_matches("cck_other")


async def test_bad_connector_settings_are_refused(service: Service) -> None:
    store = service.telephony.connectors
    with pytest.raises(ValueError, match="rep channel"):
        await store.create("acme", Protocol.AUDIOHOOK, rep_channel="outbound")
    with pytest.raises(ValueError, match="auth token"):
        await store.create("acme", Protocol.TWILIO)


def test_a_wrong_secrets_key_is_a_clear_error() -> None:
    box = SecretBox(new_key())
    with pytest.raises(SealingError, match="does not open"):
        SecretBox(new_key()).open(box.seal("x"))
    with pytest.raises(SealingError, match="32 url-safe"):
        SecretBox("short")


def _cli(args: list[str], env: dict[str, str], stdin: str = "") -> tuple[int, str, str]:
    # A process of its own, as an operator runs it: the tool sets up its own logging.
    done = subprocess.run(
        [sys.executable, "-m", "callcue.telephony.connector_admin", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


async def test_add_ls_and_rm(service: Service, database_url: str) -> None:
    env = {"DATABASE_URL": database_url, connector_admin.SECRETS_KEY: service.secrets_key}
    code, out, _ = _cli(
        ["add", "cli-tenant", "twilio", "--account", "AC9", "--playbook", "sales"],
        env,
        stdin="twilio-token-from-stdin\n",
    )
    assert code == 0 and "twilio-token-from-stdin" not in out
    twilio_id = re.search(r"connector (tc_\w+)", out).group(1)  # type: ignore[union-attr]
    assert f"/twilio/{twilio_id}" in out
    code, out, _ = _cli(["add", "cli-tenant", "audiohook", "--name", "Genesys EU"], env)
    assert code == 0 and "api key" in out and "client secret" in out
    code, out, _ = _cli(["ls", "cli-tenant"], env)
    assert twilio_id in out and "Genesys EU" in out and "account=AC9" in out
    assert "twilio-token-from-stdin" not in out and "cck_" not in out
    code, out, _ = _cli(["rm", twilio_id], env)
    assert code == 0
    code, _, err = _cli(["rm", twilio_id], env)
    assert code == 1 and "no connector" in err
    code, _, err = _cli(["add", "cli-tenant", "audiohook", "--rep-channel", "left"], env)
    assert code == 2 and "rep channel" in err
    code, _, err = _cli(["ls"], {**env, connector_admin.SECRETS_KEY: ""})
    assert code == 2 and connector_admin.SECRETS_KEY in err
    assert await service.telephony.connectors.get(twilio_id) is None
