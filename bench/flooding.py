"""Flooding: the memory of each service and an ordinary call's talking-point delays while
other clients abuse the gateway of the running system (separate processes, real PostgreSQL
and Redis, as in e2e_latency.py).

Phases, each with the same well-behaved calls (hvb_calls at real-time pace, one after the
other, a notifier subscriber on each):

  quiet   nothing else
  idle    --idle streams opened and never sent anything, reopened whenever the gateway
          closes one (it does, 10 s after a stream opens without a config)
  flood   --flooders callers of another tenant sending 30 minutes of audio as fast as the
          gateway takes it and never reading a response

Resident memory of every service is sampled every 0.25 s: its peak in each phase, and what
it holds 5 s after the phase.

    uv run python bench/flooding.py ../shared/eval [--idle 1000] [--flooders 3] [--calls 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil
from e2e_latency import PHONE, CallResult, Recording, one_call, percentile, running_system
from evaldata import hvb_calls

from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc

STREAMS_PER_CHANNEL = 100
MIB = 1024 * 1024


class MemoryWatch:
    """Peak resident memory of each service since the last ``reset``."""

    def __init__(self, services: dict[str, psutil.Process]) -> None:
        self._services = services
        self.peak: dict[str, int] = {}
        self.reset()

    def now(self) -> dict[str, int]:
        return {name: p.memory_info().rss for name, p in self._services.items()}

    def reset(self) -> None:
        self.peak = self.now()

    async def run(self) -> None:
        while True:
            for name, rss in self.now().items():
                self.peak[name] = max(self.peak[name], rss)
            await asyncio.sleep(0.25)


@dataclass
class Phase:
    name: str
    calls: list[CallResult]
    peak: dict[str, int]
    after: dict[str, int]
    notes: list[str] = field(default_factory=list)


async def idle_streams(
    address: str, key: str, count: int, stop: asyncio.Event, ended: Counter[str]
) -> None:
    """``count`` StreamCall streams that never send; each one the gateway ends is reopened."""

    async def never() -> AsyncIterator[pb.StreamCallRequest]:
        await stop.wait()
        return
        yield  # an async generator that yields nothing

    async def hold(stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
        while not stop.is_set():
            try:
                async for _ in stub.StreamCall(never()):
                    pass
                ended["OK"] += 1
            except grpc.aio.AioRpcError as error:
                ended[error.code().name] += 1

    async with contextlib.AsyncExitStack() as stack:
        holders = []
        for start in range(0, count, STREAMS_PER_CHANNEL):
            channel = await stack.enter_async_context(
                open_channel(address, credentials=api_key(key))
            )
            stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
            holders += [
                asyncio.create_task(hold(stub))
                for _ in range(min(STREAMS_PER_CHANNEL, count - start))
            ]
        await stop.wait()
        for task in holders:
            task.cancel()
        await asyncio.gather(*holders, return_exceptions=True)


async def unread_flooder(address: str, key: str, pcm: bytes, stop: asyncio.Event) -> float:
    """Sends ``pcm`` (8 kHz) as fast as the gateway takes it, never reads; returns the
    seconds of audio the gateway took before ``stop``."""
    taken = 0
    chunk = 8000 * 2  # 1 s

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        nonlocal taken
        yield pb.StreamCallRequest(config=pb.CallConfig(audio_format=PHONE, title="flood"))
        for begin in range(0, len(pcm), chunk):
            yield pb.StreamCallRequest(audio=pcm[begin : begin + chunk])
            taken += len(pcm[begin : begin + chunk])
        await stop.wait()

    async with open_channel(address, credentials=api_key(key)) as channel:
        call = gateway_service_pb2_grpc.GatewayServiceStub(channel).StreamCall(requests())
        await stop.wait()
        call.cancel()
    return taken / (8000 * 2)


async def run_phase(
    name: str,
    recordings: list[Recording],
    addresses: dict[str, str],
    key: str,
    memory: MemoryWatch,
    abuse: asyncio.Task[list[str]] | None,
    stop: asyncio.Event,
) -> Phase:
    memory.reset()
    await asyncio.sleep(5)  # let the abuse build up before the calls start
    results = [await one_call(recording, addresses, key) for recording in recordings]
    stop.set()
    notes = await abuse if abuse is not None else []
    peak = dict(memory.peak)
    await asyncio.sleep(5)
    return Phase(name, results, peak, memory.now(), notes)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--calls", type=int, default=2, help="ordinary calls per phase")
    parser.add_argument("--idle", type=int, default=1000, help="idle streams held open")
    parser.add_argument("--flooders", type=int, default=3, help="fast callers that never read")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL"
    )
    parser.add_argument("--port-base", type=int, default=54051)
    args = parser.parse_args()
    found = hvb_calls(args.eval_dir)
    recordings = [Recording.joined([call]) for call in found[: args.calls]]
    # Every call, four times over: about 30 minutes, more than a flooder can send in a phase.
    long_recording = Recording.joined(found * 4)

    async with running_system(args.postgres, args.redis, args.port_base) as system:
        names = ("gateway", "transcriber", "detector", "notifier")
        memory = MemoryWatch({name: system.processes()[name][0] for name in names})
        sampler = asyncio.create_task(memory.run())
        start = memory.now()
        flood_key = await system.new_key("flood")
        gateway = system.addresses["gateway"]
        phases = []

        stop = asyncio.Event()
        phases.append(
            await run_phase("quiet", recordings, system.addresses, system.key, memory, None, stop)
        )

        stop = asyncio.Event()

        async def idle() -> list[str]:
            ended: Counter[str] = Counter()
            await idle_streams(gateway, flood_key, args.idle, stop, ended)
            return [f"{args.idle} idle streams held; the gateway ended {dict(ended)}"]

        task = asyncio.create_task(idle())
        phases.append(
            await run_phase("idle", recordings, system.addresses, system.key, memory, task, stop)
        )

        stop = asyncio.Event()

        async def flood() -> list[str]:
            began = time.monotonic()
            taken = await asyncio.gather(
                *(
                    unread_flooder(gateway, flood_key, long_recording.pcm, stop)
                    for _ in range(args.flooders)
                )
            )
            wall = time.monotonic() - began
            return [
                f"{args.flooders} flooders; audio the gateway took from each: "
                + ", ".join(f"{s:.0f} s ({s / wall:.1f}x real time)" for s in taken)
            ]

        task = asyncio.create_task(flood())
        phases.append(
            await run_phase("flood", recordings, system.addresses, system.key, memory, task, stop)
        )
        sampler.cancel()

    print("\nresident memory at the start: " + _mib(start))
    print(
        "\n| phase | talking points | caller p50 | caller p95 | subscriber p95 | calls ENDED "
        "| peak memory (MiB) | 5 s later |\n|---|---|---|---|---|---|---|---|"
    )
    for phase in phases:
        caller = [d for r in phase.calls for d in r.caller]
        subscriber = [d for r in phase.calls for d in r.subscriber]
        ended = sum(r.state == "CALL_STATE_ENDED" for r in phase.calls)
        print(
            f"| {phase.name} | {len(caller)} | {statistics.median(caller):.2f} s "
            f"| {percentile(caller, 0.95):.2f} s | {percentile(subscriber, 0.95):.2f} s "
            f"| {ended}/{len(phase.calls)} | {_mib(phase.peak)} | {_mib(phase.after)} |"
        )
    for phase in phases:
        for note in phase.notes:
            print(f"{phase.name}: {note}")


def _mib(values: dict[str, int]) -> str:
    return ", ".join(f"{name} {rss / MIB:.0f}" for name, rss in values.items())


if __name__ == "__main__":
    asyncio.run(main())
