"""Recordings read for streaming as a live call: whatever FFmpeg decodes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from callcue.call.v1 import call_pb2


class RecordingError(ValueError):
    pass


@dataclass(frozen=True)
class Recording:
    pcm: bytes
    audio_format: call_pb2.AudioFormat

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (
            2 * self.audio_format.channel_count * self.audio_format.sample_rate_hertz
        )


def read_recording(path: Path) -> Recording:
    """Any recording FFmpeg decodes (WAV, FLAC, MP3, M4A, Ogg, ...) as 16-bit PCM, at its own
    sample rate (within the 8 to 48 kHz a call may have) and channels (mixed to mono past 8),
    through PyAV as the service's uploads are."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise RecordingError(f"{path}: no audio in it")
            stream = container.streams.audio[0]
            rate = min(max(stream.rate or 16000, 8000), 48000)
            layout = stream.layout.name if 1 <= stream.channels <= 8 else "mono"
            resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
            pcm = bytearray()
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    pcm += converted.to_ndarray().tobytes()
            for converted in resampler.resample(None):
                pcm += converted.to_ndarray().tobytes()
            channels = len(av.AudioLayout(layout).channels)
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise RecordingError(f"{path}: not a recording FFmpeg can read ({error})") from None
    if not pcm:
        raise RecordingError(f"{path}: the recording holds no audio")
    return Recording(
        bytes(pcm),
        call_pb2.AudioFormat(
            encoding=call_pb2.AUDIO_ENCODING_LINEAR16,
            sample_rate_hertz=rate,
            channel_count=channels,
        ),
    )
