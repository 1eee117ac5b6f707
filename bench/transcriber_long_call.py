"""One long call at real-time pace: does the transcriber's lag or memory grow?

The hvb_calls are joined end to end (and repeated) into one call of --minutes, streamed
through the transcriber service; word delays of the first and the last five minutes are
compared, and the process's resident memory is sampled as it goes.

    uv run python bench/transcriber_long_call.py ../shared/eval --minutes 30
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from pathlib import Path

import grpc
import numpy as np
import psutil
from evaldata import describe, hvb_calls
from transcriber_streaming import Result, stream_pcm

from callcue.core.auth import SingleTenant
from callcue.core.settings import Environment
from callcue.transcriber.app import build_server, load_engine
from callcue.transcriber.settings import Settings
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args()
    calls = hvb_calls(args.eval_dir)
    pieces: list[np.ndarray] = []
    total = 0
    while total < args.minutes * 60 * 8000:
        for call in calls:
            pieces.append(call.load())
            total += len(pieces[-1])
    audio = np.concatenate(pieces)[: int(args.minutes * 60 * 8000)]
    data = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()

    settings = Settings.from_env(
        Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_AUTH": "none"})
    )
    engine = load_engine(settings)
    server = build_server(settings, engine, SingleTenant())
    port = await server.start()
    process = psutil.Process()
    memory: list[tuple[float, float]] = []

    async def sample_memory() -> None:
        started = time.monotonic()
        while True:
            memory.append((time.monotonic() - started, process.memory_info().rss / 2**20))
            await asyncio.sleep(30)

    sampler = asyncio.create_task(sample_memory())
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        result: Result = await stream_pcm(
            pb_grpc.TranscriberServiceStub(channel), "long-call", data, 1, [], len(data) / 16000
        )
    used = resource.getrusage(resource.RUSAGE_SELF)
    sampler.cancel()
    await server.stop(0)
    seconds = len(data) / 16000
    window = 300.0
    early, late = [], []
    for arrived, segment in result.finals:
        for word in segment.words:
            end = word.end_offset.ToNanoseconds() / 1e9
            if end < window:
                early.append(arrived - end)
            elif end > seconds - window:
                late.append(arrived - end)
    print(f"one call of {seconds / 60:.1f} min ({len(pieces)} hvb calls joined), real-time pace")
    print(f"word delay to final, first 5 min: {describe(early)}")
    print(f"word delay to final, last 5 min:  {describe(late)}")
    print(f"last final {max(t for t, _ in result.finals) - seconds:.2f} s after the audio ended")
    cpu_used = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    print(f"CPU {cpu_used / seconds:.3f} CPU-s per audio s")
    print(
        "resident memory (MiB) every 5 min: "
        + ", ".join(f"{rss:.0f}" for t, rss in memory if int(t) % 300 < 30)
    )


if __name__ == "__main__":
    asyncio.run(main())
