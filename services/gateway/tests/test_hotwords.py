"""A call's hotwords: what its playbooks listen for, decided by the detector once, when the
call's Detect stream opens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcue.call.v1 import call_pb2
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.gateway.call_session import CallSession

if TYPE_CHECKING:
    from callcue.core.testing import Stack

MAX_VOCABULARY = 50


async def test_the_detector_sends_the_calls_vocabulary_as_its_stream_opens(
    stack: Stack, playbook: str
) -> None:
    for index in range(MAX_VOCABULARY + 20):
        keyword = detector_pb.Keyword(
            playbook_id=playbook,
            phrase=f"Brand{index}",
            talking_point=call_pb2.TalkingPoint(title="t", priority=1 if index == 60 else 0),
        )
        await stack.detector.CreateKeyword(detector_pb.CreateKeywordRequest(keyword=keyword))
    downstream = stack.internal
    call = CallSession("hotwords-1", [playbook], downstream, store=None)  # type: ignore[arg-type]
    await call.start("call started")
    try:
        hotwords = await call.vocabulary()
    finally:
        await call.close("test over")
    # The most important first, then in the order they were made, at most 50.
    assert hotwords == ["Brand60", *(f"Brand{index}" for index in range(MAX_VOCABULARY - 1))]


async def test_without_a_detector_the_call_goes_on_without_hotwords(stack: Stack) -> None:
    downstream = stack.internal
    call = CallSession("hotwords-2", ["no-such-playbook"], downstream, store=None)  # type: ignore[arg-type]
    await call.start("call started")
    try:
        assert await call.vocabulary(patience=5) == []  # NOT_FOUND from the detector: at once
    finally:
        await call.close("test over")
