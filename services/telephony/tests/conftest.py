"""The telephony service on loopback in front of the whole stack (core.testing's
`stack`), connectors of tenant acme, and clients that speak each phone system's protocol
as its documentation describes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from callcue.call.v1 import call_pb2
from callcue.core import database
from callcue.core.api_keys import ApiKeyStore
from callcue.core.channel import open_channel
from callcue.core.service_keys import ServiceKeys
from callcue.core.testing import Stack
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb
from callcue.telephony import app
from callcue.telephony.admission import Telephony
from callcue.telephony.connectors import Connector, ConnectorStore, NewCredentials, Protocol
from callcue.telephony.held_calls import HeldCalls
from callcue.telephony.request_signatures import AUDIOHOOK_COMPONENTS, NonceCache
from callcue.telephony.sealing import SecretBox, new_key
from callcue.telephony.settings import Limits

REPO = Path(__file__).resolve().parents[3]
STEREO = REPO / "samples" / "sales_call_stereo.flac"
# How much faster than real time the tests stream (phone systems send in real time).
PACE = 4.0
TWILIO_TOKEN = "twilio-auth-token-" + "x" * 14
# Limits that let the tests stream faster than real time.
TEST_LIMITS = Limits(max_audio_lead_seconds=1000.0, max_messages_per_second=5000.0)


@dataclass(frozen=True)
class Service:
    url: str  # ws://127.0.0.1:<port>
    telephony: Telephony
    secrets_key: str


@dataclass(frozen=True)
class Registered:
    connector: Connector
    credentials: NewCredentials


@contextlib.asynccontextmanager
async def serving(
    telephony: Telephony, readiness: app.Readiness | None = None
) -> AsyncIterator[str]:
    readiness = readiness or app.Readiness()
    config = uvicorn.Config(
        app.build_app(telephony, readiness),
        host="127.0.0.1",
        port=0,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="websockets-sansio",
        ws_max_size=telephony.limits.max_message_bytes,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    running = asyncio.create_task(server.serve())
    while not server.started:
        assert not running.done(), "the telephony service did not start"
        await asyncio.sleep(0.02)
    readiness.ready = True
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"ws://127.0.0.1:{port}"
    server.should_exit = True
    await running


@pytest.fixture(scope="session")
async def service(stack: Stack, database_url: str) -> AsyncIterator[Service]:
    await database.migrate(database_url, app.COMPONENT, app.MIGRATIONS)
    pool = await database.open_pool(database_url, max_size=4)
    key = new_key()
    channel = open_channel(f"127.0.0.1:{stack.gateway_port}")
    keys = ServiceKeys(ApiKeyStore(pool), "telephony tests")
    held = HeldCalls(TEST_LIMITS.reconnect_grace_seconds)
    telephony = Telephony(
        connectors=ConnectorStore(pool, SecretBox(key)),
        gateway=gateway_service_pb2_grpc.GatewayServiceStub(channel),
        keys=keys,
        limits=TEST_LIMITS,
        public_url="",
        nonces=NonceCache(),
        held=held,
    )
    async with serving(telephony) as url:
        yield Service(url, telephony, key)
    await held.close()
    await keys.close()
    await channel.close()
    await pool.close()


@pytest.fixture(scope="session")
async def sales_playbook(stack: Stack) -> str:
    content = (REPO / "playbooks" / "sales.yaml").read_bytes()
    imported = await stack.detector.ImportPlaybook(
        detector_pb.ImportPlaybookRequest(content=content, replace=True)
    )
    return imported.playbook.playbook_id


async def register(
    service: Service, protocol: Protocol, playbook: str, **options: Any
) -> Registered:
    if protocol is Protocol.TWILIO:
        options.setdefault("auth_token", TWILIO_TOKEN)
    connector, credentials = await service.telephony.connectors.create(
        "acme", protocol, playbook_ids=(playbook,), **options
    )
    return Registered(connector, credentials)


# --- audio -------------------------------------------------------------------------


def sample_pcm(rate: int) -> np.ndarray:
    """The committed stereo sample (rep left, prospect right) as int16, shape (n, 2)."""
    with av.open(str(STEREO)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=rate)
        chunks = [
            converted.to_ndarray().reshape(-1, 2)
            for frame in container.decode(stream)
            for converted in resampler.resample(frame)
        ]
        chunks += [c.to_ndarray().reshape(-1, 2) for c in resampler.resample(None)]
    return np.concatenate(chunks)


def mulaw(pcm: np.ndarray) -> bytes:
    """G.711 mu-law, as a phone network encodes it."""
    value = pcm.astype(np.int32)
    sign = (value < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(value), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


REP, PROSPECT = 0, 1  # the sample's channels


# --- what the call left behind --------------------------------------------------------


async def session_of(
    stack: Stack, key: str, value: str, patience: float = 30
) -> gateway_pb.Session:
    """The one session whose metadata has key=value (waits for it to exist)."""
    deadline = time.monotonic() + patience
    while True:
        listed = await stack.gateway.ListSessions(gateway_pb.ListSessionsRequest(page_size=200))
        found = [s for s in listed.sessions if s.metadata.get(key) == value]
        if found:
            assert len(found) == 1, f"{len(found)} sessions for {key}={value}"
            return found[0]
        assert time.monotonic() < deadline, f"no session with {key}={value}"
        await asyncio.sleep(0.2)


@dataclass
class Heard:
    finals: list[call_pb2.TranscriptSegment]
    detections: list[call_pb2.Detection]
    state: int

    def text(self, speaker: int) -> str:
        return " ".join(s.text for s in self.finals if s.speaker == speaker).lower()

    def word(self, text: str) -> call_pb2.Word:
        for segment in self.finals:
            for word in segment.words:
                if text in word.text.lower():
                    return word
        raise AssertionError(f"no word {text!r} in {[s.text for s in self.finals]}")

    def categories(self) -> set[int]:
        return {
            d.talking_point.category
            for d in self.detections
            if d.state == call_pb2.DETECTION_STATE_CONFIRMED
        }


async def heard(stack: Stack, session_id: str, patience: float = 120) -> Heard:
    """A separate notifier subscriber's view of the whole call, once it has ended."""
    finals: list[call_pb2.TranscriptSegment] = []
    detections: list[call_pb2.Detection] = []
    state = call_pb2.CALL_STATE_UNSPECIFIED

    async def read() -> None:
        nonlocal state
        stream = stack.notifier.Subscribe(notifier_pb.SubscribeRequest(session_id=session_id))
        async for response in stream:
            event = response.event
            if event.HasField("transcript") and event.transcript.is_final:
                finals.append(event.transcript)
            elif event.HasField("detection"):
                detections.append(event.detection)
            elif event.HasField("status"):
                state = event.status.state

    await asyncio.wait_for(read(), patience)
    return Heard(finals, detections, state)


def seconds(duration: Any) -> float:
    return float(duration.seconds + duration.nanos / 1e9)


# --- Twilio Media Streams -------------------------------------------------------------


def twilio_signature(token: str, url: str) -> str:
    return base64.b64encode(hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()).decode()


def twilio_media(pcm: np.ndarray) -> list[dict[str, Any]]:
    """Both tracks in 20 ms chunks, as Twilio sends them: outbound the rep, inbound the
    prospect, each with its own chunk count and the timestamp in ms."""
    frames = []
    for index, start in enumerate(range(0, len(pcm), 160)):
        for track, channel in (("inbound", PROSPECT), ("outbound", REP)):
            frames.append(
                {
                    "event": "media",
                    "sequenceNumber": "0",
                    "media": {
                        "track": track,
                        "chunk": str(index + 1),
                        "timestamp": str(start // 8),
                        "payload": base64.b64encode(
                            mulaw(pcm[start : start + 160, channel])
                        ).decode(),
                    },
                    "streamSid": "MZ" + "0" * 32,
                }
            )
    return frames


async def twilio_call(
    url: str,
    media: Sequence[dict[str, Any]],
    *,
    call_sid: str,
    token: str = TWILIO_TOKEN,
    custom: dict[str, str] | None = None,
    pace: float = PACE,
) -> ClientConnection:
    headers = {"X-Twilio-Signature": twilio_signature(token, url)}
    async with connect(url, additional_headers=headers) as ws:
        sequence = iter(range(1, 10**9))
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(
            json.dumps(
                {
                    "event": "start",
                    "sequenceNumber": str(next(sequence)),
                    "start": {
                        "accountSid": "AC" + "1" * 32,
                        "streamSid": "MZ" + "0" * 32,
                        "callSid": call_sid,
                        "tracks": ["inbound", "outbound"],
                        "customParameters": custom or {},
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": 8000,
                            "channels": 1,
                        },
                    },
                    "streamSid": "MZ" + "0" * 32,
                }
            )
        )
        started = time.monotonic()
        for index, frame in enumerate(media):
            await ws.send(json.dumps({**frame, "sequenceNumber": str(next(sequence))}))
            # Two frames (one per track) every 20 ms of audio.
            ahead = (index / 2) * 0.02 / pace - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        await ws.send(
            json.dumps(
                {
                    "event": "stop",
                    "sequenceNumber": str(next(sequence)),
                    "stop": {"callSid": call_sid},
                }
            )
        )
        await ws.wait_closed()
        return ws


# --- Genesys AudioHook ----------------------------------------------------------------


def audiohook_headers(
    url: str, registered: Registered, session_id: str, *, secret: str | None = None
) -> dict[str, str]:
    """The handshake headers with an RFC 9421 signature, as Genesys Cloud signs them."""
    path = "/" + url.split("/", 3)[3]
    authority = url.split("/")[2]
    headers = {
        "audiohook-organization-id": str(uuid.uuid4()),
        "audiohook-correlation-id": str(uuid.uuid4()),
        "audiohook-session-id": session_id,
        "x-api-key": registered.credentials.api_key,
    }
    now = int(time.time())
    components = " ".join(f'"{c}"' for c in AUDIOHOOK_COMPONENTS)
    params = (
        f'({components});keyid="{headers["x-api-key"]}";nonce="{secrets.token_urlsafe(16)}";'
        f'alg="hmac-sha256";created={now};expires={now + 60}'
    )
    lines = []
    for component in AUDIOHOOK_COMPONENTS:
        value = {"@request-target": path, "@authority": authority}.get(component) or headers[
            component
        ]
        lines.append(f'"{component}": {value}')
    lines.append(f'"@signature-params": {params}')
    key = base64.b64decode(secret or registered.credentials.client_secret)
    signature = base64.b64encode(hmac.new(key, "\n".join(lines).encode(), hashlib.sha256).digest())
    return {
        **headers,
        "signature-input": f"sig1={params}",
        "signature": f"sig1=:{signature.decode()}:",
    }


class AudioHookClient:
    """The client side of an AudioHook session: seq counting, positions, and the replies
    the server owes (opened, pong, closed)."""

    def __init__(self, ws: ClientConnection, session_id: str) -> None:
        self.ws = ws
        self.session_id = session_id
        self.seq = 0
        self.serverseq = 0
        self.position = 0.0
        self.received: list[dict[str, Any]] = []

    async def send(self, kind: str, parameters: dict[str, Any], **extra: Any) -> None:
        self.seq += 1
        message = {
            "version": "2",
            "type": kind,
            "seq": self.seq,
            "serverseq": self.serverseq,
            "id": self.session_id,
            "position": f"PT{self.position:.3f}S",
            "parameters": parameters,
            **extra,
        }
        await self.ws.send(json.dumps(message))

    async def expect(self, kind: str, patience: float = 120) -> dict[str, Any]:
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), patience)
            message = json.loads(raw)
            self.received.append(message)
            self.serverseq = message["seq"]
            assert message["clientseq"] <= self.seq
            if message["type"] == kind:
                return dict(message)
            assert message["type"] in ("pong",), f"expected {kind}, got {message}"

    async def open(
        self, conversation_id: str, *, continued: str | None = None, playbook: str = ""
    ) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "organizationId": str(uuid.uuid4()),
            "conversationId": conversation_id,
            "participant": {
                "id": str(uuid.uuid4()),
                "ani": "+15551230001",
                "aniName": "Jordan",
                "dnis": "+15559870002",
            },
            "media": [
                {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000},
                {
                    "type": "audio",
                    "format": "PCMU",
                    "channels": ["external", "internal"],
                    "rate": 8000,
                },
            ],
            "language": "en-US",
        }
        if playbook:
            parameters["customConfig"] = {"playbook": playbook}
        if continued:
            parameters["continuedSessions"] = [{"id": continued, "serverseq": 2, "clientseq": 3}]
        await self.send("open", parameters)
        return await self.expect("opened")

    async def audio(self, pcm: np.ndarray, *, pace: float = PACE, ping_every: float = 5.0) -> None:
        """Stereo PCMU frames of 100 ms (external = prospect, internal = rep), pinging as
        Genesys does."""
        interleaved = np.stack([pcm[:, PROSPECT], pcm[:, REP]], axis=1).reshape(-1)
        started, last_ping = time.monotonic(), 0.0
        for start in range(0, len(pcm), 800):
            frame = interleaved[start * 2 : (start + 800) * 2]
            await self.ws.send(mulaw(frame))
            self.position += len(frame) / 2 / 8000
            if self.position - last_ping >= ping_every:
                last_ping = self.position
                await self.send("ping", {})
            ahead = (start / 8000) / pace - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)

    async def close(self) -> dict[str, Any]:
        await self.send("close", {"reason": "end"})
        return await self.expect("closed")


@contextlib.asynccontextmanager
async def audiohook(
    url: str, registered: Registered, session_id: str | None = None
) -> AsyncIterator[AudioHookClient]:
    session_id = session_id or str(uuid.uuid4())
    headers = audiohook_headers(url, registered, session_id)
    async with connect(url, additional_headers=headers) as ws:
        yield AudioHookClient(ws, session_id)


# --- FreeSWITCH mod_audio_stream --------------------------------------------------------


async def freeswitch_call(
    url: str,
    key: str,
    metadata: dict[str, Any],
    pcm: np.ndarray,
    *,
    pace: float = PACE,
) -> ClientConnection:
    """``uuid_audio_stream ... start <url> <mix> <rate> <metadata>``: the metadata first,
    then L16 frames of 20 ms (the module's default)."""
    rate = 16000 if "rate=16000" in url else 8000
    frame = rate // 50
    headers = {"Authorization": f"Bearer {key}"}
    async with connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps(metadata))
        started = time.monotonic()
        for start in range(0, len(pcm), frame):
            await ws.send(pcm[start : start + frame].astype("<i2").tobytes())
            ahead = (start / rate) / pace - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        await ws.close()
        return ws


def strict(service: Service, **limits: Any) -> Telephony:
    """The same service with tighter limits, for the flood tests."""
    return replace(service.telephony, limits=replace(service.telephony.limits, **limits), streams=0)


@pytest.fixture(scope="session")
def pcm8k() -> np.ndarray:
    return sample_pcm(8000)
