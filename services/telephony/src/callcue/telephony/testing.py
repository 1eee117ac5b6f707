"""Clients that speak each phone system's protocol as its documentation describes: what
the telephony tests and bench/telephony_calls.py stream calls with. Not for production
code: a phone system is the real client."""

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
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from callcue.telephony.request_signatures import AUDIOHOOK_COMPONENTS

# How much faster than real time test calls stream by default (phone systems: 1.0).
PACE = 4.0


def mulaw(pcm: np.ndarray) -> bytes:
    """G.711 mu-law, as a phone network encodes it."""
    value = pcm.astype(np.int32)
    sign = (value < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(value), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    encoded: np.ndarray = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)
    return encoded.tobytes()


# --- Twilio Media Streams -------------------------------------------------------------


def twilio_signature(token: str, url: str) -> str:
    return base64.b64encode(hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()).decode()


def twilio_media(inbound: np.ndarray, outbound: np.ndarray) -> list[dict[str, Any]]:
    """Both tracks (8 kHz int16) in 20 ms chunks of mu-law, as Twilio sends them, each
    with its own chunk count and the timestamp in ms."""
    frames = []
    for index, start in enumerate(range(0, len(inbound), 160)):
        for track, audio in (("inbound", inbound), ("outbound", outbound)):
            frames.append(
                {
                    "event": "media",
                    "sequenceNumber": "0",
                    "media": {
                        "track": track,
                        "chunk": str(index + 1),
                        "timestamp": str(start // 8),
                        "payload": base64.b64encode(mulaw(audio[start : start + 160])).decode(),
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
    token: str,
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
    url: str, api_key: str, client_secret: str, session_id: str
) -> dict[str, str]:
    """The handshake headers with an RFC 9421 signature, as Genesys Cloud signs them."""
    path = "/" + url.split("/", 3)[3]
    authority = url.split("/")[2]
    headers = {
        "audiohook-organization-id": str(uuid.uuid4()),
        "audiohook-correlation-id": str(uuid.uuid4()),
        "audiohook-session-id": session_id,
        "x-api-key": api_key,
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
    key = base64.b64decode(client_secret)
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
        self,
        conversation_id: str,
        *,
        continued: str | None = None,
        custom: dict[str, str] | None = None,
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
        if custom:
            parameters["customConfig"] = custom
        if continued:
            parameters["continuedSessions"] = [{"id": continued, "serverseq": 2, "clientseq": 3}]
        await self.send("open", parameters)
        return await self.expect("opened")

    async def audio(
        self,
        external: np.ndarray,
        internal: np.ndarray,
        *,
        pace: float = PACE,
        ping_every: float = 5.0,
    ) -> None:
        """Stereo PCMU frames of 100 ms (external: the customer, internal: the agent),
        pinging as Genesys does."""
        interleaved = np.stack([external, internal], axis=1).reshape(-1)
        started, last_ping = time.monotonic(), 0.0
        for start in range(0, len(external), 800):
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
    url: str, api_key: str, client_secret: str, session_id: str | None = None
) -> AsyncIterator[AudioHookClient]:
    session_id = session_id or str(uuid.uuid4())
    headers = audiohook_headers(url, api_key, client_secret, session_id)
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
