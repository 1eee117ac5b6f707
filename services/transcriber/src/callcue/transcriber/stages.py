"""Where the transcriber's time goes: each stage of a decode, and of reading audio.

Seconds of wall-clock time on the thread doing the work. A decode runs on one worker with
its own CPU threads and reading audio on the event loop, so on a machine that is not
oversubscribed these are CPU seconds; what the process used beyond their sum is gRPC,
protobuf and the event loop (``bench/transcriber_streaming.py`` reports both).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import prometheus_client

STAGE_SECONDS = prometheus_client.Counter(
    "callcue_transcriber_stage_seconds_total",
    "Seconds spent per stage: decodes (features, encoder, search, alignment) by the kind "
    "of decode, and reading audio (resampling, vad).",
    ["stage", "kind"],
)


class StageClock:
    """Adds up the time of each stage of one piece of work, then counts it under
    ``kind`` (a decode's priority, or "audio")."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began

    def count(self, kind: str) -> None:
        for name, seconds in self.seconds.items():
            STAGE_SECONDS.labels(name, kind).inc(seconds)
        self.seconds.clear()
