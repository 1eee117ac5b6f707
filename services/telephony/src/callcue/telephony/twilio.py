"""Twilio Media Streams (`<Start><Stream>` or `<Connect><Stream>`): JSON text messages
``connected``, ``start``, ``media`` (base64 mu-law at 8 kHz, one track per message),
``dtmf``, ``mark`` and ``stop``. With both tracks, each track is one channel of the call.

Twilio cannot be told why a stream ends except by the close code, so a refused handshake
is an HTTP status and a broken stream a WebSocket close code with the reason."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from callcue.call.v1 import call_pb2
from callcue.telephony.admission import (
    Refused,
    Telephony,
    connector_for,
    refuse,
    request_url,
)
from callcue.telephony.connectors import Connector, Protocol
from callcue.telephony.flood import Flood, FloodGuard
from callcue.telephony.gateway_call import (
    GatewayCall,
    GatewayError,
    call_config,
    clean_metadata,
)
from callcue.telephony.metrics import (
    AUDIO_BYTES,
    MESSAGES,
    SILENCE_SECONDS,
)
from callcue.telephony.request_signatures import twilio_signature_valid
from callcue.telephony.stream_end import (
    CLOSE_MALFORMED,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_UNSUPPORTED,
    StreamError,
    close,
    fail,
)
from callcue.telephony.timeline import PositionError, Timeline

log = structlog.get_logger("callcue.telephony.twilio")

PROTOCOL = Protocol.TWILIO
RATE = 8000
SAMPLES_PER_MS = RATE // 1000
TRACKS = ("inbound", "outbound")


async def handle(telephony: Telephony, websocket: WebSocket) -> None:
    try:
        connector = await connector_for(telephony, websocket, PROTOCOL)
        token = telephony.connectors.secret(connector) or ""
        signature = websocket.headers.get("x-twilio-signature", "")
        url = request_url(websocket, telephony.public_url)
        if not signature or not twilio_signature_valid(token, url, signature):
            raise Refused(403, "bad signature", "X-Twilio-Signature does not sign this URL")
    except Refused as refused:
        await refuse(websocket, PROTOCOL, refused)
        return
    await websocket.accept()
    with telephony.streaming(PROTOCOL):
        await TwilioStream(telephony, websocket, connector).run()


class TwilioStream:
    def __init__(self, telephony: Telephony, websocket: WebSocket, connector: Connector) -> None:
        self._telephony = telephony
        self._websocket = websocket
        self._connector = connector
        self._guard = FloodGuard(telephony.limits)
        self._call: GatewayCall | None = None
        self._timeline: Timeline | None = None
        self._channels: dict[str, int] = {}
        self._log = log.bind(connector_id=connector.connector_id, tenant_id=connector.tenant_id)

    async def run(self) -> None:
        try:
            await self._receive()
            await self._end()
            await close(self._websocket, CLOSE_NORMAL, "stream ended")
        except (StreamError, GatewayError) as error:
            await fail(self._websocket, PROTOCOL, self._log, error)
        finally:
            if self._call is not None:
                await self._call.aclose()

    async def _receive(self) -> None:
        limit = self._telephony.limits.max_message_bytes
        while True:
            try:
                message = await self._websocket.receive()
            except WebSocketDisconnect:
                return
            if message["type"] == "websocket.disconnect":
                return  # Twilio hung up without "stop": keep what was said
            MESSAGES.labels(PROTOCOL.value).inc()
            try:
                self._guard.message()
            except Flood as flood:
                raise StreamError(CLOSE_POLICY, "flood", str(flood)) from None
            text = message.get("text")
            if text is None:
                raise StreamError(CLOSE_UNSUPPORTED, "binary", "Media Streams send text messages")
            if len(text) > limit:
                raise StreamError(CLOSE_POLICY, "too large", f"a message over {limit} bytes")
            try:
                event = json.loads(text)
            except json.JSONDecodeError:
                raise StreamError(CLOSE_MALFORMED, "not json", "a message is not JSON") from None
            if not isinstance(event, dict):
                raise StreamError(CLOSE_MALFORMED, "not an object", "a message is not an object")
            kind = event.get("event")
            if kind == "start":
                await self._start(event)
            elif kind == "media":
                await self._media(event)
            elif kind == "stop":
                return
            elif kind == "dtmf":
                # The digit itself may be part of a card number: counted, never logged.
                self._log.info("dtmf received")
            elif kind not in ("connected", "mark"):
                raise StreamError(CLOSE_MALFORMED, "unknown event", f"unknown event {kind!r}")

    async def _start(self, event: dict[str, Any]) -> None:
        if self._call is not None:
            raise StreamError(CLOSE_MALFORMED, "second start", "a second start message")
        start = event.get("start")
        if not isinstance(start, dict):
            raise StreamError(CLOSE_MALFORMED, "bad start", "start has no start object")
        media = start.get("mediaFormat") or {}
        if (
            not isinstance(media, dict)
            or media.get("encoding") != "audio/x-mulaw"
            or int(media.get("sampleRate", 0) or 0) != RATE
            or int(media.get("channels", 1) or 1) != 1
        ):
            raise StreamError(
                CLOSE_UNSUPPORTED, "media format", "only audio/x-mulaw, 8000 Hz, mono tracks"
            )
        tracks = start.get("tracks") or ["inbound"]
        if not isinstance(tracks, list) or not set(tracks) <= set(TRACKS) or not tracks:
            raise StreamError(CLOSE_MALFORMED, "bad tracks", f"tracks must be among {TRACKS}")
        account = str(start.get("accountSid", ""))
        if self._connector.account_id and account != self._connector.account_id:
            raise StreamError(CLOSE_POLICY, "wrong account", "the stream is of another account")
        ordered = [track for track in TRACKS if track in tracks]
        self._channels = {track: index for index, track in enumerate(ordered)}
        rep = self._connector.rep_channel
        roles = [
            call_pb2.SPEAKER_ROLE_REP if track == rep else call_pb2.SPEAKER_ROLE_PROSPECT
            for track in ordered
        ]
        custom = start.get("customParameters") or {}
        if not isinstance(custom, dict):
            custom = {}
        call_sid = str(start.get("callSid", ""))
        metadata = clean_metadata(
            {
                **{k: v for k, v in custom.items() if k not in ("playbook", "title")},
                "source": "twilio",
                "connector_id": self._connector.connector_id,
                "call_sid": call_sid,
                "stream_sid": str(start.get("streamSid", event.get("streamSid", ""))),
                "account_sid": account,
            }
        )
        playbooks = self._connector.playbook_ids
        if isinstance(custom.get("playbook"), str) and custom["playbook"]:
            playbooks = (custom["playbook"],)
        title = str(custom.get("title") or f"Twilio call {call_sid}".strip())
        config = call_config(
            call_pb2.AudioFormat(
                encoding=call_pb2.AUDIO_ENCODING_MULAW,
                sample_rate_hertz=RATE,
                channel_count=len(ordered),
            ),
            roles,
            title,
            metadata,
            playbooks,
        )
        limits = self._telephony.limits
        self._timeline = Timeline(
            call_pb2.AUDIO_ENCODING_MULAW,
            len(ordered),
            window_samples=int(limits.reorder_window_seconds * RATE),
            max_gap_samples=int(limits.max_silence_fill_seconds * RATE),
        )
        auth = await self._telephony.keys.metadata(self._connector.tenant_id)
        self._call = GatewayCall(self._telephony.gateway, config, auth)
        session_id = await self._call.start()
        self._log = self._log.bind(session_id=session_id, call_sid=call_sid)
        self._log.info("call started", tracks=ordered)

    async def _media(self, event: dict[str, Any]) -> None:
        if self._call is None or self._timeline is None:
            raise StreamError(CLOSE_MALFORMED, "media before start", "media before start")
        media = event.get("media")
        if not isinstance(media, dict):
            raise StreamError(CLOSE_MALFORMED, "bad media", "media has no media object")
        track = media.get("track", "inbound")
        if track not in self._channels:
            raise StreamError(
                CLOSE_MALFORMED, "bad track", f"media of a track not started: {track!r}"
            )
        try:
            timestamp = int(media.get("timestamp", 0))
            payload = base64.b64decode(str(media.get("payload", "")), validate=True)
        except (ValueError, binascii.Error):
            raise StreamError(
                CLOSE_MALFORMED, "bad media", "a media message is malformed"
            ) from None
        AUDIO_BYTES.labels(PROTOCOL.value).inc(len(payload))
        try:
            self._guard.audio(len(payload) / RATE / len(self._channels))
            self._timeline.put(self._channels[track], timestamp * SAMPLES_PER_MS, payload)
        except Flood as flood:
            raise StreamError(CLOSE_POLICY, "flood", str(flood)) from None
        except PositionError as error:
            raise StreamError(CLOSE_MALFORMED, "bad timestamp", str(error)) from None
        await self._flush(final=False)

    async def _flush(self, *, final: bool) -> None:
        assert self._call is not None and self._timeline is not None
        filled = self._timeline.filled_samples
        audio = self._timeline.take(final=final)
        if audio:
            await self._call.send(audio)
        added = self._timeline.filled_samples - filled
        if added:
            SILENCE_SECONDS.labels(PROTOCOL.value).inc(added / RATE)

    async def _end(self) -> None:
        if self._call is None:
            return
        await self._flush(final=True)
        assert self._timeline is not None
        await self._call.finish()
        self._log.info(
            "call ended",
            audio_seconds=round(self._timeline.emitted / RATE, 2),
            late_seconds=round(self._timeline.late_samples / RATE, 3),
            filled_seconds=round(self._timeline.filled_samples / RATE, 3),
        )
