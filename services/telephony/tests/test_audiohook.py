"""Genesys Cloud AudioHook v2: the sample call as stereo PCMU, with the handshake, pings,
pauses, a reconnect and the protocol's errors."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from callcue.call.v1 import call_pb2
from callcue.core.testing import Stack
from callcue.telephony.connectors import Protocol

from .conftest import (
    AudioHookClient,
    Service,
    audiohook,
    audiohook_headers,
    heard,
    register,
    seconds,
    send_sample,
    serving,
    session_of,
    strict,
)

REP, PROSPECT = call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT


async def test_a_stereo_conversation_is_transcribed_by_speaker_with_its_talking_points(
    stack: Stack, service: Service, sales_playbook: str, pcm8k: np.ndarray
) -> None:
    registered = await register(service, Protocol.AUDIOHOOK, sales_playbook)
    url = f"{service.url}/audiohook/{registered.connector.connector_id}"
    conversation = str(uuid.uuid4())
    async with audiohook(url, registered) as client:
        opened = await client.open(conversation)
        # Both parties offered on their own channels: that is the media chosen.
        assert opened["parameters"]["media"] == [
            {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}
        ]
        assert opened["seq"] == 1 and opened["clientseq"] == 1
        await send_sample(client, pcm8k)
        closed = await client.close()
        assert closed["clientseq"] == client.seq
        pongs = [m for m in client.received if m["type"] == "pong"]
        assert len(pongs) >= 5
    session = await session_of(stack, "conversation_id", conversation)
    assert session.metadata["from"] == "+15551230001" and session.metadata["to"] == "+15559870002"
    assert list(session.channel_roles) == [PROSPECT, REP]
    call = await heard(stack, session.session_id)
    assert call.state == call_pb2.CALL_STATE_ENDED
    assert "smaller teams" in call.text(REP)
    assert call.said(PROSPECT, "salesforce") and "expensive" in call.text(PROSPECT)
    assert {
        call_pb2.TALKING_POINT_CATEGORY_COMPETITOR,
        call_pb2.TALKING_POINT_CATEGORY_PRICING,
    } <= call.categories()


async def test_audio_discarded_while_paused_keeps_later_words_on_the_calls_clock(
    stack: Stack, service: Service, sales_playbook: str, pcm8k: np.ndarray
) -> None:
    registered = await register(service, Protocol.AUDIOHOOK, sales_playbook)
    url = f"{service.url}/audiohook/{registered.connector.connector_id}"
    conversation = str(uuid.uuid4())
    async with audiohook(url, registered) as client:
        await client.open(conversation)
        await send_sample(client, pcm8k[: 13 * 8000])
        await client.send("paused", {})
        await asyncio.sleep(0.5)
        # The 2 s said on hold are not sent; the position still counts them.
        client.position += 2.0
        await client.send("resumed", {"start": "PT13S", "discarded": "PT2S"})
        await send_sample(client, pcm8k[15 * 8000 :])
        await client.close()
    session = await session_of(stack, "conversation_id", conversation)
    call = await heard(stack, session.session_id)
    # "Your plan looks too expensive" is said 18.43-21.85 s into the call.
    expensive = call.word("expensive")
    assert 18.4 <= seconds(expensive.start_offset) and seconds(expensive.end_offset) <= 21.9
    assert seconds(session.audio_duration) == pytest.approx(len(pcm8k) / 8000, abs=0.05)


async def test_a_reconnect_mid_call_continues_the_same_session(
    stack: Stack, service: Service, sales_playbook: str, pcm8k: np.ndarray
) -> None:
    registered = await register(service, Protocol.AUDIOHOOK, sales_playbook)
    url = f"{service.url}/audiohook/{registered.connector.connector_id}"
    conversation = str(uuid.uuid4())
    first_id = str(uuid.uuid4())
    async with audiohook(url, registered, first_id) as first:
        await first.open(conversation)
        await send_sample(first, pcm8k[: 12 * 8000])
        # The connection is lost: no close transaction.
        first.ws.transport.abort()  # type: ignore[attr-defined]
    await asyncio.sleep(0.3)
    async with audiohook(url, registered) as second:
        await second.open(conversation, continued=first_id)
        await send_sample(second, pcm8k[12 * 8000 :])
        await second.close()
    session = await session_of(stack, "conversation_id", conversation)  # one session
    call = await heard(stack, session.session_id)
    assert call.said(PROSPECT, "salesforce")  # said before the reconnect
    assert "expensive" in call.text(PROSPECT)  # and after it
    # The lost 0.3 s keep their place on the call's clock.
    assert seconds(call.word("expensive").start_offset) >= 18.4


async def test_bad_credentials_are_refused_with_401_before_the_socket_opens(
    service: Service, sales_playbook: str
) -> None:
    registered = await register(service, Protocol.AUDIOHOOK, sales_playbook)
    url = f"{service.url}/audiohook/{registered.connector.connector_id}"
    session_id = str(uuid.uuid4())
    good = audiohook_headers(url, registered, session_id)
    wrong_secret = audiohook_headers(url, registered, session_id, secret="d3Jvbmcgc2VjcmV0")
    cases = [
        {**good, "x-api-key": "cck_not-the-key"},
        wrong_secret,
        {k: v for k, v in good.items() if k not in ("signature", "signature-input")},
    ]
    for headers in cases:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
    # The same signed handshake twice: the nonce gives the replay away.
    async with connect(url, additional_headers=good):
        pass
    with pytest.raises(InvalidStatus) as replayed:
        async with connect(url, additional_headers=good):
            pass
    assert replayed.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as unknown:
        async with connect(f"{service.url}/audiohook/tc_nope", additional_headers=good):
            pass
    assert unknown.value.response.status_code == 404


async def _disconnect_reason(client: AudioHookClient) -> str:
    message = await client.expect("disconnect", patience=10)
    assert message["parameters"]["reason"] == "error"
    await client.send("close", {"reason": "error"})
    await client.expect("closed", patience=10)
    return str(message["parameters"]["info"])


async def test_protocol_errors_are_answered_with_disconnect(
    service: Service, sales_playbook: str, pcm8k: np.ndarray
) -> None:
    registered = await register(service, Protocol.AUDIOHOOK, sales_playbook)
    url = f"{service.url}/audiohook/{registered.connector.connector_id}"
    # Audio before the session is open.
    async with audiohook(url, registered) as client:
        await client.ws.send(b"\xff" * 160)
        assert "audio received while preparing" in await _disconnect_reason(client)
    # A sequence number skipped.
    async with audiohook(url, registered) as client:
        await client.open(str(uuid.uuid4()))
        client.seq += 1
        await client.send("ping", {})
        assert "seq" in await _disconnect_reason(client)
    # A frame that is not whole samples of both channels, and text that is not JSON.
    async with audiohook(url, registered) as client:
        await client.open(str(uuid.uuid4()))
        await client.ws.send(b"\xff" * 161)
        assert "whole samples" in await _disconnect_reason(client)
    async with audiohook(url, registered) as client:
        await client.ws.send("{not json")
        assert "not JSON" in await _disconnect_reason(client)
    # Media nobody can decode.
    async with audiohook(url, registered) as client:
        await client.send(
            "open",
            {
                "conversationId": str(uuid.uuid4()),
                "media": [
                    {"type": "audio", "format": "OPUS", "channels": ["external"], "rate": 48000}
                ],
            },
        )
        assert "PCMU or L16" in await _disconnect_reason(client)


async def test_a_flood_is_disconnected(
    service: Service, sales_playbook: str, pcm8k: np.ndarray
) -> None:
    registered = await register(service, Protocol.AUDIOHOOK, sales_playbook)
    async with serving(strict(service, max_audio_lead_seconds=2.0)) as base:
        url = f"{base}/audiohook/{registered.connector.connector_id}"
        async with audiohook(url, registered) as client:
            await client.open(str(uuid.uuid4()))
            await send_sample(client, pcm8k[: 10 * 8000], pace=1000.0)
            assert "ahead of real time" in await _disconnect_reason(client)
