"""Decoding uploaded recordings of any common format with PyAV."""

from __future__ import annotations

import io

import av
import numpy as np
import soxr

from callcue.transcriber.audio import SAMPLE_RATE, Samples


class UnreadableAudio(ValueError):
    """The bytes are not audio PyAV can decode; the message says why."""


def decode_file(data: bytes, *, split_channels: bool) -> list[Samples]:
    """The recording at 16 kHz: one array per channel, or one mixed-down array.

    Decoding happens at the file's own rate and soxr's high-quality resampler
    converts it, which recognises 8 kHz phone audio better than a fast resampler.
    """
    if not data:
        raise UnreadableAudio("the file is empty")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise UnreadableAudio("the file has no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
            planes = []
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    planes.append(converted.to_ndarray())
            for converted in resampler.resample(None):
                planes.append(converted.to_ndarray())
            rate = stream.rate
    except av.error.FFmpegError as error:
        raise UnreadableAudio(f"cannot decode the audio: {error}") from None
    if not planes:
        raise UnreadableAudio("the file contains no audio samples")
    audio = np.concatenate(planes, axis=1).astype(np.float32)
    channels = list(audio) if split_channels else [audio.mean(axis=0)]
    if rate == SAMPLE_RATE:
        return [np.ascontiguousarray(channel) for channel in channels]
    return [
        soxr.resample(channel, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
        for channel in channels
    ]


def channel_count(data: bytes) -> int:
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise UnreadableAudio("the file has no audio stream")
            return int(container.streams.audio[0].channels)
    except av.error.FFmpegError as error:
        raise UnreadableAudio(f"cannot decode the audio: {error}") from None
