"""Precision and recall of detections on hvb_calls, through the real transcriber.

The labelled set: bench/hvb_playbook.yaml. For its phrase, alias and pattern triggers the
truth is where the human reference transcripts say them (the words actually spoken,
matched exactly); for its semantic keyword, the calls listed in SEMANTIC_LABELS (read by
hand from the references). Each call is transcribed by the transcriber's own code (the
long-file path, or with --streaming the live path at real-time pace), its final segments
go through the detector's CallDetector, and per call and keyword the detections are
counted against the truth.

With --dual the agent's and the caller's channels go in as the rep's and the prospect's, so
keywords with a speaker condition must also be heard on the right channel; their truth is
then what that speaker said (the turns files).

    uv run python bench/detector_quality.py ../shared/eval [--streaming] [--hotwords] [--dual]
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from pathlib import Path

import grpc
from evaldata import Call, hvb_calls
from transcriber_streaming import stream

from callcue.call.v1 import call_pb2
from callcue.core.auth import SingleTenant
from callcue.core.settings import Environment
from callcue.detector import playbook_file
from callcue.detector.call_detector import CallDetector
from callcue.detector.matcher import KeywordMatcher
from callcue.detector.sentences import MiniLM
from callcue.detector.text import tokens
from callcue.detector.v1 import detector_service_pb2 as pb
from callcue.transcriber.app import build_server, load_engine
from callcue.transcriber.engine import SpeechEngine
from callcue.transcriber.segments import make_segment
from callcue.transcriber.settings import Settings
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc

PLAYBOOK = Path(__file__).parent / "hvb_playbook.yaml"
# Sentences that ask for a replacement card, read from the references (call: mentions).
SEMANTIC_LABELS = {"Wants a replacement card": {"0002f70f7386445b": 1, "3a20358e1bfc4a17": 1}}


def load_playbook() -> list[pb.Keyword]:
    parsed = playbook_file.parse(PLAYBOOK.read_bytes())
    for index, keyword in enumerate(parsed.keywords):
        keyword.keyword_id = keyword.display_name or str(index)
    return parsed.keywords


def exact_only(keyword: pb.Keyword) -> pb.Keyword:
    """The keyword as the truth sees it: what was said, no tolerance for ASR errors."""
    strict = pb.Keyword()
    strict.CopyFrom(keyword)
    strict.fuzzy_threshold, strict.phonetic = 0.0, False
    del strict.examples[:]
    return strict


SPEAKERS = {call_pb2.SPEAKER_ROLE_REP: "AGENT", call_pb2.SPEAKER_ROLE_PROSPECT: "CALLER"}


def truth(call: Call, keywords: list[pb.Keyword], *, dual: bool = False) -> Counter[str]:
    """Mentions per keyword in what was said: the reference, matched exactly. On one mixed
    channel a speaker condition cannot be told apart, so every mention counts there."""
    counts: Counter[str] = Counter()
    for keyword in keywords:
        if keyword.examples:
            continue
        said = call.reference
        if dual and keyword.speaker in SPEAKERS:
            said = call.spoken_by(SPEAKERS[keyword.speaker])
        matcher = KeywordMatcher([exact_only(keyword)])
        counts[keyword.keyword_id] += len(matcher.find(tokens(said)))
    for keyword in keywords:
        if keyword.examples:
            counts[keyword.keyword_id] = SEMANTIC_LABELS[keyword.keyword_id].get(call.name, 0)
    return +counts


async def offline_segments(
    engine: SpeechEngine, call: Call, hotwords: list[str], *, dual: bool
) -> list[call_pb2.TranscriptSegment]:
    channels = (
        [(call.agent, call_pb2.SPEAKER_ROLE_REP), (call.caller, call_pb2.SPEAKER_ROLE_PROSPECT)]
        if dual
        else [(call.audio, call_pb2.SPEAKER_ROLE_MIXED)]
    )
    segments = []
    for channel, (path, speaker) in enumerate(channels):
        audio = call.load_16k(path)
        async for recognised in engine.transcribe_long(audio, language="en", hotwords=hotwords):
            segment = make_segment(
                recognised.words,
                segment_id=f"{channel}-{len(segments)}",
                channel=channel,
                speaker=speaker,
                offset=0.0,
                is_final=True,
                language="en",
            )
            if segment is not None:
                segments.append(segment)
    return sorted(segments, key=lambda segment: segment.start_offset.ToNanoseconds())


async def streaming_segments(
    stub: pb_grpc.TranscriberServiceAsyncStub, call: Call, hotwords: list[str], *, dual: bool
) -> list[call_pb2.TranscriptSegment]:
    """Partial and final segments in the order a live call delivers them."""
    result = await stream(stub, call, dual=dual, hotwords=hotwords)
    return [segment for _, segment in sorted(result.finals + result.partials, key=lambda x: x[0])]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--streaming", action="store_true", help="live path, real-time pace")
    parser.add_argument(
        "--hotwords", action="store_true", help="bias the transcriber with the playbook phrases"
    )
    parser.add_argument(
        "--dual", action="store_true", help="the agent's and the caller's channels apart"
    )
    args = parser.parse_args()
    keywords = load_playbook()
    hotwords = [k.phrase for k in keywords if k.phrase] if args.hotwords else []
    matcher = KeywordMatcher(keywords, MiniLM.bundled())
    calls = hvb_calls(args.eval_dir)
    settings = Settings.from_env(
        Environment({"CALLCUE_HOST": "127.0.0.1", "CALLCUE_PORT": "0", "CALLCUE_AUTH": "none"})
    )
    engine = load_engine(settings)
    server = build_server(settings, engine, SingleTenant())
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.TranscriberServiceStub(channel)
    tp = fp = fn = 0
    per_keyword: dict[str, list[int]] = {k.keyword_id: [0, 0, 0] for k in keywords}
    tentative = Counter[str]()
    for call in calls:
        if args.streaming:
            segments = await streaming_segments(stub, call, hotwords, dual=args.dual)
        else:
            segments = await offline_segments(engine, call, hotwords, dual=args.dual)
        detector = CallDetector(matcher, interim=args.streaming)
        found: Counter[str] = Counter()
        for segment in segments:
            for detection in detector.update(segment):
                if detection.state == call_pb2.DETECTION_STATE_CONFIRMED:
                    found[detection.keyword_id] += 1
                else:
                    tentative[call_pb2.DetectionState.Name(detection.state)] += 1
        for detection in detector.finish():
            tentative[call_pb2.DetectionState.Name(detection.state)] += 1
        expected = truth(call, keywords, dual=args.dual)
        for keyword_id in set(found) | set(expected):
            hit = min(found[keyword_id], expected[keyword_id])
            extra = max(0, found[keyword_id] - expected[keyword_id])
            missed = max(0, expected[keyword_id] - found[keyword_id])
            tp, fp, fn = tp + hit, fp + extra, fn + missed
            per_keyword[keyword_id] = [
                a + b for a, b in zip(per_keyword[keyword_id], (hit, extra, missed), strict=True)
            ]
            if extra or missed:
                print(
                    f"  {call.name} {keyword_id}: expected {expected[keyword_id]}, "
                    f"detected {found[keyword_id]}"
                )
    await channel.close()
    await server.stop(0)
    engine.close()
    print(
        f"hvb_calls, {len(calls)} calls, {len(keywords)} keywords "
        f"({'live path' if args.streaming else 'file path'} transcripts"
        f"{', playbook phrases as hotwords' if hotwords else ''}"
        f"{', each speaker on a channel' if args.dual else ''})"
    )
    for keyword_id, (hit, extra, missed) in per_keyword.items():
        print(f"  {keyword_id:28s} spoken {hit + missed:2d}  found {hit:2d}  false {extra:2d}")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    print(f"precision {precision:.3f} ({tp}/{tp + fp}), recall {recall:.3f} ({tp}/{tp + fn})")
    if args.streaming:
        print(f"tentative detections: {dict(tentative)}")


if __name__ == "__main__":
    asyncio.run(main())
