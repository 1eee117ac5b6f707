"""Words the live transcriber loses that offline decoding of the same audio keeps.

For each recording, the offline transcript is Whisper's own long-form decoding of the whole
file (faster-whisper's ``transcribe``, no VAD, the service's model, beam and compute type);
the live one comes from the transcriber service, streamed at real-time pace. Offline's words
are aligned with live's, and the words offline has and live lacks are listed as runs with
their audio times, each marked inside or outside the speech regions Silero VAD finds over the
whole file (faster-whisper's VAD at its defaults). Both transcripts are scored against the
reference, with delays to final and the CPU the service used.

Cases: ``hvb`` (the 8 bank calls of ../shared/eval, each its own stream), ``monologue`` (the
LJ Speech utterances of ../shared/eval/read_speech joined with 150 ms gaps) and ``earnings``
(each call folder of a copy of GeminiLn/EarningsCall_Dataset: the executive's sentences joined
in order with 150 ms gaps; pass the folder with --earnings).

    uv run python bench/transcriber_deletions.py ../shared/eval --earnings DIR \
        [--cases hvb,monologue,earnings] [--cache DIR] [--dump DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import re
import resource
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from evaldata import describe, hvb_calls, normalise, wer
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio
from faster_whisper.vad import VadOptions, get_speech_timestamps
from transcriber_streaming import Result, stream_pcm

from callcue.core.auth import SingleTenant
from callcue.core.log import configure_logging
from callcue.core.settings import Environment
from callcue.transcriber.app import build_server, load_engine
from callcue.transcriber.engine import resolve_model
from callcue.transcriber.settings import Settings
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc

GAP_SECONDS = 0.15


@dataclass
class Recording:
    case: str
    name: str
    audio: np.ndarray  # float32 mono at ``rate``
    rate: int
    reference: str

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.rate

    def at_16k(self) -> np.ndarray:
        if self.rate == 16000:
            return self.audio
        import soxr

        return soxr.resample(self.audio, self.rate, 16000, quality="HQ").astype(np.float32)


@dataclass(frozen=True)
class TimedWord:
    text: str  # normalised for comparison
    start: float
    end: float


@dataclass
class Outcome:
    recording: Recording
    offline: list[TimedWord]
    offline_text: str
    live: Result | None = None
    regions: list[tuple[float, float]] = field(default_factory=list)  # VAD speech
    missing: list[list[TimedWord]] = field(default_factory=list)  # runs
    inside_vad: int = 0


def joined(pieces: list[np.ndarray], rate: int) -> np.ndarray:
    gap = np.zeros(int(GAP_SECONDS * rate), dtype=np.float32)
    return np.concatenate([part for piece in pieces for part in (piece, gap)])


def recordings(args: argparse.Namespace) -> Iterator[Recording]:
    cases = args.cases.split(",")
    if "hvb" in cases:
        for call in hvb_calls(args.eval_dir, args.limit):
            yield Recording("hvb", call.name, call.load(), 8000, call.reference)
    if "monologue" in cases:
        files = sorted((args.eval_dir / "read_speech").glob("LJ001-*.flac"))
        audio = joined([decode_audio(str(f), sampling_rate=16000) for f in files], 16000)
        text = " ".join(f.with_suffix(".txt").read_text().strip() for f in files)
        # Whisper's normaliser drops words in parentheses; these are spoken.
        text = text.replace("(", "").replace(")", "")
        yield Recording("monologue", "lj-monologue", audio, 16000, text)
    if "earnings" in cases:
        if args.earnings is None:
            raise SystemExit("--earnings DIR is needed for the earnings case")
        for folder in sorted(p for p in args.earnings.iterdir() if (p / "Text.txt").exists()):

            def order(path: Path) -> tuple[int, int]:
                match = re.search(r"_(\d+)_(\d+)\.mp3$", path.name)
                assert match, path
                return int(match[1]), int(match[2])

            files = sorted((folder / "Audio").glob("*.mp3"), key=order)
            audio = joined([decode_audio(str(f), sampling_rate=16000) for f in files], 16000)
            text = (folder / "Text.txt").read_text()
            yield Recording("earnings", folder.name, audio, 16000, text)


def comparable(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch == "'")


def offline_words(
    model: WhisperModel, recording: Recording, cache: Path | None
) -> tuple[list[TimedWord], str]:
    path = cache / f"{recording.case}-{recording.name}.json" if cache else None
    if path and path.exists():
        data = json.loads(path.read_text())
        return [TimedWord(*w) for w in data["words"]], data["text"]
    segments, _ = model.transcribe(
        recording.at_16k(), language="en", beam_size=5, word_timestamps=True, vad_filter=False
    )
    words, texts = [], []
    for segment in segments:
        texts.append(segment.text)
        for word in segment.words or []:
            if comparable(word.word):
                words.append(TimedWord(comparable(word.word), word.start, word.end))
    text = " ".join(texts)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({"words": [[w.text, w.start, w.end] for w in words], "text": text})
        )
    return words, text


def live_words(result: Result) -> list[TimedWord]:
    words = []
    for _, segment in sorted(result.finals, key=lambda f: f[1].start_offset.ToNanoseconds()):
        for word in segment.words:
            if comparable(word.text):
                words.append(
                    TimedWord(
                        comparable(word.text),
                        word.start_offset.ToNanoseconds() / 1e9,
                        word.end_offset.ToNanoseconds() / 1e9,
                    )
                )
    return words


def missing_runs(offline: list[TimedWord], live: list[TimedWord]) -> list[list[TimedWord]]:
    """Runs of offline words with nothing in live against them; where a stretch was
    transcribed differently, only the words beyond live's count are missing."""
    matcher = difflib.SequenceMatcher(
        None, [w.text for w in offline], [w.text for w in live], autojunk=False
    )
    runs = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        surplus = (i2 - i1) - (j2 - j1) if tag == "replace" else i2 - i1 if tag == "delete" else 0
        if surplus > 0:
            runs.append(offline[i2 - surplus : i2])
    return runs


def speech_regions(recording: Recording) -> list[tuple[float, float]]:
    stamps = get_speech_timestamps(recording.at_16k(), VadOptions())
    return [(s["start"] / 16000, s["end"] / 16000) for s in stamps]


def inside(word: TimedWord, regions: list[tuple[float, float]]) -> bool:
    middle = (word.start + word.end) / 2
    return any(start <= middle <= end for start, end in regions)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def stream_live(
    stub: pb_grpc.TranscriberServiceAsyncStub, recording: Recording, speed: float
) -> Result:
    data = (np.clip(recording.audio, -1, 1) * 32767).astype("<i2").tobytes()
    return await stream_pcm(
        stub,
        recording.name,
        data,
        1,
        [],
        recording.seconds,
        sample_rate=recording.rate,
        speed=speed,
    )


def report(case: str, outcomes: list[Outcome], cpu: float, dump: Path | None) -> None:
    audio = sum(o.recording.seconds for o in outcomes)
    references = [o.recording.reference for o in outcomes]
    offline = wer(references, [o.offline_text for o in outcomes])
    live = wer(references, [o.live.transcript() if o.live else "" for o in outcomes])
    runs = [run for o in outcomes for run in o.missing]
    missing = sum(len(run) for run in runs)
    inside_vad = sum(o.inside_vad for o in outcomes)
    delays: list[float] = []
    for outcome in outcomes:
        if outcome.live:
            delays += outcome.live.delays()[1]
    words = sum(len(r) for r in offline.references)
    print(f"== {case}: {len(outcomes)} recording(s), {audio / 60:.1f} min, {words} reference words")
    for label, score in (("offline", offline), ("live", live)):
        print(
            f"  {label:8} WER {score.wer * 100:5.1f}% (sub {score.substitutions}, "
            f"del {score.deletions}, ins {score.insertions})"
        )
    ratio = live.deletions / offline.deletions if offline.deletions else float("nan")
    print(f"  deletions live/offline {ratio:.2f}")
    longest = max((len(run) for run in runs), default=0)
    over_two = [run for run in runs if len(run) > 2]
    share = inside_vad / missing if missing else float("nan")
    print(
        f"  words offline has and live lacks: {missing} in {len(runs)} runs, "
        f"{len(over_two)} runs of more than 2 words, longest {longest}; "
        f"{share * 100:.0f}% inside VAD speech"
    )
    print(f"  delay to final: {describe(delays)}")
    print(f"  CPU {cpu / audio:.3f} CPU-s per audio s (service, live streams)", flush=True)
    if dump:
        dump.mkdir(parents=True, exist_ok=True)
        lines = []
        for outcome in outcomes:
            for run in outcome.missing:
                if len(run) > 2:
                    lines.append(
                        f"{outcome.recording.name} [{run[0].start:8.2f}-{run[-1].end:8.2f}] "
                        f"{len(run):3d}: {' '.join(w.text for w in run)}"
                    )
            (dump / f"{outcome.recording.name}.live.txt").write_text(
                normalise(outcome.live.transcript() if outcome.live else "") + "\n"
            )
            (dump / f"{outcome.recording.name}.offline.txt").write_text(
                normalise(outcome.offline_text) + "\n"
            )
        (dump / f"{case}.runs.txt").write_text("\n".join(lines) + "\n")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--earnings", type=Path, help="a copy of GeminiLn/EarningsCall_Dataset")
    parser.add_argument("--cases", default="hvb,monologue,earnings")
    parser.add_argument("--limit", type=int, help="only the first N hvb calls")
    parser.add_argument("--cache", type=Path, help="keep offline transcripts here")
    parser.add_argument("--dump", type=Path, help="write transcripts and missing runs here")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="times real time (1: a live call's pace)"
    )
    parser.add_argument(
        "--trace", action="store_true", help="log every decode (JSON lines on standard error)"
    )
    args = parser.parse_args()
    configure_logging("debug" if args.trace else "warning", "json")
    settings = Settings.from_env(
        Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_AUTH": "none"})
    )
    model = WhisperModel(
        resolve_model(settings.model),
        device="cpu",
        compute_type=settings.compute_type,
        cpu_threads=2,
        local_files_only=True,
    )
    outcomes: dict[str, list[Outcome]] = {}
    for recording in recordings(args):
        words, text = offline_words(model, recording, args.cache)
        outcome = Outcome(recording, words, text, regions=speech_regions(recording))
        outcomes.setdefault(recording.case, []).append(outcome)
    del model

    engine = load_engine(settings)
    server = build_server(settings, engine, SingleTenant())
    port = await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.TranscriberServiceStub(channel)
        for case, group in outcomes.items():
            started = cpu_seconds()
            for outcome in group:
                outcome.live = await stream_live(stub, outcome.recording, args.speed)
                outcome.missing = missing_runs(outcome.offline, live_words(outcome.live))
                outcome.inside_vad = sum(
                    inside(word, outcome.regions) for run in outcome.missing for word in run
                )
                score = wer([outcome.recording.reference], [outcome.live.transcript()])
                print(
                    f"  {outcome.recording.name}: live WER {score.wer * 100:.1f}% "
                    f"(sub {score.substitutions}, del {score.deletions}, "
                    f"ins {score.insertions}), {sum(map(len, outcome.missing))} words "
                    "offline has and live lacks",
                    flush=True,
                )
            report(case, group, cpu_seconds() - started, args.dump)
    await server.stop(0)
    engine.close()


if __name__ == "__main__":
    asyncio.run(main())
