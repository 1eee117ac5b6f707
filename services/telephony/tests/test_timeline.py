"""Audio placed by position: reordered, gaps silenced, late frames dropped, tracks
interleaved."""

from __future__ import annotations

import pytest

from callcue.call.v1 import call_pb2
from callcue.telephony.timeline import PositionError, Timeline

MULAW = call_pb2.AUDIO_ENCODING_MULAW


def timeline(channels: int = 2, window: int = 4) -> Timeline:
    return Timeline(MULAW, channels, window_samples=window, max_gap_samples=1000)


def test_frames_in_order_go_out_at_once() -> None:
    line = timeline(channels=1, window=400)
    line.put(0, 0, b"ABCD")
    assert line.take() == b"ABCD"  # no reorder delay while nothing is missing
    line.put(0, 4, b"EF")
    assert line.take() == b"EF"


def test_frames_out_of_order_within_the_window_come_out_in_order() -> None:
    line = timeline(channels=1, window=8)
    line.put(0, 4, b"EFGH")
    assert line.take() == b""  # waits for what is missing before it
    line.put(0, 0, b"ABCD")
    line.put(0, 8, b"IJKL")
    assert line.take() == b"ABCDEFGHIJKL"


def test_a_gap_is_waited_for_only_the_reorder_window() -> None:
    line = timeline(channels=1, window=4)
    line.put(0, 0, b"AB")
    line.put(0, 4, b"EF")
    assert line.take() == b"AB"
    line.put(0, 6, b"GHIJ")  # now 8 samples past the gap: give up on it
    assert line.take() == b"\xff\xffEFGHIJ"


def test_a_missing_frame_is_silence_and_a_late_one_is_dropped() -> None:
    line = timeline(channels=1, window=0)
    line.put(0, 0, b"AB")
    line.put(0, 4, b"EF")
    assert line.take() == b"AB\xff\xffEF"  # no window: a gap is filled at once
    line.put(0, 2, b"CD")  # too late: its place was written out as silence
    assert line.take(final=True) == b""
    assert line.late_samples == 2 and line.filled_samples == 2


def test_two_tracks_interleave_and_a_quiet_one_is_silence() -> None:
    line = timeline(channels=2, window=2)
    line.put(0, 0, b"ab")
    line.put(1, 0, b"AB")
    assert line.take() == b"aAbB"
    line.put(0, 2, b"cd")  # the second track lags: wait for it, up to the window
    assert line.take() == b""
    line.put(0, 4, b"ef")
    assert line.take() == b"c\xffd\xff"


def test_a_frame_straddling_the_horizon_keeps_its_tail() -> None:
    line = timeline(channels=2, window=2)
    line.put(0, 0, b"ABCDEF")
    line.put(1, 0, b"abc")
    assert line.take() == b"AaBbCcD\xff"  # channel 1 waited for up to the window
    assert line.take(final=True) == b"E\xffF\xff"


def test_impossible_positions_are_refused() -> None:
    line = timeline(channels=1)
    with pytest.raises(PositionError):
        line.put(0, 5000, b"A")  # far past the rest of the call
    with pytest.raises(PositionError):
        line.put(0, -1, b"A")
    pcm = Timeline(call_pb2.AUDIO_ENCODING_LINEAR16, 1, window_samples=0, max_gap_samples=10)
    with pytest.raises(PositionError):
        pcm.put(0, 0, b"\x00\x00\x00")  # half a sample
