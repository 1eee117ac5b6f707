from __future__ import annotations

import io
from pathlib import Path

import pytest

from callcue.call.v1 import call_pb2
from callcue.cli.call import EventView, RecordingError, read_recording


def detection(state: int, detection_id: str = "d1") -> call_pb2.CallEvent:
    return call_pb2.CallEvent(
        session_id="s1",
        detection=call_pb2.Detection(
            detection_id=detection_id,
            matched_text="too expensive",
            state=state,  # type: ignore[arg-type]
            talking_point=call_pb2.TalkingPoint(
                title="Price objection", body="Reframe on value.", category=3
            ),
        ),
    )


def test_a_tentative_card_shows_once_and_its_confirmation_adds_nothing() -> None:
    out = io.StringIO()
    view = EventView(out)
    view.begin(0.0)
    view.show(detection(call_pb2.DETECTION_STATE_TENTATIVE))
    view.show(detection(call_pb2.DETECTION_STATE_CONFIRMED))
    text = out.getvalue()
    assert text.count("TALKING POINT [pricing] Price objection") == 1
    assert "Reframe on value." in text
    assert len(view.report.detections) == 1 and len(view.report.detection_delays) == 1


def test_a_retraction_withdraws_the_card() -> None:
    out = io.StringIO()
    view = EventView(out)
    view.show(detection(call_pb2.DETECTION_STATE_TENTATIVE))
    view.show(detection(call_pb2.DETECTION_STATE_RETRACTED))
    assert "withdrawn: Price objection" in out.getvalue()
    assert view.report.detections == [] and view.report.shown == {}
    assert view.report.detection_delays == []  # not a call paced in real time


SAMPLES = Path(__file__).parents[3] / "samples"


def test_any_recording_ffmpeg_reads_streams_at_its_own_rate_and_channels(
    tmp_path: Path,
) -> None:
    wav = read_recording(SAMPLES / "sales_call.wav")
    flac = read_recording(SAMPLES / "sales_call_stereo.flac")
    assert (wav.audio_format.sample_rate_hertz, wav.audio_format.channel_count) == (16000, 1)
    assert (flac.audio_format.sample_rate_hertz, flac.audio_format.channel_count) == (16000, 2)
    assert flac.audio_format.encoding == call_pb2.AUDIO_ENCODING_LINEAR16
    assert abs(flac.seconds - wav.seconds) < 0.05
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not a recording")
    with pytest.raises(RecordingError, match=r"notes\.wav: not a recording FFmpeg can read"):
        read_recording(not_audio)
