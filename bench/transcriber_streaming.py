"""Streaming transcription of hvb_calls at real-time pace through the transcriber service.

Measures the WER of the final transcript, and for every final word the delay from the
end of the word in the audio (its Whisper timestamp) to its first partial and to its
final; the CPU time the service used per second of audio; and, with --streams N, whether
N concurrent calls keep up.

    uv run python bench/transcriber_streaming.py ../shared/eval [--streams 1] [--dual]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from evaldata import Call, describe, hotword_list, hvb_calls, normalise, wer

from callcue.call.v1 import call_pb2
from callcue.core.auth import SingleTenant
from callcue.core.settings import Environment
from callcue.transcriber.app import build_server, load_engine
from callcue.transcriber.settings import Settings
from callcue.transcriber.stages import STAGE_SECONDS
from callcue.transcriber.v1 import transcriber_service_pb2 as pb
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc

CHUNK_SECONDS = 0.1


@dataclass
class Result:
    call: Call | None
    audio_seconds: float
    finals: list[tuple[float, call_pb2.TranscriptSegment]] = field(default_factory=list)
    partials: list[tuple[float, call_pb2.TranscriptSegment]] = field(default_factory=list)

    def transcript(self, channel: int | None = None) -> str:
        ordered = sorted(
            (s.start_offset.ToNanoseconds(), s.channel, s.text)
            for _, s in self.finals
            if channel is None or s.channel == channel
        )
        return " ".join(text for _, _, text in ordered)

    def delays(self) -> tuple[list[float], list[float]]:
        """Per final word: (seconds to its first partial, seconds to its final). A word's
        first partial is the earliest partial of its channel with the same word ending
        within 0.6 s of it."""
        seen_as: dict[tuple[int, str], list[tuple[float, float]]] = {}
        for seen, partial in self.partials:
            for w in partial.words:
                key = (partial.channel, normalise(w.text))
                seen_as.setdefault(key, []).append((seen, w.end_offset.ToNanoseconds() / 1e9))
        to_partial, to_final = [], []
        for arrived, segment in self.finals:
            for word in segment.words:
                end = word.end_offset.ToNanoseconds() / 1e9
                to_final.append(arrived - end)
                earlier = [
                    seen
                    for seen, partial_end in seen_as.get(
                        (segment.channel, normalise(word.text)), ()
                    )
                    if seen < arrived and abs(partial_end - end) < 0.6
                ]
                to_partial.append(min(earlier, default=arrived) - end)
        return to_partial, to_final


def pcm(call: Call, dual: bool) -> tuple[bytes, int]:
    if dual:
        agent, caller = call.load(path=call.agent), call.load(path=call.caller)
        length = max(len(agent), len(caller))
        stereo = np.zeros((length, 2), dtype=np.float32)
        stereo[: len(agent), 0], stereo[: len(caller), 1] = agent, caller
        samples, channels = stereo, 2
    else:
        samples, channels = call.load(), 1
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes(), channels


async def stream(
    stub: pb_grpc.TranscriberServiceAsyncStub, call: Call, dual: bool, hotwords: list[str]
) -> Result:
    data, channels = pcm(call, dual)
    roles = [call_pb2.SPEAKER_ROLE_REP, call_pb2.SPEAKER_ROLE_PROSPECT] if dual else []
    seconds = len(data) / (16000 * channels)
    result = await stream_pcm(stub, call.name, data, channels, roles, seconds, hotwords)
    result.call = call
    return result


async def stream_pcm(
    stub: pb_grpc.TranscriberServiceAsyncStub,
    name: str,
    data: bytes,
    channels: int,
    roles: list[call_pb2.SpeakerRole.ValueType],
    seconds: float,
    hotwords: list[str] | None = None,
    *,
    sample_rate: int = 8000,
    speed: float = 1.0,
) -> Result:
    """Streams LINEAR16 audio in 100 ms chunks at real-time pace (``speed`` times it)."""
    config = pb.StreamingConfig(
        audio_format=call_pb2.AudioFormat(
            encoding=call_pb2.AUDIO_ENCODING_LINEAR16,
            sample_rate_hertz=sample_rate,
            channel_count=channels,
        ),
        channel_roles=roles,
        interim_results=True,
        session_id=name,
        hotwords=hotwords or [],
    )
    chunk = int(sample_rate * 2 * channels * CHUNK_SECONDS)
    result = Result(None, seconds)
    started = time.monotonic()

    async def requests() -> AsyncIterator[pb.StreamingTranscribeRequest]:
        yield pb.StreamingTranscribeRequest(config=config)
        for index, offset in enumerate(range(0, len(data), chunk)):
            due = started + index * CHUNK_SECONDS / speed
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            yield pb.StreamingTranscribeRequest(audio=data[offset : offset + chunk])

    async for response in stub.StreamingTranscribe(requests()):
        if response.HasField("segment"):
            now = (time.monotonic() - started) * speed
            (result.finals if response.segment.is_final else result.partials).append(
                (now, response.segment)
            )
    return result


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--streams", type=int, default=1, help="calls streamed at once")
    parser.add_argument("--dual", action="store_true", help="agent and caller as two channels")
    parser.add_argument("--limit", type=int, help="only the first N calls")
    parser.add_argument("--partial-interval", default="0.6", help="seconds of speech per decode")
    parser.add_argument("--threads", default="1", help="CPU threads per model call")
    parser.add_argument("--workers", default="2", help="model calls at once")
    parser.add_argument(
        "--short-window",
        default="15,20",
        help="seconds of the encoder windows for short audio, comma-separated (the "
        "service's default: 15,20), or 'off' for always 30 s",
    )
    parser.add_argument(
        "--hotwords",
        default="",
        help="comma-separated phrases sent as the stream's hotwords, or 'playbook' for those "
        "of bench/hvb_playbook.yaml; keyword recall is reported",
    )
    parser.add_argument(
        "--dump", type=Path, help="write each call's normalised reference and transcript here"
    )
    args = parser.parse_args()
    settings = Settings.from_env(
        Environment(
            {
                "CALLCUE_HOST": "127.0.0.1",
                "CALLCUE_PORT": "0",
                "CALLCUE_AUTH": "none",
                "CALLCUE_PARTIAL_INTERVAL_SECONDS": args.partial_interval,
                "CALLCUE_WHISPER_CPU_THREADS": args.threads,
                "CALLCUE_WHISPER_WORKERS": args.workers,
                "CALLCUE_WHISPER_SHORT_WINDOW_SECONDS": args.short_window,
            }
        )
    )
    engine = load_engine(settings)
    server = build_server(settings, engine, SingleTenant())
    port = await server.start()
    calls = hvb_calls(args.eval_dir, args.limit)
    hotwords = hotword_list(args.hotwords)
    results: list[Result] = []
    started_cpu, started = cpu_seconds(), time.monotonic()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.TranscriberServiceStub(channel)
        for first in range(0, len(calls), args.streams):
            batch = calls[first : first + args.streams]
            results += await asyncio.gather(
                *(stream(stub, call, args.dual, hotwords) for call in batch)
            )
    cpu, wall = cpu_seconds() - started_cpu, time.monotonic() - started
    await server.stop(0)
    engine.close()

    audio = sum(r.audio_seconds for r in results)
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        for result in results:
            assert result.call is not None
            name = result.call.name
            (args.dump / f"{name}.ref.txt").write_text(normalise(result.call.reference) + "\n")
            (args.dump / f"{name}.hyp.txt").write_text(normalise(result.transcript()) + "\n")
    score = wer([r.call.reference for r in results if r.call], [r.transcript() for r in results])
    to_partial, to_final = [], []
    for result in results:
        partial, final = result.delays()
        to_partial += partial
        to_final += final
    # Falling behind shows as finals that keep arriving long after the call's audio ended.
    tails = [max((t for t, _ in r.finals), default=0) - r.audio_seconds for r in results]
    mode = "dual-channel" if args.dual else "mixed mono"
    print(
        f"hvb_calls streaming, {len(results)} calls ({mode}, 8 kHz), {args.streams} at once, "
        f"{audio:.0f} s of audio in {wall:.0f} s, short window {args.short_window}"
    )
    print(
        f"WER of finals {score.wer * 100:.1f}% (sub {score.substitutions}, del {score.deletions}, "
        f"ins {score.insertions})"
    )
    if args.dual:
        # Words of two channels interleaved by time do not follow the mixed reference's
        # order where people overlap: score each channel against what its speaker said.
        calls_done = [r.call for r in results if r.call]
        speakers = {
            "agent": wer(
                [c.spoken_by("AGENT") for c in calls_done], [r.transcript(0) for r in results]
            ),
            "caller": wer(
                [c.spoken_by("CALLER") for c in calls_done], [r.transcript(1) for r in results]
            ),
            "both": wer(
                [c.spoken_by(s) for s in ("AGENT", "CALLER") for c in calls_done],
                [r.transcript(n) for n in (0, 1) for r in results],
            ),
        }
        print(
            "WER per speaker's channel: "
            + ", ".join(
                f"{name} {o.wer * 100:.1f}% (sub {o.substitutions}, del {o.deletions}, "
                f"ins {o.insertions})"
                for name, o in speakers.items()
            )
        )
    print(f"word delay to first partial: {describe(to_partial)}")
    print(f"word delay to final:         {describe(to_final)}")
    if hotwords:
        found = expected = 0
        for result in results:
            assert result.call is not None
            reference, hypothesis = normalise(result.call.reference), normalise(result.transcript())
            for phrase in hotwords:
                wanted = normalise(phrase)
                count = f" {reference} ".count(f" {wanted} ")
                expected += count
                found += min(count, f" {hypothesis} ".count(f" {wanted} "))
        print(f"keyword recall {found}/{expected} for {len(hotwords)} hotwords")
    print(profile(cpu, audio))
    print(
        f"CPU {cpu / audio:.3f} CPU-s per audio s (all streams), "
        f"last final {max(tails):.2f} s after the end of its call at worst, "
        f"partials skipped under load {engine.skipped_partials}"
    )


def profile(cpu: float, audio: float) -> str:
    """Where the service's time went, per second of audio: each stage of each kind of
    decode, reading audio, and the rest of the CPU (gRPC, protobuf, the event loop)."""
    stages: dict[tuple[str, str], float] = {}
    for metric in STAGE_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.value:
                stages[(sample.labels["kind"], sample.labels["stage"])] = sample.value
    kinds = sorted({kind for kind, _ in stages})
    lines = ["time per audio second, by kind and stage (s):"]
    for kind in kinds:
        parts = {stage: value for (k, stage), value in stages.items() if k == kind}
        lines.append(
            f"  {kind:9} {sum(parts.values()) / audio:.3f}: "
            + ", ".join(f"{stage} {value / audio:.3f}" for stage, value in sorted(parts.items()))
        )
    rest = cpu - sum(stages.values())
    lines.append(f"  other (gRPC, protobuf, event loop; CPU less the above) {rest / audio:.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    asyncio.run(main())
