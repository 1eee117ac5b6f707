"""End-to-end latency and capacity: the whole system, as separate processes on real
PostgreSQL and Redis, with calls from ../shared/eval/hvb_calls streamed at real-time pace.

For every final word, the time from its end in the audio (as the transcriber timed it) to
its final transcript at the caller; for every detection that the final transcript
confirms, the time from the end of its trigger's last word to the talking point's first
arrival (tentative or confirmed) at (a) the caller and (b) a notifier subscriber. With N
calls at once (started ``--stagger`` seconds apart): p50/p95 per N, the CPU each service
used (the transcriber's per second of audio), partials per minute of audio (thinned
under load), calls refused (RESOURCE_EXHAUSTED), and how long each call's last event came
after its audio ended (a system that falls behind real time shows it there).

``--transcribers 2`` runs two transcriber processes, each pinned to one core (taskset)
with one worker, behind the gateway's round robin as in production; ``--kill-after S``
then kills one of them S seconds into the last level and counts the words the calls it
carried lost against the same calls at that level without the kill.

    uv run python bench/e2e_latency.py ../shared/eval [--levels 1,2,4,8] [--plot FILE]
    uv run python bench/e2e_latency.py ../shared/eval --transcribers 2 --levels 8 --kill-after 30
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import difflib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
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
    finals: list[float] = field(default_factory=list)  # per final word: seconds after its end
    words: list[str] = field(default_factory=list)  # the final transcript, word by word
    partials: int = 0
    audio_seconds: float = 0.0
    refused: bool = False


def _seconds(value: object) -> float:
    return float(value.ToNanoseconds()) / 1e9  # type: ignore[attr-defined]


async def one_call(
    call: Recording, addresses: dict[str, str], key: str, delay: float = 0.0
) -> CallResult:
    await asyncio.sleep(delay)
    pcm = call.pcm
    chunk = int(8000 * 2 * CHUNK_SECONDS)
    result = CallResult(call.name, audio_seconds=len(pcm) / 16000)
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

    def observe(event: call_pb2.CallEvent) -> float:
        now = time.monotonic()
        kind = event.WhichOneof("event")
        if kind == "transcript":
            if event.transcript.is_final:
                for word in event.transcript.words:
                    result.finals.append(now - (started + _seconds(word.end_offset)))
                    result.words.append(word.text.lower().strip(".,?!"))
            else:
                result.partials += 1
        elif kind == "detection":
            detection = event.detection
            first_at.setdefault(detection.detection_id, (now, _seconds(detection.end_offset)))
            if detection.state == call_pb2.DETECTION_STATE_CONFIRMED:
                confirmed.add(detection.detection_id)
        elif kind == "status":
            result.state = call_pb2.CallState.Name(event.status.state)
        return now

    subscriber: asyncio.Task[None] | None = None
    last = started
    try:
        async with open_channel(addresses["gateway"], credentials=credentials) as channel:
            gateway = gateway_service_pb2_grpc.GatewayServiceStub(channel)
            async for response in gateway.StreamCall(requests()):
                last = observe(response.event)
                if subscriber is None:
                    subscriber = asyncio.create_task(subscribe(response.event.session_id))
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise
        result.refused, result.state = True, "REFUSED"
        if subscriber is not None:
            subscriber.cancel()
        return result
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
    results: list[CallResult]
    cores: dict[str, float]  # per service (transcribers summed), cores used on average
    transcriber_cpu: float  # CPU-seconds of the transcribers per second of audio
    killed_words_lost: int | None = None

    @property
    def finals(self) -> list[float]:
        return [d for r in self.results for d in r.finals]

    @property
    def caller(self) -> list[float]:
        return [d for r in self.results for d in r.caller]

    @property
    def subscriber(self) -> list[float]:
        return [d for r in self.results for d in r.subscriber]

    @property
    def taken(self) -> list[CallResult]:
        return [r for r in self.results if not r.refused]

    @property
    def max_tail(self) -> float:
        return max((r.tail for r in self.taken), default=float("nan"))

    @property
    def refused(self) -> int:
        return sum(r.refused for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.state not in ("CALL_STATE_ENDED", "REFUSED") for r in self.results)

    @property
    def partials_per_minute(self) -> float:
        audio = sum(r.audio_seconds for r in self.taken)
        return 60 * sum(r.partials for r in self.taken) / audio if audio else float("nan")


def cpu_of(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            total += sum(process.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


async def run_level(
    concurrent: int,
    rounds: int,
    calls: list[Recording],
    system: System,
    stagger: float,
    kill_after: float | None = None,
) -> Level:
    services = system.processes()
    before = {name: cpu_of(group) for name, group in services.items()}
    wall = time.monotonic()
    results: list[CallResult] = []
    for round_index in range(rounds):
        batch = [calls[(round_index * concurrent + i) % len(calls)] for i in range(concurrent)]
        calling = asyncio.gather(
            *(
                one_call(c, system.addresses, system.key, delay=i * stagger)
                for i, c in enumerate(batch)
            )
        )
        if kill_after is not None:
            await asyncio.sleep(kill_after)
            system.kill_a_transcriber()
        results += await calling
    seconds = time.monotonic() - wall
    used = {name: cpu_of(group) - before[name] for name, group in services.items()}
    audio = sum(r.audio_seconds for r in results if not r.refused)
    return Level(
        concurrent,
        results,
        {name: value / seconds for name, value in used.items()},
        used["transcriber"] / audio if audio else float("nan"),
    )


@dataclass
class System:
    """The services running as processes, with a tenant whose key can call them and the
    hvb bank playbook loaded for it."""

    addresses: dict[str, str]
    key: str
    services: list[devstack.ServiceProcess]
    database_url: str

    def processes(self) -> dict[str, list[psutil.Process]]:
        grouped: dict[str, list[psutil.Process]] = {}
        for running in self.services:
            grouped.setdefault(running.name, []).append(psutil.Process(running.process.pid))
        return grouped

    def kill_a_transcriber(self) -> None:
        """Kills the first transcriber still running, abruptly (SIGKILL), mid-call."""
        for running in self.services:
            if running.name == "transcriber" and running.process.poll() is None:
                running.process.kill()
                print(f"killed transcriber process {running.process.pid}", flush=True)
                return

    async def new_key(self, tenant: str) -> str:
        pool = await database.open_pool(self.database_url, max_size=1)
        try:
            return (await api_keys.ApiKeyStore(pool).create_key(tenant, "bench", [scopes.ADMIN]))[1]
        finally:
            await pool.close()


@asynccontextmanager
async def running_system(
    postgres: str, redis: str, port_base: int, transcribers: int = 1
) -> AsyncIterator[System]:
    """The services on real PostgreSQL and Redis; with ``transcribers`` above one, that
    many transcriber processes, each pinned to its own core with one worker, behind the
    gateway's round robin."""
    name = f"callcue_e2e_{uuid.uuid4().hex[:8]}"
    url = await create_database(postgres, name)
    os.environ["REDIS_URL"] = redis
    os.environ.setdefault("CALLCUE_LOG_LEVEL", "warning")
    logs = Path(tempfile.mkdtemp(prefix="callcue-e2e-"))
    stack = devstack.DevStack(
        devstack.ports_from(port_base), url, service_keys=devstack.service_keys(logs)
    )
    if transcribers == 1:
        processes = devstack.start_services(stack, logs)
        stacks = [stack] * len(processes)
    else:
        replicas = [
            dataclasses.replace(stack, ports={**stack.ports, "transcriber": port_base + 10 + i})
            for i in range(transcribers)
        ]
        addresses = ",".join(f"127.0.0.1:{r.ports['transcriber']}" for r in replicas)
        processes, stacks = [], []
        for index, replica in enumerate(replicas):
            processes += devstack.start_services(
                replica,
                logs / f"transcriber-{index}",
                ("transcriber",),
                environment={"CALLCUE_WHISPER_WORKERS": "1"},
                command_prefix=["taskset", "-c", str(index % (os.cpu_count() or 1))],
            )
            stacks.append(replica)
        rest = devstack.start_services(
            stack,
            logs,
            ("notifier", "detector", "gateway"),
            environment={"CALLCUE_TRANSCRIBER_ADDRESS": f"ipv4:{addresses}"},
        )
        processes += rest
        stacks += [stack] * len(rest)
    try:
        waited = [
            await devstack.wait_until_serving(serving, [running])
            for serving, running in zip(stacks, processes, strict=True)
        ]
        print(
            f"services up in {max(max(w.values()) for w in waited):.1f} s (logs in {logs})",
            flush=True,
        )
        system = System(
            {service: stack.address(service) for service in devstack.SERVICES},
            "",
            processes,
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


def lost_runs(before: list[str], after: list[str]) -> list[tuple[list[str], list[str]]]:
    """Stretches where ``after`` lacks three or more words of ``before`` (a run of one or
    two is as likely a different decode of the same speech): the words of each, both ways."""
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    return [
        (before[i1:i2], after[j1:j2])
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag in ("replace", "delete") and (i2 - i1) - (j2 - j1) > 2
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--levels", default="1,2,3,4", help="concurrent calls to measure")
    parser.add_argument("--rounds-at-one", type=int, default=3, help="calls in turn at N=1")
    parser.add_argument(
        "--stagger", type=float, default=2.0, help="seconds between the starts of a level's calls"
    )
    parser.add_argument("--transcribers", type=int, default=1, help="transcriber processes")
    parser.add_argument(
        "--kill-after",
        type=float,
        help="kill a transcriber this many seconds into a rerun of the last level",
    )
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
    async with running_system(
        args.postgres, args.redis, args.port_base, args.transcribers
    ) as system:
        for concurrent in [int(n) for n in args.levels.split(",")]:
            rounds = args.rounds_at_one if concurrent == 1 else 1
            level = await run_level(concurrent, rounds, calls, system, args.stagger)
            levels.append(level)
            print(f"N={concurrent}: {row(level)}", flush=True)
        if args.kill_after is not None:
            last = levels[-1]
            killed = await run_level(
                last.calls, 1, calls, system, args.stagger, kill_after=args.kill_after
            )
            killed.killed_words_lost = 0
            for index, (before, after) in enumerate(zip(last.results, killed.results, strict=True)):
                for said, heard in lost_runs(before.words, after.words):
                    killed.killed_words_lost += len(said) - len(heard)
                    print(f"call {index}: {' '.join(said)!r} -> {' '.join(heard)!r}", flush=True)
            levels.append(killed)
            print(f"N={killed.calls}, one transcriber killed: {row(killed)}", flush=True)
    print(
        "\n| N calls | final p50 | final p95 | talking point p50 | talking point p95 | "
        "subscriber p95 | transcriber CPU-s per audio s | cores (transcriber / all) | "
        "partials per min | worst tail | refused |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for level in levels:
        print(f"| {level.calls} | " + row(level).replace("; ", " | ") + " |")
    if args.plot:
        plot(levels, args.plot)


def row(level: Level) -> str:
    def p50(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s" if values else "-"

    def p95(values: list[float]) -> str:
        return f"{percentile(values, 0.95):.2f} s" if values else "-"

    cells = [
        p50(level.finals),
        p95(level.finals),
        p50(level.caller),
        p95(level.caller),
        p95(level.subscriber),
        f"{level.transcriber_cpu:.3f}",
        f"{level.cores['transcriber']:.2f} / {sum(level.cores.values()):.2f}",
        f"{level.partials_per_minute:.0f}",
        f"{level.max_tail:.2f} s",
        f"{level.refused}" + (f" ({level.failed} failed)" if level.failed else ""),
    ]
    if level.killed_words_lost is not None:
        cells[-1] += f"; words lost to the kill: {level.killed_words_lost}"
    return "; ".join(cells)


def plot(levels: list[Level], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [level for level in levels if level.killed_words_lost is None]
    n = [level.calls for level in levels]
    figure, latency = plt.subplots(figsize=(7, 4))
    latency.plot(n, [statistics.median(v.finals) for v in levels], "o-", label="final word p50")
    latency.plot(n, [percentile(v.finals, 0.95) for v in levels], "o--", label="final word p95")
    latency.plot(n, [percentile(v.caller, 0.95) for v in levels], "x:", label="talking point p95")
    latency.axhline(2.0, color="grey", linewidth=0.8)
    latency.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    latency.set_xlabel("concurrent calls (hvb_calls, real-time pace)")
    latency.set_ylabel("seconds after the words")
    latency.set_xticks(n)
    cpu = latency.twinx()
    cpu.bar(n, [sum(level.cores.values()) for level in levels], alpha=0.15, color="k")
    cpu.set_ylabel("CPU of the services (cores of 2)")
    cpu.set_ylim(0, 2.2)
    latency.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"plot written to {path}")


if __name__ == "__main__":
    asyncio.run(main())
