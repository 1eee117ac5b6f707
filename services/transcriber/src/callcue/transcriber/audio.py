"""Raw audio in, 16 kHz mono float32 per channel out."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from callcue.call.v1 import call_pb2

SAMPLE_RATE = 16_000
MIN_RATE, MAX_RATE = 8_000, 48_000
MAX_CHANNELS = 8

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


class FormatError(ValueError):
    """The declared audio format cannot be used; the message names the field."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


def check_format(audio_format: call_pb2.AudioFormat) -> int:
    """Validates a stream's format; returns its channel count."""
    if audio_format.encoding not in (
        call_pb2.AUDIO_ENCODING_LINEAR16,
        call_pb2.AUDIO_ENCODING_MULAW,
        call_pb2.AUDIO_ENCODING_ALAW,
    ):
        raise FormatError(
            "audio_format.encoding",
            f"unsupported encoding {audio_format.encoding}; use LINEAR16, MULAW or ALAW",
        )
    if not MIN_RATE <= audio_format.sample_rate_hertz <= MAX_RATE:
        raise FormatError(
            "audio_format.sample_rate_hertz",
            f"must be {MIN_RATE} to {MAX_RATE}, got {audio_format.sample_rate_hertz}",
        )
    channels = audio_format.channel_count or 1
    if not 1 <= channels <= MAX_CHANNELS:
        raise FormatError(
            "audio_format.channel_count", f"must be 1 to {MAX_CHANNELS}, got {channels}"
        )
    return channels


class StreamDecoder:
    """Turns arbitrary-sized chunks of interleaved raw audio into 16 kHz float32
    arrays per channel, carrying partial frames and resampler state across chunks."""

    def __init__(self, audio_format: call_pb2.AudioFormat) -> None:
        self.channels = check_format(audio_format)
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
