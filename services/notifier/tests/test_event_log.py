from __future__ import annotations

import asyncio

import pytest

from callcue.call.v1 import call_pb2
from callcue.notifier.event_log import FellBehind, MemoryEventLog, SequenceGap, UnknownSession

TENANT = "acme"


def transcript(session: str, sequence: int, text: str = "hello") -> call_pb2.CallEvent:
    return call_pb2.CallEvent(
        session_id=session,
        sequence=sequence,
        transcript=call_pb2.TranscriptSegment(text=text, is_final=True),
    )


def ended(session: str, sequence: int) -> call_pb2.CallEvent:
    return call_pb2.CallEvent(
        session_id=session,
        sequence=sequence,
        status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED),
    )


async def collect(log: MemoryEventLog, session: str, after: int) -> list[int]:
    return [event.sequence async for event in log.follow(TENANT, session, after)]


async def test_replays_then_follows_live_until_the_session_ends() -> None:
    log = MemoryEventLog(events_per_session=100, ended_sessions_kept=10)
    for sequence in (1, 2, 3):
        await log.append(TENANT, transcript("s", sequence))
    reader = asyncio.create_task(collect(log, "s", 1))
    await asyncio.sleep(0.01)
    await log.append(TENANT, transcript("s", 4))
    await log.append(TENANT, ended("s", 5))
    assert await asyncio.wait_for(reader, 1) == [2, 3, 4, 5]


async def test_duplicates_are_acknowledged_but_stored_once() -> None:
    log = MemoryEventLog(events_per_session=100, ended_sessions_kept=10)
    assert await log.append(TENANT, transcript("s", 1))
    assert not await log.append(TENANT, transcript("s", 1, "again"))
    await log.append(TENANT, ended("s", 2))
    assert await collect(log, "s", 0) == [1, 2]


async def test_a_gap_in_sequence_is_refused() -> None:
    log = MemoryEventLog(events_per_session=100, ended_sessions_kept=10)
    await log.append(TENANT, transcript("s", 1))
    with pytest.raises(SequenceGap, match="expected sequence 2, got 4"):
        await log.append(TENANT, transcript("s", 4))


async def test_unknown_session() -> None:
    log = MemoryEventLog(events_per_session=100, ended_sessions_kept=10)
    with pytest.raises(UnknownSession):
        await collect(log, "nope", 0)


async def test_a_reader_too_far_behind_is_told_where_to_resume() -> None:
    log = MemoryEventLog(events_per_session=100, ended_sessions_kept=10)
    for sequence in range(1, 400):
        await log.append(TENANT, transcript("s", sequence))
    with pytest.raises(FellBehind, match="resubscribe") as behind:
        await collect(log, "s", 0)
    assert behind.value.oldest > 1
    await log.append(TENANT, ended("s", 400))
    assert (await collect(log, "s", behind.value.oldest - 1))[-1] == 400


async def test_old_ended_sessions_are_forgotten() -> None:
    log = MemoryEventLog(events_per_session=100, ended_sessions_kept=2)
    for session in ("a", "b", "c"):
        await log.append(TENANT, ended(session, 1))
    with pytest.raises(UnknownSession):
        await collect(log, "a", 0)
    assert await collect(log, "c", 0) == [1]
