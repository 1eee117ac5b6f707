"""Raw audio in, 16 kHz mono float32 per channel out."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from callcue.call.v1 import call_pb2

SAMPLE_RATE = 16_000

Samples = npt.NDArray[np.float32]


def _mulaw_table() -> Samples:
    code = ~np.arange(256, dtype=np.uint8)
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84 << exponent) - 0x84
    value = np.where(code & 0x80, -magnitude, magnitude)
    return (value / 32768.0).astype(np.float32)


def _alaw_table() -> Samples:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    value = np.where(code & 0x80, magnitude, -magnitude)
    return (value / 32768.0).astype(np.float32)


_G711 = {call_pb2.AUDIO_ENCODING_MULAW: _mulaw_table(), call_pb2.AUDIO_ENCODING_ALAW: _alaw_table()}


class StreamDecoder:
    """Turns arbitrary-sized chunks of interleaved raw audio into 16 kHz float32
    arrays per channel, carrying partial frames and resampler state across chunks.

    The format must have passed ``callcue.core.audio_format.check_format``."""

    def __init__(self, audio_format: call_pb2.AudioFormat) -> None:
        self.channels = audio_format.channel_count or 1
        self._encoding = audio_format.encoding
        self._sample_bytes = 2 if self._encoding == call_pb2.AUDIO_ENCODING_LINEAR16 else 1
        self._frame_bytes = self._sample_bytes * self.channels
        self._carry = b""
        rate = audio_format.sample_rate_hertz
        # soxr's HQ resampler: measurably better WER on 8 kHz phone audio than the default.
        self._resamplers = (
            [
                soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
                for _ in range(self.channels)
            ]
            if rate != SAMPLE_RATE
            else None
        )
        self.bytes_received = 0
        self._input_rate = rate

    @property
    def seconds_received(self) -> float:
        return self.bytes_received / self._frame_bytes / self._input_rate

    def decode(self, chunk: bytes, last: bool = False) -> list[Samples]:
        self.bytes_received += len(chunk)
        data = self._carry + chunk
        usable = len(data) - len(data) % self._frame_bytes
        self._carry = data[usable:]
        if self._encoding == call_pb2.AUDIO_ENCODING_LINEAR16:
            samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
        else:
            samples = _G711[self._encoding][np.frombuffer(data[:usable], dtype=np.uint8)]
        frames = samples.reshape(-1, self.channels)
        out = []
        for index in range(self.channels):
            channel = np.ascontiguousarray(frames[:, index])
            if self._resamplers is not None:
                channel = self._resamplers[index].resample_chunk(channel, last=last)
            out.append(channel.astype(np.float32, copy=False))
        return out
