from __future__ import annotations

from pathlib import Path

import pytest

from callcue.call.v1 import call_pb2
from callcue.cli.recording import RecordingError, read_recording

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
