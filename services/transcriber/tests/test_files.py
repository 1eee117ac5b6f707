"""Recordings in every container a user may upload, encoded here from the sample call."""

from __future__ import annotations

import io
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from callcue.transcriber.files import UnreadableAudio, decode_file
from callcue.transcriber.v1 import transcriber_service_pb2 as pb
from callcue.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc

SAMPLE = Path(__file__).parents[3] / "samples" / "sales_call.wav"

# (file name, container, codec, sample rate, channels)
FORMATS = [
    ("call.mp3", "mp3", "libmp3lame", 44100, 2),
    ("call.m4a", "ipod", "aac", 22050, 1),
    ("call.aac", "adts", "aac", 16000, 1),
    ("call.ogg", "ogg", "libopus", 48000, 1),
    ("call.opus", "opus", "libopus", 48000, 2),
    ("call.webm", "webm", "libopus", 48000, 1),
    ("call.flac", "flac", "flac", 8000, 1),
    ("call.wav", "wav", "pcm_s16le", 11025, 2),
]


def sample_audio(seconds: float) -> np.ndarray:
    with av.open(str(SAMPLE)) as container:
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    return np.concatenate(frames, axis=1)[:, : int(16000 * seconds)]


def encode(
    name: str, container: str, codec: str, rate: int, channels: int, seconds: float
) -> bytes:
    """The sample's first seconds re-encoded (resampled, up- or down-mixed) as asked."""
    source = sample_audio(seconds)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "stereo" if channels == 2 else "mono"
        resampler = av.AudioResampler(
            format=stream.format.name, layout=stream.layout.name, rate=rate
        )
        frame = av.AudioFrame.from_ndarray(source.astype(np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.time_base = 16000, Fraction(1, 16000)
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def requests(name: str, data: bytes) -> Iterator[pb.TranscribeFileRequest]:
    yield pb.TranscribeFileRequest(config=pb.FileConfig(filename=name))
    for offset in range(0, len(data), 16 * 1024):
        yield pb.TranscribeFileRequest(data=data[offset : offset + 16 * 1024])


@pytest.mark.parametrize(("name", "container", "codec", "rate", "channels"), FORMATS)
async def test_each_format_is_decoded_and_transcribed(
    stub: pb_grpc.TranscriberServiceStub,
    name: str,
    container: str,
    codec: str,
    rate: int,
    channels: int,
) -> None:
    data = encode(name, container, codec, rate, channels, seconds=6.0)
    [audio] = decode_file(data, split_channels=False)
    assert len(audio) / 16000 == pytest.approx(6.0, abs=0.15)
    responses = [r async for r in stub.TranscribeFile(requests(name, data))]
    text = " ".join(r.segment.text for r in responses if r.HasField("segment")).lower()
    assert "jordan" in text and "acme" in text


def test_a_truncated_file_is_unreadable_or_shorter_never_a_crash() -> None:
    data = encode("call.mp3", "mp3", "libmp3lame", 16000, 1, seconds=6.0)
    for cut in (10, 100, len(data) // 2):
        try:
            [audio] = decode_file(data[:cut], split_channels=False)
        except UnreadableAudio as error:
            assert str(error)
        else:
            assert len(audio) / 16000 < 6.0
