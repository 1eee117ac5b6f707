"""`callcue call --mic`: the default input device as a live call, through PortAudio
(sounddevice), 16 kHz mono in 100 ms chunks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from callcue.call.v1 import call_pb2

RATE = 16_000
CHUNK_SECONDS = 0.1
FORMAT = call_pb2.AudioFormat(
    encoding=call_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=RATE, channel_count=1
)


class NoMicrophone(Exception):
    pass


def _sounddevice() -> Any:
    try:
        import sounddevice  # PortAudio is loaded on import: only --mic needs it
    except OSError:
        raise NoMicrophone(
            "no microphone: the PortAudio library is not installed "
            "(Debian/Ubuntu: apt install libportaudio2; macOS: brew install portaudio)"
        ) from None
    try:
        sounddevice.query_devices(kind="input")
    except (sounddevice.PortAudioError, ValueError):
        raise NoMicrophone("no microphone: this machine has no audio input device") from None
    return sounddevice


def check() -> None:
    """NoMicrophone with the reason if the default input cannot be opened."""
    _sounddevice()


async def chunks() -> AsyncIterator[bytes]:
    """Audio from the default input until the consumer stops; Ctrl-C ends the call."""
    sounddevice = _sounddevice()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def captured(data: Any, frames: int, time: Any, status: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, bytes(data))

    with sounddevice.RawInputStream(
        samplerate=RATE,
        channels=1,
        dtype="int16",
        blocksize=int(RATE * CHUNK_SECONDS),
        callback=captured,
    ):
        while True:
            yield await queue.get()
