"""Replaying a call's recent audio to a new transcriber stream, and fitting what it says
into the call's transcript."""

from __future__ import annotations

import asyncio

from google.protobuf import duration_pb2

from callcue.call.v1 import call_pb2
from callcue.gateway.call_audio import CallAudio
from callcue.gateway.transcriber_link import FinalWords


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


def test_a_stream_taking_over_repeats_no_final_word() -> None:
    finals = FinalWords(channels=2)
    assert finals.fresh(segment("0-0", [("hello", 1.0, 1.4), ("there", 1.5, 2.0)]))
    assert finals.fresh(segment("1-0", [("hi", 4.0, 4.5)], channel=1))
    assert finals.take_over() == 2.0  # channel 0 is furthest behind
    # The new stream starts at 2.0 s, in call time (the transcriber stamps it), and
    # hears channel 1's words again.
    again = segment("r1.1-0", [("hi", 4.0, 4.5), ("friend", 4.6, 5.0)], channel=1)
    kept = finals.fresh(again)
    assert kept is not None
    assert kept.segment_id == "r1.1-0"
    assert times(kept) == [("friend", 4.6)] and kept.text == "friend"
    assert kept.start_offset.ToNanoseconds() == 4_600_000_000
    assert finals.fresh(segment("r1.1-1", [("hi", 4.0, 4.5)], channel=1, final=False)) is None
    new = finals.fresh(segment("r1.0-0", [("how", 2.5, 2.8)]))
    assert new is not None and times(new) == [("how", 2.5)]
    assert finals.take_over() == 2.8


def test_a_word_timed_too_late_hides_none_of_its_own_streams_words() -> None:
    """Whisper once timed a lone "Uh" 15 s past its audio; the words its stream said
    after it, in those 15 s, are still the call's."""
    finals = FinalWords(channels=1)
    assert finals.fresh(segment("0-0", [("hello", 1.0, 1.4)]))
    assert finals.take_over() == 1.4
    assert finals.fresh(segment("r1.0-0", [("uh", 2.0, 17.0)]))
    later = finals.fresh(segment("r1.0-1", [("the", 5.0, 5.2), ("branch", 5.3, 5.6)]))
    assert later is not None and [w.text for w in later.words] == ["the", "branch"]


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
