"""The live transcriber's policy on recordings, on a clock that skips its idle time.

A live stream decodes one thing at a time, so what it produces depends only on how much
audio has arrived when each decode starts and how long each decode takes. This drives
``LiveTranscription`` (no gRPC) with audio that arrives at real-time pace while a decode
runs, and at once while nothing does: the same decodes, on the same audio, as a real-time
stream on an idle machine, in a fraction of the time (one stream: about the CPU it uses per
audio second). For comparing policies quickly, one core each; the figures to report come
from ``transcriber_deletions.py`` and ``transcriber_streaming.py``, at real-time pace.

    uv run python bench/transcriber_replay.py ../shared/eval --earnings DIR \
        [--cases hvb,monologue,earnings] [--cache DIR] [--dump DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from evaldata import describe, wer
from faster_whisper import WhisperModel
from transcriber_deletions import (
    Outcome,
    Recording,
    inside,
    live_words,
    missing_runs,
    offline_words,
    recordings,
    speech_regions,
)
from transcriber_streaming import Result

from callcue.call.v1 import call_pb2
from callcue.core.log import configure_logging
from callcue.core.settings import Environment
from callcue.transcriber import stream as stream_module
from callcue.transcriber.app import load_engine
from callcue.transcriber.engine import Priority, SpeechEngine, resolve_model
from callcue.transcriber.settings import Settings
from callcue.transcriber.stages import STAGE_SECONDS
from callcue.transcriber.v1 import transcriber_service_pb2 as pb
from callcue.transcriber.whisper_decoder import DecodedWord, Hypothesis

CHUNK_SECONDS = 0.1


class CountingEngine:
    """The engine, counting decodes under way (so the clock knows when it may skip) and
    keeping what each decode heard and said, for ``--dump``."""

    def __init__(self, engine: SpeechEngine) -> None:
        self._engine = engine
        self.busy = 0
        self.decodes: list[dict[str, Any]] = []
        self.clock: VirtualClock | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def decode(
        self,
        audio: np.ndarray,
        *,
        language: str,
        prefix: Sequence[DecodedWord] = (),
        context: str = "",
        priority: Priority = Priority.FINAL,
        background: bool = False,
    ) -> Hypothesis | None:
        self.busy += 1
        began = self.clock.now() if self.clock else 0.0
        try:
            hypothesis = await self._engine.decode(
                audio,
                language=language,
                prefix=prefix,
                context=context,
                priority=priority,
                background=False,
            )
        finally:
            self.busy -= 1
        self.decodes.append(
            {
                "at": round(began, 3),
                "took": round((self.clock.now() if self.clock else 0.0) - began, 3),
                "kind": priority.name.lower(),
                "seconds": round(len(audio) / 16000, 2),
                "prefix": "".join(w.text for w in prefix),
                "words": [
                    [w.text, round(w.start, 2), round(w.end, 2), round(w.probability, 2)]
                    for w in (hypothesis.words if hypothesis else ())
                ],
                "no_speech": round(hypothesis.no_speech_probability, 3) if hypothesis else None,
                "log_probability": (
                    round(hypothesis.average_log_probability, 3) if hypothesis else None
                ),
            }
        )
        return hypothesis


class VirtualClock:
    """Wall time plus the idle time skipped."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self.skipped = 0.0

    def now(self) -> float:
        return time.monotonic() - self._started + self.skipped


async def replay(
    engine: CountingEngine, recording: Recording, settings: Settings, settle_seconds: float
) -> Result:
    data = (np.clip(recording.audio, -1, 1) * 32767).astype("<i2").tobytes()
    chunk = int(recording.rate * 2 * CHUNK_SECONDS)
    clock = VirtualClock()
    engine.clock = clock
    engine.decodes = []
    config = pb.StreamingConfig(
        audio_format=call_pb2.AudioFormat(
            encoding=call_pb2.AUDIO_ENCODING_LINEAR16,
            sample_rate_hertz=recording.rate,
            channel_count=1,
        ),
        interim_results=True,
        session_id=recording.name,
    )
    transcription = stream_module.LiveTranscription(
        engine,  # type: ignore[arg-type]
        config,
        end_of_utterance_ms=settings.end_of_utterance_ms,
        max_utterance_seconds=settings.max_utterance_seconds,
        partial_interval=settings.partial_interval,
        settle_seconds=settle_seconds,
    )

    async def audio() -> AsyncIterator[bytes]:
        for index, offset in enumerate(range(0, len(data), chunk)):
            due = index * CHUNK_SECONDS
            while clock.now() < due:
                # Let the stream take up what it was given before deciding it is idle.
                for _ in range(20):
                    await asyncio.sleep(0)
                if engine.busy == 0:
                    clock.skipped += max(0.0, due - clock.now())
                    break
                await asyncio.sleep(0.002)
            yield data[offset : offset + chunk]

    result = Result(None, recording.seconds)
    async for response in transcription.run(audio()):
        if response.HasField("segment"):
            now = clock.now()
            (result.finals if response.segment.is_final else result.partials).append(
                (now, response.segment)
            )
    return result


def decoding() -> float:
    """Seconds spent decoding so far (every stage, every kind)."""
    return sum(
        sample.value
        for metric in STAGE_SECONDS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["kind"] != "audio"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--earnings", type=Path, help="a copy of GeminiLn/EarningsCall_Dataset")
    parser.add_argument("--cases", default="hvb,monologue,earnings")
    parser.add_argument("--limit", type=int, help="only the first N hvb calls")
    parser.add_argument("--only", help="only recordings whose name contains this")
    parser.add_argument("--cache", type=Path, help="keep offline transcripts here")
    parser.add_argument("--dump", type=Path, help="write transcripts and decodes here")
    parser.add_argument(
        "--settle-seconds", type=float, default=8.0, help="where settled words cut an utterance"
    )
    args = parser.parse_args()
    configure_logging("warning", "json")
    settings = Settings.from_env(
        Environment(
            {
                # The transcriber's tuning from the environment (CALLCUE_...), as it would run.
                **{k: v for k, v in os.environ.items() if k.startswith("CALLCUE_")},
                "CALLCUE_HOST": "127.0.0.1",
                "CALLCUE_PORT": "0",
                "CALLCUE_AUTH": "none",
                "CALLCUE_WHISPER_WORKERS": "1",
            }
        )
    )
    stream_module.LiveTranscription.ahead_of_real_time = property(lambda self: False)  # type: ignore[method-assign,assignment]
    traced: list[dict[str, Any]] = []
    original_trace = stream_module._trace

    def trace(
        kind: str, channel: Any, utterance: Any, hypothesis: Any, *rest: Any, **kw: Any
    ) -> None:
        traced.append(
            {
                "kind": kind,
                "start": round(utterance.start_seconds, 2),
                "seconds": round(utterance.seconds, 2),
                "doubtful": utterance.doubtful,
                "committed": rest[0],
                "settled": rest[1],
                **kw,
            }
        )
        original_trace(kind, channel, utterance, hypothesis, *rest, **kw)

    stream_module._trace = trace  # type: ignore[assignment]
    model = None
    outcomes: dict[str, list[Outcome]] = {}
    for recording in recordings(args):
        if args.only and args.only not in recording.name:
            continue
        if model is None:
            model = WhisperModel(
                resolve_model(settings.model),
                device="cpu",
                compute_type=settings.compute_type,
                cpu_threads=2,  # as transcriber_deletions.py decodes offline
                local_files_only=True,
            )
        words, text = offline_words(model, recording, args.cache)
        outcome = Outcome(recording, words, text, regions=speech_regions(recording))
        outcomes.setdefault(recording.case, []).append(outcome)
    del model
    engine = CountingEngine(load_engine(settings))
    for case, group in outcomes.items():
        started, busy, audio = time.monotonic(), decoding(), 0.0
        delays: list[float] = []
        for outcome in group:
            outcome.live = await replay(engine, outcome.recording, settings, args.settle_seconds)
            audio += outcome.recording.seconds
            delays += outcome.live.delays()[1]
            outcome.missing = missing_runs(outcome.offline, live_words(outcome.live))
            outcome.inside_vad = sum(
                inside(word, outcome.regions) for run in outcome.missing for word in run
            )
            one = wer([outcome.recording.reference], [outcome.live.transcript()])
            print(
                f"  {outcome.recording.name}: live {one.wer * 100:.1f}% ({one.substitutions}/"
                f"{one.deletions}/{one.insertions}), {sum(map(len, outcome.missing))} missing",
                flush=True,
            )
            if args.dump:
                args.dump.mkdir(parents=True, exist_ok=True)
                name = outcome.recording.name.replace(" ", "_")
                (args.dump / f"{name}.decodes.jsonl").write_text(
                    "".join(json.dumps(d) + "\n" for d in engine.decodes)
                )
                (args.dump / f"{name}.trace.jsonl").write_text(
                    "".join(json.dumps(d) + "\n" for d in traced)
                )
                (args.dump / f"{name}.finals.jsonl").write_text(
                    "".join(
                        json.dumps(
                            {
                                "at": round(at, 3),
                                "words": [
                                    [
                                        w.text,
                                        round(w.start_offset.ToNanoseconds() / 1e9, 2),
                                        round(w.end_offset.ToNanoseconds() / 1e9, 2),
                                    ]
                                    for w in segment.words
                                ],
                            }
                        )
                        + "\n"
                        for at, segment in outcome.live.finals
                    )
                )
                (args.dump / f"{name}.offline.json").write_text(
                    json.dumps([[w.text, w.start, w.end] for w in outcome.offline])
                )
                (args.dump / f"{name}.reference.txt").write_text(outcome.recording.reference)
            traced.clear()
        references = [o.recording.reference for o in group]
        offline = wer(references, [o.offline_text for o in group])
        live = wer(references, [o.live.transcript() if o.live else "" for o in group])
        runs = [run for o in group for run in o.missing]
        print(
            f"== {case}: {len(group)} recording(s), {audio / 60:.1f} min; "
            f"offline {offline.wer * 100:.1f}% ({offline.substitutions}/{offline.deletions}/"
            f"{offline.insertions}), live {live.wer * 100:.1f}% ({live.substitutions}/"
            f"{live.deletions}/{live.insertions}); missing {sum(map(len, runs))} in "
            f"{len(runs)} runs, {sum(len(r) > 2 for r in runs)} of 3+; "
            f"final {describe(delays)}; decodes {(decoding() - busy) / audio:.3f} s per audio s, "
            f"{time.monotonic() - started:.0f} s",
            flush=True,
        )
    engine.close()


if __name__ == "__main__":
    asyncio.run(main())
