"""The console's HTTP surface with bad input: sign-in, CSRF, expiry, the microphone
socket and uploads answer with a clear status and message."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from callcue.console.browser_sessions import COOKIE

from .conftest import PASSWORD, Console, People

LOGIN = "/callcue.console.v1.AuthService/Login"
GET_ME = "/callcue.console.v1.AuthService/GetMe"
LIST_SESSIONS = "/callcue.console.v1.HistoryService/ListSessions"


@pytest.fixture
async def client(console: Console) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as opened:
        yield opened


async def sign_in(client: httpx.AsyncClient, username: str) -> str:
    reply = await client.post(LOGIN, json={"username": username, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["csrfToken"]
    return token


async def test_the_session_cookie_is_http_only_and_same_site_strict(
    client: httpx.AsyncClient, people: People
) -> None:
    reply = await client.post(LOGIN, json={"username": people.rep, "password": PASSWORD})
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert reply.json()["user"]["role"] == "ROLE_REP"


async def test_a_wrong_password_is_refused_with_a_message(
    client: httpx.AsyncClient, people: People
) -> None:
    reply = await client.post(LOGIN, json={"username": people.rep, "password": "not it"})
    assert reply.status_code == 401
    assert reply.json() == {"code": "unauthenticated", "message": "wrong username or password"}
    assert "set-cookie" not in reply.headers


async def test_repeated_failures_are_held_back(client: httpx.AsyncClient) -> None:
    username = f"guess-{uuid.uuid4().hex[:6]}@acme.test"
    codes = []
    for _ in range(6):
        reply = await client.post(LOGIN, json={"username": username, "password": "guess"})
        codes.append(reply.status_code)
    assert codes == [401] * 5 + [429]
    assert "try again in" in reply.json()["message"]


async def test_requests_without_the_csrf_token_are_refused(
    client: httpx.AsyncClient, people: People
) -> None:
    token = await sign_in(client, people.supervisor)
    missing = await client.post(LIST_SESSIONS, json={})
    assert missing.status_code == 403
    assert "CSRF" in missing.json()["message"]
    forged = await client.post(LIST_SESSIONS, json={}, headers={"x-csrf-token": token + "x"})
    assert forged.status_code == 403
    right = await client.post(LIST_SESSIONS, json={}, headers={"x-csrf-token": token})
    assert right.status_code == 200


async def test_without_a_sign_in_nothing_answers(client: httpx.AsyncClient) -> None:
    assert (await client.post(GET_ME, json={})).status_code == 401
    refused = await client.post(LIST_SESSIONS, json={}, headers={"x-csrf-token": "x"})
    assert refused.json()["code"] == "unauthenticated"
    client.cookies.set(COOKIE, "made-up")
    expired = await client.post(LIST_SESSIONS, json={}, headers={"x-csrf-token": "x"})
    assert expired.json() == {
        "code": "unauthenticated",
        "message": "the sign-in expired; sign in again",
    }


async def test_pages_are_the_app_with_a_content_security_policy(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/", "/wall", "/call/some-session"):
        reply = await client.get(path)
        assert reply.status_code == 200
        assert '<div id="root">' in reply.text
        assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
    assert (await client.get("/readyz")).json() == {"status": "serving"}


async def _microphone(console: Console, cookie: str, origin: str) -> websockets.ClientConnection:
    return await websockets.connect(
        f"ws://127.0.0.1:{console.port}/ws/microphone",
        additional_headers={"cookie": f"{COOKIE}={cookie}"},
        origin=websockets.Origin(origin),
    )


async def test_a_microphone_at_an_unsupported_rate_is_refused_clearly(
    client: httpx.AsyncClient, console: Console, people: People
) -> None:
    token = await sign_in(client, people.rep)
    cookie = client.cookies[COOKIE]
    async with await _microphone(console, cookie, console.url) as socket:
        await socket.send(json.dumps({"csrf_token": token, "sample_rate": 96000}))
        reply = json.loads(await socket.recv())
        assert "96000 Hz is not supported" in reply["error"]
        await socket.wait_closed()
        assert socket.close_code == 4400


async def test_a_microphone_socket_from_another_site_is_refused(
    client: httpx.AsyncClient, console: Console, people: People
) -> None:
    token = await sign_in(client, people.rep)
    cookie = client.cookies[COOKIE]
    del token
    async with await _microphone(console, cookie, "https://evil.example") as socket:
        # Refused before any config is read.
        assert "not the console's own" in json.loads(await socket.recv())["error"]
        await socket.wait_closed()
        assert socket.close_code == 4403


async def test_a_microphone_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, console: Console, people: People
) -> None:
    await sign_in(client, people.rep)
    cookie = client.cookies[COOKIE]
    async with await _microphone(console, cookie, console.url) as socket:
        await socket.send(json.dumps({"sample_rate": 16000}))
        assert "CSRF" in json.loads(await socket.recv())["error"]
        await socket.wait_closed()
        assert socket.close_code == 4401


async def test_an_oversized_upload_is_refused_with_its_limit(
    client: httpx.AsyncClient, people: People
) -> None:
    token = await sign_in(client, people.rep)
    too_big = b"\0" * (5 * 1024 * 1024)
    reply = await client.post(
        "/api/upload?filename=big.wav", content=too_big, headers={"x-csrf-token": token}
    )
    assert reply.status_code == 413
    assert "larger than the 4 MiB allowed" in reply.json()["error"]

    async def streamed() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"\0" * (1024 * 1024)

    chunked = await client.post(
        "/api/upload?filename=big.wav", content=streamed(), headers={"x-csrf-token": token}
    )
    assert chunked.status_code == 413


async def test_an_upload_without_a_sign_in_is_refused(client: httpx.AsyncClient) -> None:
    reply = await client.post("/api/upload?filename=a.wav", content=b"RIFF")
    assert reply.status_code == 401
