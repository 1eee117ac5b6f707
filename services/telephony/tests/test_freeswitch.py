"""FreeSWITCH mod_audio_stream: the metadata first, then L16 frames, stereo or mono."""

from __future__ import annotations

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from callcue.call.v1 import call_pb2
from callcue.core.testing import Stack
from callcue.telephony.connectors import Protocol

from .conftest import PROSPECT as PROSPECT_CHANNEL
from .conftest import REP as REP_CHANNEL
from .conftest import Service, freeswitch_call, heard, register, sample_pcm, session_of

REP, PROSPECT = call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT


async def test_a_stereo_l16_stream_at_16k_is_transcribed_by_speaker(
    stack: Stack, service: Service, sales_playbook: str
) -> None:
    registered = await register(service, Protocol.FREESWITCH, sales_playbook)
    url = f"{service.url}/freeswitch/{registered.connector.connector_id}?mix=stereo&rate=16000"
    pcm = sample_pcm(16000)
    # The channel's own party (left) is the prospect here; the rep is on the right.
    stereo = np.stack([pcm[:, PROSPECT_CHANNEL], pcm[:, REP_CHANNEL]], axis=1)
    ws = await freeswitch_call(
        url, registered.credentials.api_key, {"uuid": "fs-stereo-1", "rep": "dana"}, stereo
    )
    assert ws.close_code == 1000
    session = await session_of(stack, "uuid", "fs-stereo-1")
    assert session.metadata["rep"] == "dana"
    assert list(session.channel_roles) == [PROSPECT, REP]
    call = await heard(stack, session.session_id)
    assert "smaller teams" in call.text(REP)
    assert call.said(PROSPECT, "salesforce")
    assert call_pb2.TALKING_POINT_CATEGORY_COMPETITOR in call.categories()


async def test_a_mixed_mono_stream_at_8k_is_one_mixed_channel_with_the_playbook_it_names(
    stack: Stack, service: Service, sales_playbook: str, playbook: str, pcm8k: np.ndarray
) -> None:
    registered = await register(service, Protocol.FREESWITCH, sales_playbook, rep_channel="mixed")
    url = f"{service.url}/freeswitch/{registered.connector.connector_id}"
    mono = (pcm8k.astype(np.int32).sum(axis=1) // 2).astype(np.int16)[: 23 * 8000]
    # The metadata names an empty playbook instead of the connector's sales playbook.
    metadata = {"uuid": "fs-mono-1", "playbook": playbook}
    await freeswitch_call(url, registered.credentials.api_key, metadata, mono)
    session = await session_of(stack, "uuid", "fs-mono-1")
    assert list(session.channel_roles) == [call_pb2.SPEAKER_ROLE_MIXED]
    assert list(session.playbook_ids) == [playbook]
    call = await heard(stack, session.session_id)
    assert call.said(call_pb2.SPEAKER_ROLE_MIXED, "salesforce")
    assert not call.categories(), "no talking points from a playbook the call did not name"


async def test_a_wrong_key_or_format_is_refused_and_a_torn_frame_closes_the_stream(
    service: Service, sales_playbook: str
) -> None:
    registered = await register(service, Protocol.FREESWITCH, sales_playbook)
    url = f"{service.url}/freeswitch/{registered.connector.connector_id}"
    for target, headers, status in (
        (url, {"Authorization": "Bearer cck_wrong"}, 401),
        (url, {}, 401),
        (f"{url}?rate=44100", {"Authorization": f"Bearer {registered.credentials.api_key}"}, 400),
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(target, additional_headers=headers):
                pass
        assert refused.value.response.status_code == status
    headers = {"Authorization": f"Bearer {registered.credentials.api_key}"}
    async with connect(url, additional_headers=headers) as ws:
        await ws.send('{"uuid": "fs-torn"}')
        await ws.send(b"\x00" * 321)  # not whole stereo samples
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
    assert ws.close_code == 1007 and "whole" in (ws.close_reason or "")
