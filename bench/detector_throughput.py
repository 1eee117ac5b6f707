"""Detector speed: words per second and added latency per transcript update.

10,000 word/phrase keywords (with aliases and inflections, as a large playbook has) are
compiled into one matcher; transcript text (the hvb_calls references, repeated) arrives
as final segments of 12 words with timings, as the transcriber sends them. Measured in
process, on the detector's own CallDetector: words per second, and per update p50/p99.
Then the same with semantic keywords added (example sentences, the sentence model).

    uv run python bench/detector_throughput.py ../shared/eval [--words 1000000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from evaldata import hvb_calls, percentile
from google.protobuf import duration_pb2

from callcue.call.v1 import call_pb2
from callcue.detector.call_detector import CallDetector
from callcue.detector.matcher import KeywordMatcher
from callcue.detector.sentences import MiniLM
from callcue.detector.text import tokens
from callcue.detector.v1 import detector_service_pb2 as pb

WORDS_PER_SEGMENT = 12


def seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(value * 1e9))
    return duration


def keywords(vocabulary: list[str], count: int, rng: random.Random) -> list[pb.Keyword]:
    """A large playbook as companies write them: mostly names (products, competitors,
    made up here) alone or with ordinary words ("acme analytics", "switch to zendora"),
    and one in a hundred everyday phrases from the calls themselves, so detections happen
    as in real calls, a few per minute."""
    result, seen = [], set()
    while len(result) < count:
        size = rng.choice((1, 2, 2, 3))
        words = [rng.choice(vocabulary) for _ in range(size)]
        if rng.random() >= 0.01 or size == 1:
            name = "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))
            words[rng.randrange(size)] = name
        phrase = " ".join(words)
        if phrase in seen:
            continue
        seen.add(phrase)
        result.append(
            pb.Keyword(
                keyword_id=str(len(result)),
                phrase=phrase,
                aliases=[f"{phrase} please"] if rng.random() < 0.2 else [],
                inflections=rng.random() < 0.2,
                talking_point=call_pb2.TalkingPoint(title=phrase),
            )
        )
    return result


def segments(words: list[str], total: int) -> list[call_pb2.TranscriptSegment]:
    out, clock, index = [], 0.0, 0
    while index < total:
        chunk = [words[(index + i) % len(words)] for i in range(WORDS_PER_SEGMENT)]
        timed = []
        for word in chunk:
            timed.append(
                call_pb2.Word(
                    text=word, start_offset=seconds(clock), end_offset=seconds(clock + 0.3)
                )
            )
            clock += 0.35
        out.append(
            call_pb2.TranscriptSegment(
                segment_id=str(len(out)),
                text=" ".join(chunk) + ".",
                words=timed,
                is_final=True,
                start_offset=timed[0].start_offset,
                end_offset=timed[-1].end_offset,
            )
        )
        index += WORDS_PER_SEGMENT
    return out


def run(
    detector: CallDetector, updates: list[call_pb2.TranscriptSegment]
) -> tuple[float, list[float], int]:
    latencies, fired = [], 0
    started = time.perf_counter()
    for segment in updates:
        before = time.perf_counter()
        fired += len(detector.update(segment))
        latencies.append(time.perf_counter() - before)
    return time.perf_counter() - started, latencies, fired


def report(name: str, updates: int, elapsed: float, latencies: list[float], fired: int) -> None:
    words = updates * WORDS_PER_SEGMENT
    print(
        f"{name}: {words / elapsed:,.0f} words/s ({words:,} words, {fired:,} detections); "
        f"per update p50 {statistics.median(latencies) * 1e3:.3f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1e3:.3f} ms, max {max(latencies) * 1e3:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--words", type=int, default=1_000_000)
    parser.add_argument("--keywords", type=int, default=10_000)
    parser.add_argument("--semantic", type=int, default=100, help="semantic keywords added")
    args = parser.parse_args()
    rng = random.Random(7)
    spoken = [word for call in hvb_calls(args.eval_dir) for word in call.reference.split()]
    vocabulary = sorted(set(tokens(" ".join(spoken))))
    playbook = keywords(vocabulary, args.keywords, rng)
    started = time.perf_counter()
    matcher = KeywordMatcher(playbook)
    print(f"compiled {len(playbook):,} keywords in {time.perf_counter() - started:.2f} s")
    updates = segments(spoken, args.words)
    report(
        "word/phrase triggers", len(updates), *run(CallDetector(matcher, interim=False), updates)
    )

    semantic = [
        pb.Keyword(
            keyword_id=f"s{n}",
            examples=[
                " ".join(rng.choice(spoken) for _ in range(rng.randrange(5, 12))) for _ in range(3)
            ],
            semantic_threshold=0.9,
            talking_point=call_pb2.TalkingPoint(title=f"intent {n}"),
        )
        for n in range(args.semantic)
    ]
    started = time.perf_counter()
    with_meaning = KeywordMatcher(playbook + semantic, MiniLM.bundled())
    print(
        f"compiled with {len(semantic)} semantic keywords in {time.perf_counter() - started:.2f} s"
    )
    sample = updates[:2000]
    report(
        f"with {len(semantic)} semantic keywords",
        len(sample),
        *run(CallDetector(with_meaning, interim=False), sample),
    )


if __name__ == "__main__":
    main()
