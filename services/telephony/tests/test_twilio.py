"""Twilio Media Streams: the sample call as both tracks of mu-law, through the whole stack."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from callcue.call.v1 import call_pb2
from callcue.core.testing import Stack
from callcue.telephony.connectors import Protocol

from .conftest import (
    Service,
    heard,
    register,
    seconds,
    serving,
    session_of,
    strict,
    twilio_call,
    twilio_media,
    twilio_signature,
)

REP, PROSPECT = call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT


async def test_both_tracks_become_one_call_by_speaker_with_its_talking_points(
    stack: Stack, service: Service, sales_playbook: str, pcm8k: np.ndarray
) -> None:
    registered = await register(service, Protocol.TWILIO, sales_playbook)
    url = f"{service.url}/twilio/{registered.connector.connector_id}"
    ws = await twilio_call(
        url, twilio_media(pcm8k), call_sid="CA-both-tracks", custom={"rep": "dana", "from": "+1555"}
    )
    assert ws.close_code == 1000
    session = await session_of(stack, "call_sid", "CA-both-tracks")
    assert session.metadata["rep"] == "dana" and session.metadata["from"] == "+1555"
    assert list(session.channel_roles) == [PROSPECT, REP]  # inbound, outbound
    call = await heard(stack, session.session_id)
    assert call.state == call_pb2.CALL_STATE_ENDED
    # Each party's words on its own channel, and only there.
    assert "smaller teams" in call.text(REP) and "expensive" not in call.text(REP)
    assert call.said(PROSPECT, "salesforce") and "expensive" in call.text(PROSPECT)
    assert "thanks for taking the time" not in call.text(PROSPECT)
    assert {
        call_pb2.TALKING_POINT_CATEGORY_COMPETITOR,
        call_pb2.TALKING_POINT_CATEGORY_PRICING,
    } <= call.categories()


async def test_frames_out_of_order_or_missing_keep_the_words_on_time(
    stack: Stack, service: Service, sales_playbook: str, pcm8k: np.ndarray
) -> None:
    registered = await register(service, Protocol.TWILIO, sales_playbook)
    url = f"{service.url}/twilio/{registered.connector.connector_id}"
    media = twilio_media(pcm8k)
    shuffled = []
    rng = random.Random(7)
    for start in range(0, len(media), 8):  # within 80 ms: inside the reorder window
        window = media[start : start + 8]
        rng.shuffle(window)
        shuffled += window
    # Every 40th frame lost (2.5%), and one stretch of 0.5 s of the prospect's track.
    lost = {i for i in range(len(shuffled)) if i % 40 == 13}
    kept = [frame for i, frame in enumerate(shuffled) if i not in lost]
    kept = [
        f
        for f in kept
        if not (
            f["media"]["track"] == "inbound" and 14_000 <= int(f["media"]["timestamp"]) < 14_500
        )
    ]
    await twilio_call(url, kept, call_sid="CA-out-of-order")
    session = await session_of(stack, "call_sid", "CA-out-of-order")
    call = await heard(stack, session.session_id)
    # "Your plan looks too expensive" is said 18.43-21.85 s into the call.
    expensive = call.word("expensive")
    assert 18.4 <= seconds(expensive.start_offset) and seconds(expensive.end_offset) <= 21.9
    assert seconds(session.audio_duration) == pytest.approx(len(pcm8k) / 8000, abs=0.05)
    assert call_pb2.TALKING_POINT_CATEGORY_COMPETITOR in call.categories()


async def test_a_wrong_signature_or_unknown_connector_is_refused_before_any_audio(
    service: Service, sales_playbook: str
) -> None:
    registered = await register(service, Protocol.TWILIO, sales_playbook)
    url = f"{service.url}/twilio/{registered.connector.connector_id}"
    for headers, status in (
        ({"X-Twilio-Signature": twilio_signature("not the token", url)}, 403),
        ({}, 403),
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers=headers):
                pass
        assert refused.value.response.status_code == status
    unknown = f"{service.url}/twilio/tc_0000000000000000"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(unknown, additional_headers={"X-Twilio-Signature": "x"}):
            pass
    assert refused.value.response.status_code == 404
    # A connector of another protocol is not a Twilio connector.
    other = await register(service, Protocol.FREESWITCH, sales_playbook)
    wrong = f"{service.url}/twilio/{other.connector.connector_id}"
    with pytest.raises(InvalidStatus):
        async with connect(
            wrong, additional_headers={"X-Twilio-Signature": twilio_signature("t", wrong)}
        ):
            pass


async def test_a_malformed_message_closes_the_stream_with_the_reason(
    service: Service, sales_playbook: str
) -> None:
    registered = await register(service, Protocol.TWILIO, sales_playbook)
    url = f"{service.url}/twilio/{registered.connector.connector_id}"
    cases = [
        ("not json at all", 1007),
        (json.dumps({"event": "media", "media": {"payload": "AAAA"}}), 1007),  # before start
        (
            json.dumps({"event": "start", "start": {"mediaFormat": {"encoding": "audio/x-l16"}}}),
            1003,
        ),
    ]
    for message, code in cases:
        async with connect(
            url,
            additional_headers={
                "X-Twilio-Signature": twilio_signature("twilio-auth-token-" + "x" * 14, url)
            },
        ) as ws:
            await ws.send(message)
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
            assert ws.close_code == code, (message, ws.close_reason)
            assert ws.close_reason


async def test_a_flood_of_frames_is_cut_off(
    service: Service, sales_playbook: str, pcm8k: np.ndarray
) -> None:
    registered = await register(service, Protocol.TWILIO, sales_playbook)
    async with serving(strict(service, max_audio_lead_seconds=2.0)) as base:
        url = f"{base}/twilio/{registered.connector.connector_id}"
        try:
            ws = await twilio_call(url, twilio_media(pcm8k), call_sid="CA-flood", pace=1000.0)
            code, reason = ws.close_code, ws.close_reason or ""
        except ConnectionClosed as closed:  # cut off while still sending
            assert closed.rcvd is not None
            code, reason = closed.rcvd.code, closed.rcvd.reason
    assert code == 1008
    assert "ahead of real time" in reason
