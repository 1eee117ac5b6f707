"""The telephony service on loopback in front of the whole stack (core.testing's
`stack`), connectors of tenant acme, and clients that speak each phone system's protocol
as its documentation describes."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection

from callcue.call.v1 import call_pb2
from callcue.core import database, http_server, scopes
from callcue.core.api_keys import ApiKeyStore
from callcue.core.auth import Authenticator
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.service_keys import ServiceKeys
from callcue.core.settings import Environment, ServerSettings
from callcue.core.testing import Stack, TenantKeys
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb
from callcue.telephony import app, testing
from callcue.telephony.admission import Telephony
from callcue.telephony.connectors import Connector, ConnectorStore, NewCredentials, Protocol
from callcue.telephony.held_calls import HeldCalls
from callcue.telephony.request_signatures import NonceCache
from callcue.telephony.sealing import SecretBox, new_key
from callcue.telephony.settings import Limits
from callcue.telephony.v1.connector_service_pb2_grpc import (
    ConnectorServiceStub,
)

REPO = Path(__file__).resolve().parents[3]
STEREO = REPO / "samples" / "sales_call_stereo.flac"
PACE = testing.PACE
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
    server = http_server.UvicornServer(config)
    running = await http_server.start(server)
    assert running is not None, "the telephony service did not start"
    readiness.ready = True
    port = http_server.bound_port(server)
    yield f"ws://127.0.0.1:{port}"
    server.should_exit = True
    await running


@pytest.fixture(scope="session")
async def service(stack: Stack, database_url: str) -> AsyncIterator[Service]:
    await database.migrate(database_url, app.COMPONENT, app.MIGRATIONS)
    pool = await database.open_pool(database_url, max_size=4)
    key = new_key()
    channel = open_channel(f"127.0.0.1:{stack.gateway_port}")
    keys = ServiceKeys(ApiKeyStore(pool), "telephony tests", [scopes.CALLS_STREAM])
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
async def connector_api(
    service: Service, authenticator: Authenticator, tenant_keys: TenantKeys, database_url: str
) -> AsyncIterator[tuple[ConnectorServiceStub, ConnectorServiceStub]]:
    """The gRPC ConnectorService on loopback, and stubs of tenants acme and globex."""
    env = Environment({"CALLCUE_HOST": "127.0.0.1", "DATABASE_URL": database_url})
    settings = ServerSettings.from_env(env, default_port=0)
    server = app.build_grpc_server(settings, service.telephony.connectors, authenticator)
    port = await server.start()
    await server.set_serving()
    channels = [
        open_channel(f"127.0.0.1:{port}", credentials=api_key(key))
        for key in (tenant_keys.acme, tenant_keys.globex)
    ]
    yield ConnectorServiceStub(channels[0]), ConnectorServiceStub(channels[1])
    for channel in channels:
        await channel.close()
    await server.stop(0)


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


def _squeezed(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclass
class Heard:
    finals: list[call_pb2.TranscriptSegment]
    detections: list[call_pb2.Detection]
    state: int

    def text(self, speaker: int) -> str:
        return " ".join(s.text for s in self.finals if s.speaker == speaker).lower()

    def said(self, speaker: int, phrase: str) -> bool:
        """Whether the speaker's finals hold the phrase, however Whisper spaced it
        ("salesforce", "sales force")."""
        return _squeezed(phrase) in _squeezed(self.text(speaker))

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


# --- the protocols' clients (callcue.telephony.testing), with the sample's channels ---------


def twilio_media(pcm: np.ndarray) -> list[dict[str, Any]]:
    """Outbound the rep, inbound the prospect."""
    return testing.twilio_media(inbound=pcm[:, PROSPECT], outbound=pcm[:, REP])


twilio_signature = testing.twilio_signature
AudioHookClient = testing.AudioHookClient


async def twilio_call(
    url: str,
    media: Sequence[dict[str, Any]],
    *,
    call_sid: str,
    token: str = TWILIO_TOKEN,
    custom: dict[str, str] | None = None,
    pace: float = PACE,
) -> ClientConnection:
    return await testing.twilio_call(
        url, media, call_sid=call_sid, token=token, custom=custom, pace=pace
    )


def audiohook_headers(
    url: str, registered: Registered, session_id: str, *, secret: str | None = None
) -> dict[str, str]:
    credentials = registered.credentials
    return testing.audiohook_headers(
        url, credentials.api_key, secret or credentials.client_secret, session_id
    )


def audiohook(
    url: str, registered: Registered, session_id: str | None = None
) -> contextlib.AbstractAsyncContextManager[testing.AudioHookClient]:
    credentials = registered.credentials
    return testing.audiohook(url, credentials.api_key, credentials.client_secret, session_id)


async def send_sample(client: testing.AudioHookClient, pcm: np.ndarray, **options: Any) -> None:
    """External (the customer) is the prospect, internal (the agent) the rep."""
    await client.audio(pcm[:, PROSPECT], pcm[:, REP], **options)


freeswitch_call = testing.freeswitch_call


def strict(service: Service, **limits: Any) -> Telephony:
    """The same service with tighter limits, for the flood tests."""
    return replace(service.telephony, limits=replace(service.telephony.limits, **limits), streams=0)


@pytest.fixture(scope="session")
def pcm8k() -> np.ndarray:
    return sample_pcm(8000)
