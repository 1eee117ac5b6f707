"""Offline WER and real-time factor of the transcriber's file path on hvb_calls.

uv run python bench/transcriber_offline.py ../shared/eval [--resampler soxr|ffmpeg] \
    [--hotwords playbook] [--dual]

--dual transcribes the agent's and the caller's channel each on its own and scores each
against what its speaker said (the turns files).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from pathlib import Path

from evaldata import hotword_list, hvb_calls, normalise, wer

from callcue.transcriber.engine import WhisperEngine


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--resampler", choices=["soxr", "ffmpeg"], default="soxr")
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--dual", action="store_true", help="each speaker's channel alone")
    parser.add_argument(
        "--short-window",
        default="15,20",
        help="seconds of the encoder windows for short audio, comma-separated (the "
        "service's default: 15,20), or 'off' for always 30 s",
    )
    parser.add_argument(
        "--hotwords",
        default="",
        help="comma-separated phrases given to Whisper as hotwords, or 'playbook' for the "
        "phrases of bench/hvb_playbook.yaml",
    )
    parser.add_argument(
        "--dump", type=Path, help="write each call's normalised reference and transcript here"
    )
    args = parser.parse_args()
    if args.dump and args.dual:
        parser.error("--dump writes one transcript per call: not with --dual")
    hotwords = hotword_list(args.hotwords)
    engine = WhisperEngine.load(
        args.model,
        device="cpu",
        compute_type="int8",
        cpu_threads=2,
        workers=1,
        beam_size=args.beam,
        short_windows=()
        if args.short_window == "off"
        else tuple(float(w) for w in args.short_window.split(",")),
    )
    calls = hvb_calls(args.eval_dir, args.limit)
    references, hypotheses, audio_seconds = [], [], 0.0
    started, cpu = time.perf_counter(), cpu_seconds()
    for call in calls:
        sources = (
            [(call.agent, call.spoken_by("AGENT")), (call.caller, call.spoken_by("CALLER"))]
            if args.dual
            else [(call.audio, call.reference)]
        )
        for path, reference in sources:
            if args.resampler == "soxr":
                audio = call.load_16k(path)
            else:
                audio = call.load(rate=16000, path=path)
            audio_seconds += len(audio) / 16000
            texts = [
                s.text
                async for s in engine.transcribe_long(
                    audio, language="en", hotwords=hotwords, one_party=args.dual
                )
            ]
            references.append(reference)
            hypotheses.append(" ".join(texts))
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            (args.dump / f"{call.name}.ref.txt").write_text(normalise(call.reference) + "\n")
            (args.dump / f"{call.name}.hyp.txt").write_text(normalise(hypotheses[-1]) + "\n")
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    score = wer(references, hypotheses)
    print(
        f"hvb_calls offline, {len(calls)} calls{' (each channel alone)' if args.dual else ''}, "
        f"{audio_seconds:.0f} s of audio, "
        f"model {args.model}, beam {args.beam}, resampler {args.resampler}, "
        f"short window {args.short_window}, {len(hotwords)} hotwords"
    )
    print(
        f"WER {score.wer * 100:.1f}% (sub {score.substitutions}, del {score.deletions}, "
        f"ins {score.insertions} of {sum(len(r) for r in score.references)} words)"
    )
    print(
        f"real-time factor {elapsed / audio_seconds:.3f} (wall), "
        f"{cpu / audio_seconds:.3f} CPU-s per audio s"
    )
    engine.close()


if __name__ == "__main__":
    asyncio.run(main())
