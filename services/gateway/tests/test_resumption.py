"""Replaying a call's recent audio to a new transcriber stream, and fitting what it says
into the call's transcript."""

from __future__ import annotations

import asyncio

from google.protobuf import duration_pb2

from callcue.call.v1 import call_pb2
from callcue.gateway.call_audio import CallAudio
from callcue.gateway.resumption import Resumption


def seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(value * 1e9))
    return duration


def segment(
    segment_id: str, words: list[tuple[str, float, float]], *, final: bool = True, channel: int = 0
) -> call_pb2.TranscriptSegment:
    return call_pb2.TranscriptSegment(
        segment_id=segment_id,
        channel=channel,
        is_final=final,
        text=" ".join(text for text, _, _ in words),
        words=[
            call_pb2.Word(text=text, start_offset=seconds(start), end_offset=seconds(end))
            for text, start, end in words
        ],
        start_offset=seconds(words[0][1]),
        end_offset=seconds(words[-1][2]),
    )


def times(piece: call_pb2.TranscriptSegment) -> list[tuple[str, float]]:
    return [(w.text, w.start_offset.ToNanoseconds() / 1e9) for w in piece.words]


def test_a_new_stream_continues_in_call_time_without_repeating_final_words() -> None:
    resumption = Resumption(channels=2)
    assert resumption.adopt(segment("0-0", [("hello", 1.0, 1.4), ("there", 1.5, 2.0)]))
    assert resumption.adopt(segment("1-0", [("hi", 4.0, 4.5)], channel=1))
    assert resumption.resume_point() == 2.0  # channel 0 is furthest behind
    resumption.restart(2.0)
    # The new stream counts from its first byte, and hears channel 1's words again.
    again = segment("1-0", [("hi", 2.0, 2.5), ("friend", 2.6, 3.0)], channel=1)
    adopted = resumption.adopt(again)
    assert adopted is not None
    assert adopted.segment_id == "r1.1-0"
    assert times(adopted) == [("friend", 4.6)] and adopted.text == "friend"
    assert adopted.start_offset.ToNanoseconds() == 4_600_000_000
    assert resumption.adopt(segment("1-0", [("hi", 2.0, 2.5)], channel=1, final=False)) is None
    fresh = resumption.adopt(segment("0-0", [("how", 0.5, 0.8)]))
    assert fresh is not None and times(fresh) == [("how", 2.5)]


async def test_audio_is_replayed_from_any_kept_point_and_the_intake_waits_for_the_reader() -> None:
    audio = CallAudio(bytes_per_second=100, frame_bytes=2, keep_seconds=2, ahead_seconds=1)
    await audio.append(bytes(range(100)))  # one second: the most it may be ahead
    blocked = asyncio.create_task(audio.append(bytes(50)))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    reader = audio.read_from(0)
    first = await anext(reader)
    assert first == bytes(range(10))  # 0.1 s pieces
    await asyncio.wait_for(blocked, 1)
    for _ in range(14):
        await anext(reader)
    await audio.close()
    rest = b"".join([chunk async for chunk in reader])
    assert len(rest) == 0 and audio.end == 150
    # A new reader may start anywhere still kept (two seconds behind the last reader).
    assert audio.offset(0.5) == 50
    replay = b"".join([chunk async for chunk in audio.read_from(audio.offset(0.5))])
    assert replay == bytes(range(50, 100)) + bytes(50)
