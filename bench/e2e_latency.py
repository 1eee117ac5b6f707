"""End-to-end talking-point latency: the whole system, as separate processes on real
PostgreSQL and Redis, with calls from ../shared/eval/hvb_calls streamed at real-time pace.

For every detection that the final transcript confirms: the time from the end of its
trigger's last word in the audio (the word's end time as the transcriber timed it) to
the talking point's first arrival (tentative or confirmed) at (a) the caller and (b) a
notifier subscriber of the call. Then the same with N calls at once: p50/p95 per N, the
CPU the four services used, and how long each call's last event came after its audio
ended (a system that falls behind real time shows it there).

    uv run python bench/e2e_latency.py ../shared/eval [--levels 1,2,3,4] [--plot bench/e2e.png]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
from detector_quality import load_playbook
from evaldata import Call, hvb_calls

from callcue.call.v1 import call_pb2
from callcue.cli import devstack
from callcue.core import api_keys, database, scopes
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key
from callcue.core.postgres import create_database, drop_database
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.detector.v1 import detector_service_pb2_grpc
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb
from callcue.notifier.v1 import notifier_service_pb2_grpc

CHUNK_SECONDS = 0.1
PHONE = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=8000, channel_count=1
)


@dataclass(frozen=True)
class Recording:
    """What one caller streams: an hvb call, or several joined into a longer one."""

    name: str
    pcm: bytes  # 8 kHz LINEAR16

    @classmethod
    def joined(cls, calls: list[Call]) -> Recording:
        pause = np.zeros(8000, dtype=np.float32)  # 1 s between the calls
        audio = np.concatenate([part for call in calls for part in (call.load(8000), pause)])
        pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
        return cls("+".join(call.name for call in calls), pcm)


@dataclass
class CallResult:
    name: str
    caller: list[float] = field(default_factory=list)
    subscriber: list[float] = field(default_factory=list)
    tail: float = 0.0  # last event after the end of the audio
    state: str = ""


def _seconds(value: object) -> float:
    return float(value.ToNanoseconds()) / 1e9  # type: ignore[attr-defined]


async def one_call(call: Recording, addresses: dict[str, str], key: str) -> CallResult:
    pcm = call.pcm
    chunk = int(8000 * 2 * CHUNK_SECONDS)
    result = CallResult(call.name)
    first_at: dict[str, tuple[float, float]] = {}  # detection id -> (arrival, word end)
    seen_by_subscriber: dict[str, float] = {}
    confirmed: set[str] = set()
    started = time.monotonic()
    audio_done = 0.0
    credentials = api_key(key)

    async def requests() -> AsyncIterator[pb.StreamCallRequest]:
        nonlocal audio_done
        config = pb.CallConfig(
            audio_format=PHONE, interim_results=True, playbook_ids=["hvb-bank"], title=call.name
        )
        yield pb.StreamCallRequest(config=config)
        for index, begin in enumerate(range(0, len(pcm), chunk)):
            await asyncio.sleep(max(0.0, started + index * CHUNK_SECONDS - time.monotonic()))
            yield pb.StreamCallRequest(audio=pcm[begin : begin + chunk])
        audio_done = time.monotonic()

    async def subscribe(session_id: str) -> None:
        async with open_channel(addresses["notifier"], credentials=credentials) as channel:
            stub = notifier_service_pb2_grpc.SubscriberServiceStub(channel)
            request = notifier_pb.SubscribeRequest(session_id=session_id)
            async for response in stub.Subscribe(request):
                if response.event.WhichOneof("event") == "detection":
                    seen_by_subscriber.setdefault(
                        response.event.detection.detection_id, time.monotonic()
                    )

    subscriber: asyncio.Task[None] | None = None
    last = started
    async with open_channel(addresses["gateway"], credentials=credentials) as channel:
        gateway = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        async for response in gateway.StreamCall(requests()):
            now = last = time.monotonic()
            event = response.event
            if subscriber is None:
                subscriber = asyncio.create_task(subscribe(event.session_id))
            if event.WhichOneof("event") == "detection":
                detection = event.detection
                first_at.setdefault(detection.detection_id, (now, _seconds(detection.end_offset)))
                if detection.state == call_pb2.DETECTION_STATE_CONFIRMED:
                    confirmed.add(detection.detection_id)
            elif event.WhichOneof("event") == "status":
                result.state = call_pb2.CallState.Name(event.status.state)
    if subscriber is not None:
        await asyncio.wait_for(subscriber, 30)
    for detection_id in confirmed:
        arrival, word_end = first_at[detection_id]
        result.caller.append(arrival - (started + word_end))
        if detection_id in seen_by_subscriber:
            result.subscriber.append(seen_by_subscriber[detection_id] - (started + word_end))
    result.tail = last - audio_done
    return result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


@dataclass
class Level:
    calls: int
    caller: list[float]
    subscriber: list[float]
    cores: float
    max_tail: float
    failed: int


async def run_level(
    concurrent: int, rounds: int, calls: list[Recording], addresses: dict[str, str], key: str,
    services: list[psutil.Process],
) -> Level:  # fmt: skip
    before = sum(sum(p.cpu_times()[:2]) for p in services)
    wall = time.monotonic()
    results: list[CallResult] = []
    for round_index in range(rounds):
        batch = [calls[(round_index * concurrent + i) % len(calls)] for i in range(concurrent)]
        results += await asyncio.gather(*(one_call(c, addresses, key) for c in batch))
    cores = (sum(sum(p.cpu_times()[:2]) for p in services) - before) / (time.monotonic() - wall)
    return Level(
        concurrent,
        [d for r in results for d in r.caller],
        [d for r in results for d in r.subscriber],
        cores,
        max(r.tail for r in results),
        sum(r.state != "CALL_STATE_ENDED" for r in results),
    )


@dataclass
class System:
    """The four services running as processes, with a tenant whose key can call them and
    the hvb bank playbook loaded for it."""

    addresses: dict[str, str]
    key: str
    services: list[psutil.Process]
    database_url: str

    async def new_key(self, tenant: str) -> str:
        pool = await database.open_pool(self.database_url, max_size=1)
        try:
            return (await api_keys.ApiKeyStore(pool).create_key(tenant, "bench", [scopes.ADMIN]))[1]
        finally:
            await pool.close()


@asynccontextmanager
async def running_system(postgres: str, redis: str, port_base: int) -> AsyncIterator[System]:
    name = f"callcue_e2e_{uuid.uuid4().hex[:8]}"
    url = await create_database(postgres, name)
    os.environ.update({"REDIS_URL": redis, "CALLCUE_LOG_LEVEL": "warning"})
    logs = Path(tempfile.mkdtemp(prefix="callcue-e2e-"))
    stack = devstack.DevStack(
        devstack.ports_from(port_base), url, service_keys=devstack.service_keys(logs)
    )
    processes = devstack.start_services(stack, logs)
    try:
        ready = await devstack.wait_until_serving(stack, processes)
        print(f"services up in {max(ready.values()):.1f} s (logs in {logs})")
        system = System(
            {service: stack.address(service) for service in devstack.SERVICES},
            "",
            [psutil.Process(p.process.pid) for p in processes],
            url,
        )
        system.key = await system.new_key("bench")
        credentials = api_key(system.key)
        async with open_channel(system.addresses["detector"], credentials=credentials) as channel:
            detector = detector_service_pb2_grpc.PlaybookServiceStub(channel)
            playbook = detector_pb.Playbook(playbook_id="hvb-bank")
            await detector.CreatePlaybook(detector_pb.CreatePlaybookRequest(playbook=playbook))
            for keyword in load_playbook():
                keyword.keyword_id, keyword.playbook_id = "", "hvb-bank"
                await detector.CreateKeyword(detector_pb.CreateKeywordRequest(keyword=keyword))
        yield system
    finally:
        devstack.stop_services(processes)
        await drop_database(postgres, name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--levels", default="1,2,3,4", help="concurrent calls to measure")
    parser.add_argument("--rounds-at-one", type=int, default=3, help="calls in turn at N=1")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL"
    )
    parser.add_argument("--port-base", type=int, default=53051)
    parser.add_argument("--plot", type=Path, help="write the N vs latency/CPU plot here (PNG)")
    parser.add_argument(
        "--join", type=int, default=1, help="join this many calls into each (longer) recording"
    )
    args = parser.parse_args()
    found = hvb_calls(args.eval_dir)
    calls = [
        Recording.joined([found[(start + i) % len(found)] for i in range(args.join)])
        for start in range(0, len(found), args.join)
    ]
    seconds = [len(call.pcm) / 16000 for call in calls]
    print(f"{len(calls)} recordings of {min(seconds):.0f} to {max(seconds):.0f} s")
    levels: list[Level] = []
    async with running_system(args.postgres, args.redis, args.port_base) as system:
        for concurrent in [int(n) for n in args.levels.split(",")]:
            rounds = args.rounds_at_one if concurrent == 1 else 1
            level = await run_level(
                concurrent, rounds, calls, system.addresses, system.key, system.services
            )
            levels.append(level)
            print(f"N={concurrent}: {row(level)}; {level.failed} calls not ENDED", flush=True)
    print(
        "\n| N calls | talking points | caller p50 | caller p95 | subscriber p50 | "
        "subscriber p95 | CPU (cores) | worst tail |\n|---|---|---|---|---|---|---|---|"
    )
    for level in levels:
        print(f"| {level.calls} | " + row(level).replace("; ", " | ") + " |")
    if args.plot:
        plot(levels, args.plot)


def row(level: Level) -> str:
    return "; ".join(
        [
            f"{len(level.caller)}",
            f"{statistics.median(level.caller):.2f} s",
            f"{percentile(level.caller, 0.95):.2f} s",
            f"{statistics.median(level.subscriber):.2f} s",
            f"{percentile(level.subscriber, 0.95):.2f} s",
            f"{level.cores:.2f}",
            f"{level.max_tail:.2f} s",
        ]
    )


def plot(levels: list[Level], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [level.calls for level in levels]
    figure, latency = plt.subplots(figsize=(7, 4))
    latency.plot(n, [statistics.median(v.caller) for v in levels], "o-", label="caller p50")
    latency.plot(n, [percentile(v.caller, 0.95) for v in levels], "o--", label="caller p95")
    latency.plot(n, [percentile(v.subscriber, 0.95) for v in levels], "x:", label="subscriber p95")
    latency.axhline(2.0, color="grey", linewidth=0.8)
    latency.set_xlabel("concurrent calls (hvb_calls, real-time pace)")
    latency.set_ylabel("talking point after the words (s)")
    latency.set_xticks(n)
    cpu = latency.twinx()
    cpu.bar(n, [level.cores for level in levels], alpha=0.15, color="k", label="CPU")
    cpu.set_ylabel("CPU of the four services (cores of 2)")
    latency.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"plot written to {path}")


if __name__ == "__main__":
    asyncio.run(main())
