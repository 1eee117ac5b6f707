"""`callcue watch` across a notifier restart: it reconnects and resumes after the last event it
showed, so the person watching sees every event once, in order."""

from __future__ import annotations

import asyncio
import io

import grpc
import pytest

from callcue.call.v1 import call_pb2
from callcue.cli.text_view import CallReport
from callcue.cli.watch import watch_session
from callcue.core.auth import SingleTenant
from callcue.core.server import GrpcServer
from callcue.core.settings import Environment
from callcue.notifier.app import build_server
from callcue.notifier.event_log import MemoryEventLog
from callcue.notifier.settings import Settings

TENANT = "default"
SESSION = "watched-session"


class Recorder:
    """A CallView that keeps what it was shown."""

    def __init__(self) -> None:
        self.report = CallReport()
        self.sequences: list[int] = []
        self.connections: list[str] = []
        self.seen = asyncio.Event()

    def begin(self, started: float) -> None: ...

    def show(self, event: call_pb2.CallEvent) -> None:
        self.sequences.append(event.sequence)
        self.report.events += 1
        if event.HasField("status"):
            self.report.final_state = call_pb2.CallState.Name(event.status.state)
        self.seen.set()

    def connection(self, state: str, detail: str = "") -> None:
        self.connections.append(state)

    def close(self) -> None: ...


def event(sequence: int) -> call_pb2.CallEvent:
    if sequence == 1:
        return call_pb2.CallEvent(
            session_id=SESSION,
            sequence=1,
            status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_ACTIVE, message="call started"),
        )
    return call_pb2.CallEvent(
        session_id=SESSION,
        sequence=sequence,
        transcript=call_pb2.TranscriptSegment(text=f"word {sequence}", is_final=True),
    )


def ended(sequence: int) -> call_pb2.CallEvent:
    return call_pb2.CallEvent(
        session_id=SESSION,
        sequence=sequence,
        status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED, message="call ended"),
    )


@pytest.fixture
async def log() -> MemoryEventLog:
    return MemoryEventLog(1000, 10)


async def notifier(log: MemoryEventLog, port: int = 0) -> GrpcServer:
    env = Environment(
        {"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": str(port), "CALLCUE_AUTH": "none"}
    )
    server = build_server(Settings.from_env(env), log, SingleTenant(TENANT))
    await server.start()
    await server.set_serving()
    return server


async def wait_for(recorder: Recorder, count: int) -> None:
    async def until() -> None:
        while len(recorder.sequences) < count:
            recorder.seen.clear()
            await recorder.seen.wait()

    await asyncio.wait_for(until(), 10)


async def test_watch_resumes_after_the_notifier_restarts_without_loss_or_repeat(
    log: MemoryEventLog,
) -> None:
    first = await notifier(log)
    port = first.port
    for sequence in range(1, 6):
        await log.append(TENANT, event(sequence))
    recorder, err = Recorder(), io.StringIO()

    def channel() -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"127.0.0.1:{port}")

    watching = asyncio.create_task(watch_session(channel, SESSION, recorder, err=err))
    await wait_for(recorder, 5)

    await first.stop(0)  # the replica goes away mid-call...
    for sequence in range(6, 9):  # ...while the call goes on (the log is Redis in production)
        await log.append(TENANT, event(sequence))
    second = await notifier(log, port)
    try:
        await wait_for(recorder, 8)
        await log.append(TENANT, event(9))
        await log.append(TENANT, ended(10))
        await asyncio.wait_for(watching, 10)
    finally:
        await second.stop(0)
    assert recorder.sequences == list(range(1, 11))
    assert recorder.report.final_state == "CALL_STATE_ENDED"
    assert recorder.connections[0] == "connecting" and "reconnecting" in recorder.connections
    assert "connection lost" in err.getvalue()
