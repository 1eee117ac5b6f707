"""A session's writes: in order, retried while the database is away, never started by
building the writer."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from callcue.call.v1 import call_pb2
from callcue.gateway.session_writer import DatabaseBacklog, SessionWriter


class FlakyStore:
    """Stands in for SessionStore: the first ``outage`` writes find the database away."""

    def __init__(self, outage: int = 0, refuse: str = "") -> None:
        self.outage = outage
        self.refuse = refuse
        self.written: list[str] = []

    async def _write(self, what: str) -> None:
        if self.outage:
            self.outage -= 1
            raise psycopg.OperationalError("the server is restarting")
        if what == self.refuse:
            raise psycopg.errors.CheckViolation("a row the database will never take")
        self.written.append(what)

    async def add_segment(self, session_id: str, segment: call_pb2.TranscriptSegment) -> None:
        await self._write(segment.text)

    async def add_detection(self, session_id: str, detection: call_pb2.Detection) -> None:
        await self._write(detection.detection_id)

    async def finish(self, session_id: str, state: int, audio_seconds: float, error: str) -> None:
        await self._write("finished")


def writer(store: FlakyStore, limit: int = 100) -> SessionWriter:
    return SessionWriter(store, "s-1", limit=limit)  # type: ignore[arg-type]


async def test_writes_wait_for_the_database_and_land_in_order() -> None:
    store = FlakyStore(outage=3)
    session = writer(store)
    session.start()
    for text in ("one", "two"):
        session.add_segment(call_pb2.TranscriptSegment(text=text))
    session.add_detection(call_pb2.Detection(detection_id="d-1"))
    await asyncio.wait_for(session.finish(call_pb2.CALL_STATE_ENDED, 1.0, ""), timeout=10)
    assert store.written == ["one", "two", "d-1", "finished"]


async def test_a_write_the_database_refuses_is_dropped_and_the_rest_kept() -> None:
    store = FlakyStore(refuse="bad")
    session = writer(store)
    session.start()
    for text in ("one", "bad", "three"):
        session.add_segment(call_pb2.TranscriptSegment(text=text))
    await asyncio.wait_for(session.finish(call_pb2.CALL_STATE_ENDED, 1.0, ""), timeout=10)
    assert store.written == ["one", "three", "finished"]


async def test_building_a_writer_starts_nothing_and_finishing_stores_anyway() -> None:
    store = FlakyStore()
    session = writer(store)
    session.add_segment(call_pb2.TranscriptSegment(text="one"))
    await asyncio.sleep(0.05)
    assert store.written == []  # not started: nothing runs behind the caller's back
    await asyncio.wait_for(session.finish(call_pb2.CALL_STATE_FAILED, 0.0, "x"), timeout=10)
    assert store.written == ["one", "finished"]


async def test_too_many_waiting_writes_fail_the_call_instead_of_growing() -> None:
    session = writer(FlakyStore(outage=1_000), limit=3)
    session.start()
    for text in ("one", "two", "three"):
        session.add_segment(call_pb2.TranscriptSegment(text=text))
    with pytest.raises(DatabaseBacklog):
        for _ in range(5):
            session.add_segment(call_pb2.TranscriptSegment(text="more"))


async def test_a_session_ends_once() -> None:
    store = FlakyStore()
    session = writer(store)
    session.start()
    first = session.finish(call_pb2.CALL_STATE_ENDED, 1.0, "")
    assert session.finish(call_pb2.CALL_STATE_FAILED, 0.0, "later") is first
    await asyncio.wait_for(first, timeout=10)
    assert store.written == ["finished"]
