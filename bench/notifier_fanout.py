"""Notifier fan-out: delivery delay and lost events with many subscribers.

Starts one notifier as its own process (in memory, or on Redis with --redis), then:
1. one session, --subscribers subscribers (default 1,000), events published at --rate per
   second; 2. --sessions concurrent sessions (default 100), each with its own publisher and
   two subscribers. Subscribers run in --clients processes. Every event carries the time it
   was published; delay = time received - time published (same machine, same clock).

    uv run python bench/notifier_fanout.py [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import psutil

from callcue.call.v1 import call_pb2
from callcue.notifier.v1 import notifier_service_pb2 as pb
from callcue.notifier.v1 import notifier_service_pb2_grpc as pb_grpc

CHANNELS_PER_CLIENT = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def event(session: str, sequence: int, last: bool) -> call_pb2.CallEvent:
    sent = f"{time.time():.6f}"
    if last:
        return call_pb2.CallEvent(
            session_id=session,
            sequence=sequence,
            status=call_pb2.CallStatus(state=call_pb2.CALL_STATE_ENDED, message=sent),
        )
    return call_pb2.CallEvent(
        session_id=session,
        sequence=sequence,
        transcript=call_pb2.TranscriptSegment(text=sent, is_final=True),
    )


def sent_at(received: call_pb2.CallEvent) -> float:
    if received.HasField("status"):
        return float(received.status.message)
    return float(received.transcript.text)


async def publish(address: str, session: str, count: int, rate: float, start: float) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.PublisherServiceStub(channel)

        async def requests() -> AsyncIterator[pb.PublishRequest]:
            for sequence in range(1, count + 1):
                await asyncio.sleep(max(0.0, start + (sequence - 1) / rate - time.time()))
                yield pb.PublishRequest(event=event(session, sequence, sequence == count))

        async for _ in stub.Publish(requests()):
            pass


async def subscribe_all(
    address: str, sessions: list[str], per_session: int, warm_up: int, deadline: float
) -> tuple[list[float], int, int, list[int]]:
    channels = [grpc.aio.insecure_channel(address) for _ in range(CHANNELS_PER_CLIENT)]
    stubs = [pb_grpc.SubscriberServiceStub(channel) for channel in channels]
    delays: list[float] = []
    errors = 0
    stalled: list[int] = []  # the last sequence of each subscriber still open at the deadline

    async def follow(index: int, session: str) -> int:
        nonlocal errors
        received = 0
        expected = 1
        request = pb.SubscribeRequest(session_id=session)
        try:
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + deadline):
                for _ in range(50):  # the session may not exist yet: retry until it does
                    try:
                        async for response in stubs[index % len(stubs)].Subscribe(request):
                            if response.event.sequence > warm_up:
                                delays.append(time.time() - sent_at(response.event))
                            if response.event.sequence != expected:
                                errors += 1
                            expected = response.event.sequence + 1
                            received += 1
                        return received
                    except grpc.aio.AioRpcError as error:
                        if error.code() != grpc.StatusCode.NOT_FOUND:
                            errors += 1
                            return received
                        await asyncio.sleep(0.05)
        except TimeoutError:
            stalled.append(expected - 1)
        return received

    counts = await asyncio.gather(*(follow(i, s) for s in sessions for i in range(per_session)))
    for channel in channels:
        await channel.close()
    return delays, sum(counts), errors, stalled


def client_process(
    address: str, sessions: list[str], per_session: int, warm_up: int, deadline: float, out: object
) -> None:
    result = asyncio.run(subscribe_all(address, sessions, per_session, warm_up, deadline))
    out.put(result)  # type: ignore[attr-defined]


def run_scenario(
    notifier: psutil.Process,
    address: str,
    name: str,
    sessions: list[str],
    subscribers: int,
    clients: int,
    events: int,
    rate: float,
    warm_up: int,
) -> None:
    queue: multiprocessing.Queue[tuple[list[float], int, int, list[int]]] = multiprocessing.Queue()
    # A subscriber still open this long after the last event has missed the end of its call.
    deadline = 1.5 + 0.5 + events / rate + 30
    processes = []
    for client in range(clients):
        share = subscribers // clients + (1 if client < subscribers % clients else 0)
        if len(sessions) == 1:
            args = (address, sessions, share, warm_up, deadline, queue)
        else:
            args = (address, sessions[client::clients], subscribers, warm_up, deadline, queue)
        process = multiprocessing.Process(target=client_process, args=args)
        process.start()
        processes.append(process)
    time.sleep(1.5)  # subscribers connect (and retry NOT_FOUND until the first event)
    start = time.time() + 0.5

    async def publishers() -> None:
        await asyncio.gather(*(publish(address, s, events, rate, start) for s in sessions))

    cpu_before = notifier.cpu_times()
    asyncio.run(publishers())
    delays: list[float] = []
    received = errors = 0
    stalled: list[int] = []
    for _ in processes:
        part, got, bad, stuck = queue.get(timeout=deadline + 60)
        delays += part
        received += got
        errors += bad
        stalled += stuck
    for process in processes:
        process.join()
    cpu_after = notifier.cpu_times()
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    expected = events * (subscribers if len(sessions) == 1 else len(sessions) * subscribers)
    delays.sort()
    print(
        f"{name}: {received:,} of {expected:,} deliveries ({expected - received} lost, "
        f"{errors} out of order or failed); delay p50 {statistics.median(delays) * 1e3:.1f} ms, "
        f"p99 {delays[int(0.99 * (len(delays) - 1))] * 1e3:.1f} ms, "
        f"max {delays[-1] * 1e3:.1f} ms; notifier CPU {cpu / max(received, 1) * 1e6:.1f} µs "
        "per delivery"
    )
    if stalled:
        print(
            f"  {len(stalled)} subscribers never saw their call end; last sequences seen: "
            f"{sorted(set(stalled))[:20]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="", help="REDIS_URL for the notifier")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--events", type=int, default=100, help="events per session")
    parser.add_argument("--rate", type=float, default=10.0, help="events per second per session")
    parser.add_argument("--clients", type=int, default=2, help="subscriber processes")
    parser.add_argument(
        "--warm-up",
        type=int,
        default=10,
        help="events per session not timed: the first meet subscribers still connecting "
        "(and retrying until the session exists), which is not fan-out; all are counted",
    )
    args = parser.parse_args()
    port = free_port()
    env = {
        **os.environ,
        "CALLCUE_PORT": str(port),
        "CALLCUE_HOST": "127.0.0.1",
        # Subscribers retrying NOT_FOUND before the first event would log a warning each.
        "CALLCUE_LOG_LEVEL": "error",
        # Keys are checked once per subscription, not per event: not what is measured here.
        "CALLCUE_AUTH": "none",
        "CALLCUE_METRICS_PORT": "0",
    }
    if args.redis:
        env["REDIS_URL"] = args.redis
    notifier = subprocess.Popen([sys.executable, "-m", "callcue.notifier"], env=env)
    address = f"127.0.0.1:{port}"
    process = psutil.Process(notifier.pid)
    try:
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        where = f"Redis {args.redis}" if args.redis else "memory"
        print(
            f"one notifier process ({where}); {args.events} events per session at "
            f"{args.rate:g}/s; subscribers in {args.clients} processes"
        )
        run_scenario(
            process,
            address,
            f"1 session x {args.subscribers} subscribers",
            [f"fan-{uuid.uuid4().hex[:8]}"],
            args.subscribers,
            args.clients,
            args.events,
            args.rate,
            args.warm_up,
        )
        sessions = [f"many-{uuid.uuid4().hex[:8]}-{n}" for n in range(args.sessions)]
        run_scenario(
            process,
            address,
            f"{args.sessions} sessions x 2 subscribers",
            sessions,
            2,
            args.clients,
            args.events,
            args.rate,
            args.warm_up,
        )
    finally:
        notifier.terminate()
        notifier.wait(timeout=30)


if __name__ == "__main__":
    main()
