"""FreeSWITCH mod_audio_stream (and raw-PCM forks like it): ``uuid_audio_stream <uuid>
start <url> <mono|mixed|stereo> <8k|16k> <metadata>`` opens a WebSocket, sends the
metadata as the first text message, then binary frames of 16-bit little-endian PCM
(stereo: the channel's own party on the left, the other on the right).

The module sends no format, so the URL says it: ``?mix=stereo&rate=8000`` (the defaults).
The connector's key comes as ``Authorization: Bearer`` (mod_audio_stream's
STREAM_EXTRA_HEADERS channel variable)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from callcue.call.v1 import call_pb2
from callcue.telephony.admission import Refused, Telephony, connector_for, refuse
from callcue.telephony.connectors import Connector, Protocol
from callcue.telephony.flood import Flood, FloodGuard
from callcue.telephony.gateway_call import GatewayCall, GatewayError, call_config, clean_metadata
from callcue.telephony.metrics import AUDIO_BYTES, MESSAGES
from callcue.telephony.stream_end import (
    CLOSE_MALFORMED,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    StreamError,
    close,
    fail,
)

log = structlog.get_logger("callcue.telephony.freeswitch")

PROTOCOL = Protocol.FREESWITCH
RATES = {"8k": 8000, "8000": 8000, "16k": 16000, "16000": 16000}
MIXES = ("stereo", "mono", "mixed")
METADATA_WAIT_SECONDS = 10


async def handle(telephony: Telephony, websocket: WebSocket) -> None:
    try:
        connector = await connector_for(telephony, websocket, PROTOCOL)
        scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not connector.key_matches(token.strip()):
            raise Refused(401, "bad key", "send the connector's key as Authorization: Bearer")
        default_mix = "mixed" if connector.rep_channel == "mixed" else "stereo"
        mix = websocket.query_params.get("mix", default_mix)
        rate = RATES.get(websocket.query_params.get("rate", "8000"))
        if mix not in MIXES or rate is None:
            raise Refused(400, "bad format", "mix is mono, mixed or stereo; rate 8000 or 16000")
    except Refused as refused:
        await refuse(websocket, PROTOCOL, refused)
        return
    await websocket.accept()
    with telephony.streaming(PROTOCOL):
        await FreeSwitchStream(telephony, websocket, connector, mix, rate).run()


def roles_for(mix: str, rep_channel: str) -> list[call_pb2.SpeakerRole.ValueType]:
    rep, prospect = call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT
    if mix == "stereo":
        return [rep, prospect] if rep_channel == "left" else [prospect, rep]
    if mix == "mixed" or rep_channel == "mixed":
        return [call_pb2.SPEAKER_ROLE_MIXED]
    # "mono" is the channel's own party: the left side of a stereo stream.
    return [rep if rep_channel == "left" else prospect]


class FreeSwitchStream:
    def __init__(
        self,
        telephony: Telephony,
        websocket: WebSocket,
        connector: Connector,
        mix: str,
        rate: int,
    ) -> None:
        self._telephony = telephony
        self._websocket = websocket
        self._connector = connector
        self._mix = mix
        self._rate = rate
        self._channels = 2 if mix == "stereo" else 1
        self._guard = FloodGuard(telephony.limits)
        self._call: GatewayCall | None = None
        self._seconds = 0.0
        self._log = log.bind(connector_id=connector.connector_id, tenant_id=connector.tenant_id)

    async def run(self) -> None:
        try:
            first = await self._first_message()
            await self._start(first.get("text"))
            if first.get("bytes") is not None:
                await self._audio(first["bytes"])
            await self._receive()
            assert self._call is not None
            await self._call.finish()
            self._log.info("call ended", audio_seconds=round(self._seconds, 2))
            await close(self._websocket, CLOSE_NORMAL, "call ended")
        except (StreamError, GatewayError) as error:
            await fail(self._websocket, PROTOCOL, self._log, error)
        finally:
            if self._call is not None:
                await self._call.aclose()

    async def _first_message(self) -> dict[str, Any]:
        try:
            message = await asyncio.wait_for(self._websocket.receive(), METADATA_WAIT_SECONDS)
        except TimeoutError:
            raise StreamError(CLOSE_POLICY, "silent", "nothing sent after connecting") from None
        if message["type"] == "websocket.disconnect":
            raise StreamError(CLOSE_NORMAL, "hung up", "closed before any audio")
        return dict(message)

    async def _start(self, text: str | None) -> None:
        fields: dict[str, Any] = {}
        if text:
            if len(text) > self._telephony.limits.max_message_bytes:
                raise StreamError(CLOSE_POLICY, "too large", "the metadata is too large")
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                parsed = None
            fields = parsed if isinstance(parsed, dict) else {"freeswitch_metadata": text}
        metadata = clean_metadata(
            {
                **{k: v for k, v in fields.items() if k not in ("playbook", "title")},
                "source": "freeswitch",
                "connector_id": self._connector.connector_id,
            }
        )
        playbooks = self._connector.playbook_ids
        if isinstance(fields.get("playbook"), str) and fields["playbook"]:
            playbooks = (fields["playbook"],)
        call_id = str(fields.get("uuid") or fields.get("call_id") or "")
        title = str(fields.get("title") or f"FreeSWITCH call {call_id}".strip())
        config = call_config(
            call_pb2.AudioFormat(
                encoding=call_pb2.AUDIO_ENCODING_LINEAR16,
                sample_rate_hertz=self._rate,
                channel_count=self._channels,
            ),
            roles_for(self._mix, self._connector.rep_channel),
            title,
            metadata,
            playbooks,
        )
        auth = await self._telephony.keys.metadata(self._connector.tenant_id)
        self._call = GatewayCall(self._telephony.gateway, config, auth)
        session_id = await self._call.start()
        self._log = self._log.bind(session_id=session_id, call_id=call_id)
        self._log.info("call started", mix=self._mix, rate=self._rate)

    async def _receive(self) -> None:
        while True:
            try:
                message = await self._websocket.receive()
            except WebSocketDisconnect:
                return
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is not None:
                await self._audio(data)
            else:
                self._count()  # later text (send_text, the stop metadata) carries no audio

    def _count(self) -> None:
        MESSAGES.labels(PROTOCOL.value).inc()
        try:
            self._guard.message()
        except Flood as flood:
            raise StreamError(CLOSE_POLICY, "flood", str(flood)) from None

    async def _audio(self, data: bytes) -> None:
        self._count()
        frame = 2 * self._channels
        if len(data) % frame or len(data) > self._telephony.limits.max_message_bytes:
            raise StreamError(
                CLOSE_MALFORMED, "bad frame", f"audio frames must be whole {frame}-byte samples"
            )
        AUDIO_BYTES.labels(PROTOCOL.value).inc(len(data))
        seconds = len(data) / frame / self._rate
        try:
            self._guard.audio(seconds)
        except Flood as flood:
            raise StreamError(CLOSE_POLICY, "flood", str(flood)) from None
        assert self._call is not None
        await self._call.send(data)
        self._seconds += seconds
