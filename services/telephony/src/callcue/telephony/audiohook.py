"""Genesys Cloud AudioHook (protocol version 2, the Monitor feature).

The handshake carries the organization, session and correlation ids, the API key and an
HTTP message signature by the client secret; a bad one is refused with 401 before the
WebSocket opens. Then JSON text messages, each with ``seq`` counting up from 1 (and the
last ``serverseq`` seen, and the stream ``position``): ``open`` (answered ``opened`` with
the media chosen), ``ping`` (``pong``), ``paused`` / ``resumed`` / ``discarded`` (the
audio not sent is filled with silence, so word times stay on the call's clock),
``update``, ``error``, ``close`` (answered ``closed`` once the last finals are out); and
binary frames of PCMU (or L16), the channels interleaved in the order ``open`` gave.
A broken rule is answered with ``disconnect`` (reason ``error``) and the socket closed.

An ``open`` that names the session it continues (``continuedSessions``, or the same
conversation while its call is held after a lost connection) continues that call."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from callcue.call.v1 import call_pb2
from callcue.telephony.admission import Refused, Telephony, connector_for, refuse
from callcue.telephony.connectors import Connector, Protocol
from callcue.telephony.flood import Flood, FloodGuard
from callcue.telephony.gateway_call import (
    GatewayCall,
    GatewayError,
    call_config,
    clean_metadata,
)
from callcue.telephony.held_calls import HeldCall
from callcue.telephony.metrics import (
    AUDIO_BYTES,
    MESSAGES,
    PROTOCOL_ERRORS,
    SILENCE_SECONDS,
)
from callcue.telephony.request_signatures import SignatureError, verify_audiohook
from callcue.telephony.stream_end import CLOSE_NORMAL, close
from callcue.telephony.timeline import silence

log = structlog.get_logger("callcue.telephony.audiohook")

PROTOCOL = Protocol.AUDIOHOOK
RATE = 8000
MAX_TEXT = 65535
FORMATS = {"PCMU": call_pb2.AUDIO_ENCODING_MULAW, "L16": call_pb2.AUDIO_ENCODING_LINEAR16}
CHANNELS = ("external", "internal")
_DURATION = re.compile(r"^PT(\d+(?:\.\d+)?)S$")
CLIENT_TYPES = ("open", "close", "ping", "paused", "resumed", "discarded", "update", "error")


class ProtocolViolation(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def seconds(value: object) -> float:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ProtocolViolation("bad duration", f"{value!r} is not an ISO 8601 duration PTnS")
    return float(match.group(1))


def duration(value: float) -> str:
    return f"PT{value:.3f}".rstrip("0").rstrip(".") + "S"


async def handle(telephony: Telephony, websocket: WebSocket) -> None:
    headers = {name.lower(): value for name, value in websocket.headers.items()}
    try:
        connector = await connector_for(telephony, websocket, PROTOCOL)
        session_id = headers.get("audiohook-session-id", "")
        if not _is_uuid(session_id) or not _is_uuid(headers.get("audiohook-organization-id", "")):
            raise Refused(
                400, "bad headers", "Audiohook-Session-Id and -Organization-Id are required"
            )
        if not connector.key_matches(headers.get("x-api-key", "")):
            raise Refused(401, "bad api key", "the X-API-KEY is not this connector's")
        organization = headers["audiohook-organization-id"]
        if connector.account_id and organization != connector.account_id:
            raise Refused(401, "wrong organization", "the organization is not this connector's")
        secret = telephony.connectors.secret(connector) or ""
        target = websocket.url.path + (f"?{websocket.url.query}" if websocket.url.query else "")
        try:
            verify_audiohook(headers, target, headers.get("host", ""), secret, telephony.nonces)
        except SignatureError as error:
            raise Refused(401, "bad signature", str(error)) from None
    except Refused as refused:
        await refuse(websocket, PROTOCOL, refused)
        return
    await websocket.accept()
    with telephony.streaming(PROTOCOL):
        await AudioHookSession(telephony, websocket, connector, session_id, headers).run()


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class AudioHookSession:
    def __init__(
        self,
        telephony: Telephony,
        websocket: WebSocket,
        connector: Connector,
        session_id: str,
        headers: dict[str, str],
    ) -> None:
        self._telephony = telephony
        self._websocket = websocket
        self._connector = connector
        self._id = session_id
        self._headers = headers
        self._guard = FloodGuard(telephony.limits)
        self._seq = 0
        self._clientseq = 0
        self._state = "preparing"
        self._call: GatewayCall | None = None
        self._format = call_pb2.AUDIO_ENCODING_MULAW
        self._channels = 2
        self._frame = 2
        # Samples of the call written to the gateway, and of this session's stream.
        self._written = 0
        self._position = 0.0
        self._keys: tuple[str, ...] = ()
        self._closed_cleanly = False
        self._log = log.bind(
            connector_id=connector.connector_id,
            tenant_id=connector.tenant_id,
            audiohook_session_id=session_id,
            correlation_id=headers.get("audiohook-correlation-id", ""),
        )

    async def run(self) -> None:
        try:
            await self._receive()
        except ProtocolViolation as violation:
            PROTOCOL_ERRORS.labels(PROTOCOL.value, violation.reason).inc()
            self._log.warning("session ended for a protocol error", reason=violation.reason)
            await self._disconnect("error", str(violation))
        except GatewayError as error:
            self._log.warning("the gateway ended the call", code=error.code.name)
            await self._disconnect("error", f"callcue could not take the call: {error.details}")
        finally:
            await self._after()

    async def _after(self) -> None:
        call, self._call = self._call, None
        if call is None:
            return
        if self._closed_cleanly or self._state == "failed":
            await call.aclose()
            return
        # Lost without a close: the conversation may reconnect and continue the call.
        self._telephony.held.hold(HeldCall(call, self._keys, self._written))

    async def _receive(self) -> None:
        while True:
            try:
                message = await self._websocket.receive()
            except WebSocketDisconnect:
                return
            if message["type"] == "websocket.disconnect":
                return
            MESSAGES.labels(PROTOCOL.value).inc()
            try:
                self._guard.message()
            except Flood as flood:
                raise ProtocolViolation("flood", str(flood)) from None
            data = message.get("bytes")
            if data is not None:
                await self._audio(data)
                continue
            text = message.get("text") or ""
            if len(text) > MAX_TEXT:
                raise ProtocolViolation("too large", "a text message over 64 KiB")
            if await self._text(text):
                return

    async def _text(self, text: str) -> bool:
        """Handles one message; True once the session is closed."""
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            raise ProtocolViolation("not json", "a text message is not JSON") from None
        if not isinstance(message, dict) or message.get("version") != "2":
            raise ProtocolViolation("bad message", "not a version 2 AudioHook message")
        kind, seq = message.get("type"), message.get("seq")
        if not isinstance(seq, int) or seq != self._clientseq + 1:
            raise ProtocolViolation("bad seq", f"seq {seq!r} does not follow {self._clientseq}")
        self._clientseq = seq
        serverseq = message.get("serverseq", 0)
        if not isinstance(serverseq, int) or serverseq > self._seq:
            raise ProtocolViolation("bad serverseq", f"serverseq {serverseq!r} was never sent")
        if message.get("id") != self._id:
            raise ProtocolViolation("bad id", "the message's id is not this session's")
        parameters = message.get("parameters", {})
        if not isinstance(parameters, dict) or kind not in CLIENT_TYPES:
            raise ProtocolViolation("bad message", f"{kind!r} is not a client message")
        if "position" in message:
            position = seconds(message["position"])
            if position + 0.001 < self._position:
                raise ProtocolViolation("bad position", "the stream position went back")
            self._position = position
        if kind == "open":
            await self._open(parameters)
        elif kind == "ping":
            await self._send("pong", {})
        elif kind == "paused":
            if self._state == "active":
                self._state = "paused"
            if self._call is not None:
                await self._call.flush()  # the words before the hold need not wait for it
        elif kind in ("resumed", "discarded"):
            if kind == "resumed" and self._state == "paused":
                self._state = "active"
            await self._fill(seconds(parameters.get("discarded", "PT0S")))
        elif kind == "update":
            self._log.info("update received", language=str(parameters.get("language", "")))
        elif kind == "error":
            self._log.warning(
                "the client reported an error",
                code=parameters.get("code"),
                message=str(parameters.get("message", ""))[:200],
            )
        elif kind == "close":
            await self._close(str(parameters.get("reason", "")))
            return True
        return False

    async def _open(self, parameters: dict[str, Any]) -> None:
        if self._state != "preparing":
            raise ProtocolViolation("second open", "open after the session was opened")
        media = self._choose_media(parameters.get("media"))
        conversation = str(parameters.get("conversationId", ""))
        continued = parameters.get("continuedSessions") or []
        previous = [str(item.get("id", "")) for item in continued if isinstance(item, dict)]
        self._keys = (self._id, f"conversation:{self._connector.tenant_id}:{conversation}")
        held = self._telephony.held.take([*previous, self._keys[1]])
        if held is not None:
            self._call = held.call
            self._written = held.position_samples
            # What was said while the connection was down is lost; its time is not.
            gap = time.monotonic() - held.held_at
            self._log = self._log.bind(session_id=held.call.session_id)
            self._log.info("reconnect continues the call", gap_seconds=round(gap, 2))
            await self._fill(gap)
        else:
            self._call = await self._start_call(parameters, media)
        self._state = "active"
        await self._send("opened", {"media": [media], "startPaused": False})

    def _choose_media(self, offered: object) -> dict[str, Any]:
        if not isinstance(offered, list):
            raise ProtocolViolation("bad open", "open offers no media")
        usable = [
            item
            for item in offered
            if isinstance(item, dict)
            and item.get("type") == "audio"
            and item.get("format") in FORMATS
            and item.get("rate") == RATE
            and isinstance(item.get("channels"), list)
            and 1 <= len(item["channels"]) <= 2
            and set(item["channels"]) <= set(CHANNELS)
        ]
        if not usable:
            raise ProtocolViolation("media", "none of the media offered is PCMU or L16 at 8000 Hz")
        # Both parties, each on a channel, where offered: the rep's words are told apart.
        usable.sort(key=lambda item: (-len(item["channels"]), item["format"] != "PCMU"))
        chosen = usable[0]
        self._format = FORMATS[chosen["format"]]
        self._channels = len(chosen["channels"])
        self._frame = self._channels * (2 if chosen["format"] == "L16" else 1)
        return {
            "type": "audio",
            "format": chosen["format"],
            "channels": chosen["channels"],
            "rate": RATE,
        }

    async def _start_call(self, parameters: dict[str, Any], media: dict[str, Any]) -> GatewayCall:
        rep = self._connector.rep_channel
        roles = [
            call_pb2.SPEAKER_ROLE_REP if channel == rep else call_pb2.SPEAKER_ROLE_PROSPECT
            for channel in media["channels"]
        ]
        participant = parameters.get("participant") or {}
        if not isinstance(participant, dict):
            participant = {}
        custom = parameters.get("customConfig") or {}
        if not isinstance(custom, dict):
            custom = {}
        conversation = str(parameters.get("conversationId", ""))
        metadata = clean_metadata(
            {
                **{k: v for k, v in custom.items() if k not in ("playbook", "title")},
                "source": "genesys audiohook",
                "connector_id": self._connector.connector_id,
                "conversation_id": conversation,
                "organization_id": str(parameters.get("organizationId", "")),
                "audiohook_session_id": self._id,
                "from": str(participant.get("ani", "")),
                "from_name": str(participant.get("aniName", "")),
                "to": str(participant.get("dnis", "")),
            }
        )
        playbooks = self._connector.playbook_ids
        if isinstance(custom.get("playbook"), str) and custom["playbook"]:
            playbooks = (custom["playbook"],)
        title = str(custom.get("title") or f"Genesys conversation {conversation}")
        config = call_config(
            call_pb2.AudioFormat(
                encoding=self._format, sample_rate_hertz=RATE, channel_count=self._channels
            ),
            roles,
            title,
            metadata,
            playbooks,
        )
        auth = await self._telephony.keys.metadata(self._connector.tenant_id)
        call = GatewayCall(self._telephony.gateway, config, auth)
        session_id = await call.start()
        self._log = self._log.bind(session_id=session_id, conversation_id=conversation)
        self._log.info("call started", media=media)
        return call

    async def _audio(self, data: bytes) -> None:
        if self._state != "active" or self._call is None:
            raise ProtocolViolation("audio out of state", f"audio received while {self._state}")
        if len(data) % self._frame or len(data) > self._telephony.limits.max_message_bytes:
            raise ProtocolViolation(
                "bad frame", "an audio frame is not whole samples of every channel"
            )
        AUDIO_BYTES.labels(PROTOCOL.value).inc(len(data))
        samples = len(data) // self._frame
        try:
            self._guard.audio(samples / RATE)
        except Flood as flood:
            raise ProtocolViolation("flood", str(flood)) from None
        await self._call.send(data)
        self._written += samples

    async def _fill(self, gap_seconds: float) -> None:
        cap = self._telephony.limits.max_silence_fill_seconds
        if gap_seconds <= 0 or self._call is None:
            return
        if gap_seconds > cap:
            raise ProtocolViolation("bad duration", f"{gap_seconds:.0f} s of discarded audio")
        samples = round(gap_seconds * RATE)
        await self._call.send(silence(self._format, self._channels, samples))
        self._written += samples
        SILENCE_SECONDS.labels(PROTOCOL.value).inc(gap_seconds)

    async def _close(self, reason: str) -> None:
        self._state = "closing"
        if self._call is not None:
            await self._call.finish()
            self._log.info(
                "call ended", reason=reason, audio_seconds=round(self._written / RATE, 2)
            )
        self._closed_cleanly = True
        await self._send("closed", {})
        try:
            await asyncio.wait_for(self._until_disconnect(), timeout=5)
        except TimeoutError:
            pass
        await close(self._websocket, CLOSE_NORMAL, "closed")

    async def _until_disconnect(self) -> None:
        while (await self._websocket.receive())["type"] != "websocket.disconnect":
            pass

    async def _disconnect(self, reason: str, info: str) -> None:
        """The server's end of a session: ``disconnect``, then the client's close
        transaction (or, if it sends none, the socket closed)."""
        self._state = "failed"
        try:
            await self._send("disconnect", {"reason": reason, "info": info[:500]})
            await asyncio.wait_for(self._await_close(), timeout=5)
        except (TimeoutError, WebSocketDisconnect, RuntimeError):
            pass
        await close(self._websocket, CLOSE_NORMAL, "disconnected")

    async def _await_close(self) -> None:
        while True:
            message = await self._websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text and '"close"' in text:
                try:
                    seq = json.loads(text).get("seq", self._clientseq + 1)
                except (json.JSONDecodeError, AttributeError):
                    seq = self._clientseq + 1
                self._clientseq = seq if isinstance(seq, int) else self._clientseq
                await self._send("closed", {})
                return

    async def _send(self, kind: str, parameters: dict[str, Any]) -> None:
        self._seq += 1
        await self._websocket.send_text(
            json.dumps(
                {
                    "version": "2",
                    "type": kind,
                    "seq": self._seq,
                    "clientseq": self._clientseq,
                    "id": self._id,
                    "parameters": parameters,
                }
            )
        )
