"""Tenant isolation across all four services: without a valid key nothing answers, and with
another tenant's key, none of acme's sessions, playbooks, keywords or events exist."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from callcue.call.v1 import call_pb2
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.detector.v1 import detector_service_pb2_grpc
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb
from callcue.notifier.v1 import notifier_service_pb2_grpc
from callcue.transcriber.v1 import transcriber_service_pb2 as transcriber_pb

if TYPE_CHECKING:
    from callcue.core.testing import ServiceTrust, Stack, TenantKeys

SAMPLES = Path(__file__).parents[3] / "samples"
LINEAR16_16K = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)
# Each service, and the process that serves it.
SERVICES = [
    ("gateway", pb.DESCRIPTOR.services_by_name["GatewayService"]),
    ("detector", detector_pb.DESCRIPTOR.services_by_name["PlaybookService"]),
    ("detector", detector_pb.DESCRIPTOR.services_by_name["DetectionService"]),
    ("notifier", notifier_pb.DESCRIPTOR.services_by_name["SubscriberService"]),
    ("notifier", notifier_pb.DESCRIPTOR.services_by_name["PublisherService"]),
    ("transcriber", transcriber_pb.DESCRIPTOR.services_by_name["TranscriberService"]),
]


def ports(stack: Stack) -> dict[str, int]:
    return {
        "gateway": stack.gateway_port,
        "detector": stack.detector_port,
        "notifier": stack.notifier_port,
        "transcriber": stack.transcriber_port,
    }


async def call_raw(channel: grpc.aio.Channel, path: str, method: Any, metadata: Any) -> None:
    """Calls any RPC with an empty request message, whatever its shape."""
    identity = {"request_serializer": None, "response_deserializer": None}
    if method.client_streaming and method.server_streaming:
        call: Any = channel.stream_stream(path, **identity)(iter([b""]), metadata=metadata)
        [_ async for _ in call]
    elif method.client_streaming:
        await channel.stream_unary(path, **identity)(iter([b""]), metadata=metadata)
    elif method.server_streaming:
        [_ async for _ in channel.unary_stream(path, **identity)(b"", metadata=metadata)]
    else:
        await channel.unary_unary(path, **identity)(b"", metadata=metadata)


async def test_every_rpc_of_every_service_refuses_a_missing_or_bad_key(
    stack: Stack, tenant_keys: TenantKeys
) -> None:
    bad = {
        "no key": [],
        "a made-up key": [("authorization", "Bearer cc_0123456789ab_" + "x" * 43)],
        "a revoked key": [("authorization", f"Bearer {tenant_keys.revoked}")],
        "a key without Bearer": [("authorization", tenant_keys.acme)],
    }
    tried = 0
    for service, descriptor in SERVICES:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports(stack)[service]}") as channel:
            for method in descriptor.methods:
                path = f"/{descriptor.full_name}/{method.name}"
                for what, metadata in bad.items():
                    with pytest.raises(grpc.aio.AioRpcError) as error:
                        await asyncio.wait_for(call_raw(channel, path, method, metadata), 10)
                    # The transcriber takes no keys at all: it does not even look at one.
                    expected = (
                        grpc.StatusCode.PERMISSION_DENIED
                        if service == "transcriber" and metadata
                        else grpc.StatusCode.UNAUTHENTICATED
                    )
                    assert error.value.code() == expected, (path, what)
                    tried += 1
    assert tried == 4 * (9 + 13 + 1 + 2 + 1 + 2)


async def denied(call: Awaitable[Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code()


async def test_another_tenants_key_finds_nothing_of_acme(
    stack: Stack, tenant_keys: TenantKeys, playbook: str, service_trust: ServiceTrust
) -> None:
    keyword = (
        await stack.detector.CreateKeyword(
            detector_pb.CreateKeywordRequest(
                keyword=detector_pb.Keyword(
                    playbook_id=playbook,
                    phrase="Salesforce",
                    talking_point=call_pb2.TalkingPoint(title="acme's secret battle card"),
                )
            )
        )
    ).keyword
    with wave.open(str(SAMPLES / "sales_call.wav")) as wav:
        audio = wav.readframes(16000 * 8)

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(
            config=pb.CallConfig(audio_format=LINEAR16_16K, playbook_ids=[playbook])
        )
        for begin in range(0, len(audio), 3200):
            yield pb.StreamCallRequest(audio=audio[begin : begin + 3200])

    events = [r.event async for r in stack.gateway.StreamCall(requests())]
    session_id = events[0].session_id
    assert events[-1].status.state == call_pb2.CALL_STATE_ENDED

    globex = api_key(tenant_keys.globex)
    not_found = grpc.StatusCode.NOT_FOUND
    async with (
        open_channel(f"127.0.0.1:{stack.gateway_port}", credentials=globex) as g,
        open_channel(f"127.0.0.1:{stack.detector_port}", credentials=globex) as d,
        open_channel(f"127.0.0.1:{stack.notifier_port}", credentials=globex) as n,
    ):
        gateway = gateway_service_pb2_grpc.GatewayServiceStub(g)
        detector = detector_service_pb2_grpc.PlaybookServiceStub(d)
        notifier = notifier_service_pb2_grpc.SubscriberServiceStub(n)

        # Sessions.
        assert await denied(gateway.GetSession(pb.GetSessionRequest(session_id=session_id))) == (
            not_found
        )
        assert await denied(
            gateway.GetTranscript(pb.GetTranscriptRequest(session_id=session_id))
        ) == (not_found)
        assert await denied(
            gateway.ExportTranscript(pb.ExportTranscriptRequest(session_id=session_id))
        ) == (not_found)
        assert await denied(
            gateway.GetCallSummary(pb.GetCallSummaryRequest(session_id=session_id))
        ) == (not_found)
        listed = await gateway.ListSessions(pb.ListSessionsRequest(page_size=1000))
        assert session_id not in {s.session_id for s in listed.sessions}

        # Events.
        subscription = notifier.Subscribe(notifier_pb.SubscribeRequest(session_id=session_id))
        assert await denied(_drain(subscription)) == not_found

        # Playbooks and keywords.
        assert await denied(
            detector.GetPlaybook(detector_pb.GetPlaybookRequest(playbook_id=playbook))
        ) == (not_found)
        assert await denied(
            detector.ExportPlaybook(detector_pb.ExportPlaybookRequest(playbook_id=playbook))
        ) == (not_found)
        assert await denied(
            detector.UpdatePlaybook(
                detector_pb.UpdatePlaybookRequest(
                    playbook=detector_pb.Playbook(playbook_id=playbook, display_name="mine now"),
                    update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
                )
            )
        ) == (not_found)
        assert await denied(
            detector.DeletePlaybook(
                detector_pb.DeletePlaybookRequest(playbook_id=playbook, force=True)
            )
        ) == (not_found)
        playbooks = await detector.ListPlaybooks(detector_pb.ListPlaybooksRequest(page_size=1000))
        assert playbook not in {p.playbook_id for p in playbooks.playbooks}
        keyword_id = keyword.keyword_id
        assert await denied(
            detector.GetKeyword(detector_pb.GetKeywordRequest(keyword_id=keyword_id))
        ) == (not_found)
        assert await denied(
            detector.UpdateKeyword(
                detector_pb.UpdateKeywordRequest(
                    keyword=detector_pb.Keyword(keyword_id=keyword_id, phrase="stolen"),
                    update_mask=field_mask_pb2.FieldMask(paths=["phrase"]),
                )
            )
        ) == (not_found)
        assert await denied(
            detector.DeleteKeyword(detector_pb.DeleteKeywordRequest(keyword_id=keyword_id))
        ) == (not_found)
        assert await denied(
            detector.CreateKeyword(
                detector_pb.CreateKeywordRequest(
                    keyword=detector_pb.Keyword(
                        playbook_id=playbook,
                        phrase="planted",
                        talking_point=call_pb2.TalkingPoint(title="x"),
                    )
                )
            )
        ) == (not_found)
        listed_keywords = await detector.ListKeywords(
            detector_pb.ListKeywordsRequest(playbook_id=playbook, query="Salesforce")
        )
        assert list(listed_keywords.keywords) == []
        # The gateway serving a caller of globex cannot detect with acme's playbook either.
        as_globex = service_trust.as_gateway("globex", "detector")
        async with open_channel(f"127.0.0.1:{stack.detector_port}", credentials=as_globex) as dc:
            detect = detector_service_pb2_grpc.DetectionServiceStub(dc).Detect(
                iter(
                    [
                        detector_pb.DetectRequest(
                            config=detector_pb.DetectConfig(session_id="x", playbook_ids=[playbook])
                        )
                    ]
                )
            )
            assert await denied(_drain(detect)) == not_found
        # The same playbook id is free for globex: its own, separate playbook.
        own = await detector.CreatePlaybook(
            detector_pb.CreatePlaybookRequest(playbook=detector_pb.Playbook(playbook_id=playbook))
        )
        assert own.playbook.keyword_count == 0

    # acme's data is untouched.
    mine = await stack.detector.GetKeyword(detector_pb.GetKeywordRequest(keyword_id=keyword_id))
    assert mine.keyword.phrase == "Salesforce"
    session = await stack.gateway.GetSession(pb.GetSessionRequest(session_id=session_id))
    assert session.session.state == call_pb2.CALL_STATE_ENDED


async def _drain(call: Any) -> list[Any]:
    return [item async for item in call]


async def test_no_api_key_reaches_the_logs(
    stack: Stack, tenant_keys: TenantKeys, capsys: pytest.CaptureFixture[str]
) -> None:
    """Logs name the tenant and the key's public id; the secret part of a key, valid or not,
    never appears, whichever service logs the call."""
    with wave.open(str(SAMPLES / "sales_call.wav")) as wav:
        audio = wav.readframes(16000 * 3)

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(config=pb.CallConfig(audio_format=LINEAR16_16K))
        for begin in range(0, len(audio), 3200):
            yield pb.StreamCallRequest(audio=audio[begin : begin + 3200])

    [_ async for _ in stack.gateway.StreamCall(requests())]
    wrong = tenant_keys.acme[:-6] + "WRONG1"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.gateway_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await gateway_service_pb2_grpc.GatewayServiceStub(channel).ListSessions(
                pb.ListSessionsRequest(), metadata=[("authorization", f"Bearer {wrong}")]
            )
    logged = capsys.readouterr().out
    assert "tenant=acme" in logged and f"key_id={tenant_keys.acme.split('_')[1]}" in logged
    for key in (tenant_keys.acme, wrong):
        assert key.split("_", 2)[2] not in logged
