"""Microphone audio from a browser, over a WebSocket, streamed to the gateway as a call.

Browsers cannot open a client-streaming RPC, so audio takes a WebSocket: the first text
frame is the config (the CSRF token, the sample rate, the title), then binary frames of
16-bit little-endian mono PCM, then ``{"end": true}`` (or the socket closes). The server
answers the config with ``{"session_id": ...}`` once the gateway has started the call;
the page follows the call's events with LiveService.WatchCall like any other call.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import grpc
import structlog
from connectrpc.errors import ConnectError
from starlette.websockets import WebSocket, WebSocketDisconnect

from callcue.call.v1 import call_pb2
from callcue.console.access import REP_METADATA, Gatekeeper
from callcue.console.backend import Backend
from callcue.console.browser_sessions import CSRF_HEADER
from callcue.console.metrics import MICROPHONE_CALLS
from callcue.console.people import Role
from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb

log = structlog.get_logger("callcue.console.microphone")

MIN_RATE, MAX_RATE = 8000, 48000
MAX_FRAME_BYTES = 64 * 1024
MAX_TITLE = 200
# WebSocket close codes of this protocol (4000-4999 are the application's).
CLOSE_BAD_CONFIG = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_BACKEND = 4502


class BadConfig(ValueError):
    pass


def parse_config(text: str) -> dict[str, Any]:
    try:
        config = json.loads(text)
    except json.JSONDecodeError:
        raise BadConfig("the first message must be the JSON config") from None
    if not isinstance(config, dict):
        raise BadConfig("the config must be a JSON object")
    rate = config.get("sample_rate")
    if not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        raise BadConfig(
            f"the microphone's sample rate {rate} Hz is not supported: "
            f"{MIN_RATE} to {MAX_RATE} Hz only"
        )
    title = config.get("title", "")
    if not isinstance(title, str) or len(title) > MAX_TITLE:
        raise BadConfig(f"the title must be text of at most {MAX_TITLE} characters")
    playbooks = config.get("playbook_ids", [])
    if not isinstance(playbooks, list) or not all(isinstance(p, str) for p in playbooks):
        raise BadConfig("playbook_ids must be a list of playbook ids")
    return config


def same_origin(websocket: WebSocket) -> bool:
    """Browsers send the page's origin; a page of another site must not drive a call with
    the rep's cookie (cross-site WebSocket hijacking)."""
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    return origin is not None and host is not None and urlsplit(origin).netloc == host


class MicrophoneCalls:
    def __init__(self, backend: Backend, gatekeeper: Gatekeeper) -> None:
        self._backend = backend
        self._gatekeeper = gatekeeper

    async def handle(self, websocket: WebSocket) -> None:
        await websocket.accept()
        if not same_origin(websocket):
            await _close(websocket, CLOSE_FORBIDDEN, "the page is not the console's own")
            return
        try:
            first = await asyncio.wait_for(websocket.receive_text(), timeout=10)
        except (TimeoutError, WebSocketDisconnect, KeyError):
            await _close(websocket, CLOSE_BAD_CONFIG, "send the config first, as text")
            return
        try:
            config = parse_config(first)
        except BadConfig as error:
            await _close(websocket, CLOSE_BAD_CONFIG, str(error))
            return
        headers = {**websocket.headers, CSRF_HEADER: str(config.get("csrf_token", ""))}
        try:
            person = await self._gatekeeper.person(headers, at_least=Role.REP)
        except ConnectError as error:
            await _close(websocket, CLOSE_UNAUTHENTICATED, error.message)
            return
        auth = await self._backend.keys.metadata(person.tenant_id)
        call_config = gateway_pb.CallConfig(
            audio_format=call_pb2.AudioFormat(
                encoding=call_pb2.AUDIO_ENCODING_LINEAR16,
                sample_rate_hertz=config["sample_rate"],
                channel_count=1,
            ),
            interim_results=True,
            title=config.get("title") or f"{person.display_name or person.username} (browser)",
            metadata={REP_METADATA: person.username, "source": "console microphone"},
            playbook_ids=config.get("playbook_ids", []),
        )
        await self._stream(websocket, call_config, auth, person.username)

    async def _stream(
        self,
        websocket: WebSocket,
        config: gateway_pb.CallConfig,
        auth: Any,
        username: str,
    ) -> None:
        audio: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=256)

        async def requests() -> AsyncIterator[gateway_pb.StreamCallRequest]:
            yield gateway_pb.StreamCallRequest(config=config)
            while (chunk := await audio.get()) is not None:
                yield gateway_pb.StreamCallRequest(audio=chunk)

        call = self._backend.gateway.StreamCall(requests(), metadata=auth)
        log_ = log.bind(username=username)
        MICROPHONE_CALLS.inc()
        try:
            first = await call.read()
            if not isinstance(first, gateway_pb.StreamCallResponse):
                await _close(websocket, CLOSE_BACKEND, "the gateway ended the call at once")
                return
            session_id = first.event.session_id
            log_ = log_.bind(session_id=session_id)
            log_.info("microphone call started", sample_rate=config.audio_format.sample_rate_hertz)
            await websocket.send_text(json.dumps({"session_id": session_id}))
            # The call's events reach the page through WatchCall; they are read here only
            # so the gateway is never held up by a full stream.
            drain = asyncio.create_task(_drain(call))
            try:
                await _receive_audio(websocket, audio)
            finally:
                await audio.put(None)
                await drain
            log_.info("microphone call ended")
            await _close(websocket, 1000, "call ended")
        except grpc.aio.AioRpcError as error:
            log_.warning("microphone call failed", code=error.code().name)
            await _close(websocket, CLOSE_BACKEND, error.details() or error.code().name)
        finally:
            MICROPHONE_CALLS.dec()
            call.cancel()


async def _receive_audio(websocket: WebSocket, audio: asyncio.Queue[bytes | None]) -> None:
    while True:
        try:
            message = await websocket.receive()
        except WebSocketDisconnect:
            return
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is not None:
            if len(data) > MAX_FRAME_BYTES or len(data) % 2:
                raise_bad = (
                    f"audio frames must be whole 16-bit samples, at most {MAX_FRAME_BYTES} bytes"
                )
                await _close(websocket, CLOSE_BAD_CONFIG, raise_bad)
                return
            await audio.put(data)
            continue
        text = message.get("text")
        if text is not None and _is_end(text):
            return


def _is_end(text: str) -> bool:
    try:
        return bool(json.loads(text) == {"end": True})
    except json.JSONDecodeError:
        return False


async def _drain(call: Any) -> None:
    while await call.read() is not grpc.aio.EOF:
        pass


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    try:
        if code != 1000:
            await websocket.send_text(json.dumps({"error": reason}))
        await websocket.close(code, reason[:120])
    except (RuntimeError, WebSocketDisconnect):
        pass  # the browser went first
