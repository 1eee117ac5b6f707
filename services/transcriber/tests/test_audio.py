from __future__ import annotations

import warnings

import numpy as np
import pytest

from callcue.call.v1 import call_pb2
from callcue.transcriber.audio import StreamDecoder, _alaw_table, _mulaw_table

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def test_g711_tables_match_the_reference_decoder() -> None:
    every_byte = bytes(range(256))
    mulaw = np.frombuffer(audioop.ulaw2lin(every_byte, 2), dtype="<i2") / 32768.0
    alaw = np.frombuffer(audioop.alaw2lin(every_byte, 2), dtype="<i2") / 32768.0
    assert np.array_equal(_mulaw_table(), mulaw.astype(np.float32))
    assert np.array_equal(_alaw_table(), alaw.astype(np.float32))


def fmt(encoding: int, rate: int, channels: int = 1) -> call_pb2.AudioFormat:
    return call_pb2.AudioFormat(encoding=encoding, sample_rate_hertz=rate, channel_count=channels)  # type: ignore[arg-type]


def test_chunks_split_mid_frame_decode_like_one_chunk() -> None:
    rng = np.random.default_rng(0)
    stereo = (rng.uniform(-0.5, 0.5, (1600, 2)) * 32767).astype("<i2")
    data = stereo.tobytes()
    decoder = StreamDecoder(fmt(call_pb2.AUDIO_ENCODING_LINEAR16, 16000, 2))
    pieces = [decoder.decode(data[i : i + 333]) for i in range(0, len(data), 333)]
    left = np.concatenate([piece[0] for piece in pieces])
    right = np.concatenate([piece[1] for piece in pieces])
    assert np.allclose(left, stereo[:, 0] / 32768.0)
    assert np.allclose(right, stereo[:, 1] / 32768.0)
    assert decoder.seconds_received == pytest.approx(0.1)


def test_8khz_is_resampled_to_16khz() -> None:
    decoder = StreamDecoder(fmt(call_pb2.AUDIO_ENCODING_MULAW, 8000))
    out = decoder.decode(bytes(8000)) + decoder.decode(b"", last=True)
    assert sum(len(channel) for channel in out) == pytest.approx(16000, abs=2)
