"""Notifier replicas as separate processes sharing the real Redis, behind a gateway that
publishes to one of them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from callcue.call.v1 import call_pb2
from callcue.core import database
from callcue.core.channel import open_channel
from callcue.core.settings import Environment
from callcue.gateway import app as gateway_app
from callcue.gateway.call_session import Downstream
from callcue.gateway.sessions import SessionStore
from callcue.gateway.settings import Settings as GatewaySettings
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb
from callcue.notifier.v1 import notifier_service_pb2_grpc
from callcue.transcriber.v1 import transcriber_service_pb2_grpc

if TYPE_CHECKING:
    from conftest import Stack

SAMPLES = Path(__file__).parents[3] / "samples"
REDIS_URL = os.environ.get("CALLCUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LINEAR16_16K = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000, channel_count=1
)


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    address: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serving(address: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


@pytest.fixture
def notifiers() -> Iterator[list[Replica]]:
    replicas = []
    for _ in range(2):
        port = free_port()
        env = {
            **os.environ,
            "CALLCUE_HOST": "127.0.0.1",
            "CALLCUE_PORT": str(port),
            "REDIS_URL": REDIS_URL,
            "CALLCUE_LOG_LEVEL": "warning",
        }
        process = subprocess.Popen([sys.executable, "-m", "callcue.notifier"], env=env)
        replicas.append(Replica(process, f"127.0.0.1:{port}"))
    deadline = time.monotonic() + 30
    while not all(serving(r.address) for r in replicas):
        assert time.monotonic() < deadline, "the notifier replicas did not start"
        time.sleep(0.1)
    yield replicas
    for replica in replicas:
        if replica.process.poll() is None:
            replica.process.send_signal(signal.SIGTERM)
            replica.process.wait(timeout=30)


async def test_a_subscriber_follows_a_call_on_another_replica_and_outlives_it(
    stack: Stack, database_url: str, notifiers: list[Replica]
) -> None:
    a, b = notifiers
    pool = await database.open_pool(database_url, max_size=2)
    transcriber = open_channel(f"127.0.0.1:{stack.transcriber_port}")
    notifier_a = open_channel(a.address)
    downstream = Downstream(
        transcriber=transcriber_service_pb2_grpc.TranscriberServiceStub(transcriber),
        detector=stack.detector,
        notifier=notifier_service_pb2_grpc.NotifierServiceStub(notifier_a),
    )
    env = Environment(
        {"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "DATABASE_URL": database_url}
    )
    gateway, _ = gateway_app.build_server(
        GatewaySettings.from_env(env), downstream, SessionStore(pool)
    )
    with wave.open(str(SAMPLES / "sales_call.wav")) as wav:
        sample_pcm = wav.readframes(wav.getnframes())
    port = await gateway.start()
    await gateway.set_serving()

    async def follow(session_id: str) -> tuple[list[call_pb2.CallEvent], bool]:
        """Subscribes on replica B; when B dies, resumes on A after the last event seen."""
        seen: list[call_pb2.CallEvent] = []
        killed = False
        for address in (b.address, a.address):
            async with grpc.aio.insecure_channel(address) as channel:
                stub = notifier_service_pb2_grpc.NotifierServiceStub(channel)
                after = seen[-1].sequence if seen else 0
                request = notifier_pb.SubscribeRequest(session_id=session_id, after_sequence=after)
                try:
                    async for response in stub.Subscribe(request):
                        seen.append(response.event)
                        if len(seen) == 5 and not killed:
                            b.process.kill()  # mid-call, without a chance to say goodbye
                            killed = True
                    return seen, killed
                except grpc.aio.AioRpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        return seen, killed

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        yield pb.StreamCallRequest(config=pb.CallConfig(audio_format=LINEAR16_16K))
        for start in range(0, len(sample_pcm), 3200):
            yield pb.StreamCallRequest(audio=sample_pcm[start : start + 3200])
            await asyncio.sleep(0.01)

    published: list[call_pb2.CallEvent] = []
    follower: asyncio.Task[tuple[list[call_pb2.CallEvent], bool]] | None = None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        client = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        async for response in client.StreamCall(requests()):
            published.append(response.event)
            if follower is None:
                follower = asyncio.create_task(follow(response.event.session_id))
    assert follower is not None
    followed, killed = await asyncio.wait_for(follower, 60)
    assert killed, "replica B was never killed: the test did not test a failover"
    assert [e.sequence for e in followed] == list(range(1, len(published) + 1))
    assert followed == published
    assert published[-1].status.state == call_pb2.CALL_STATE_ENDED

    await gateway.stop(0)
    await transcriber.close()
    await notifier_a.close()
    await pool.close()
