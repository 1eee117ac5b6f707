from __future__ import annotations

from typing import TYPE_CHECKING

from callcue.call.v1 import call_pb2
from callcue.core.settings import Environment
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.gateway.call_session import Downstream
from callcue.gateway.live_call import MAX_HOTWORDS, LiveCalls
from callcue.gateway.running import RunningSessions
from callcue.gateway.settings import Settings

if TYPE_CHECKING:
    from callcue.core.testing import Stack


def gateway(stack: Stack, enabled: bool) -> LiveCalls:
    settings = Settings.from_env(
        Environment(
            {
                "DATABASE_URL": "postgresql://unused",
                "CALLCUE_HOTWORDS_FROM_PLAYBOOK": "true" if enabled else "false",
            }
        )
    )
    downstream = Downstream(transcriber=None, detector=stack.detector, notifier=None)  # type: ignore[arg-type]
    return LiveCalls(downstream, None, settings, RunningSessions(None))  # type: ignore[arg-type]


async def test_playbook_phrases_become_hotwords_when_enabled(stack: Stack, playbook: str) -> None:
    for index in range(MAX_HOTWORDS + 20):
        keyword = detector_pb.Keyword(
            playbook_id=playbook,
            phrase=f"Brand{index}",
            talking_point=call_pb2.TalkingPoint(title="t"),
        )
        await stack.detector.CreateKeyword(detector_pb.CreateKeywordRequest(keyword=keyword))
    hotwords = await gateway(stack, enabled=True)._hotwords([playbook])
    assert hotwords == [f"Brand{index}" for index in range(MAX_HOTWORDS)]
    assert await gateway(stack, enabled=False)._hotwords([playbook]) == []
