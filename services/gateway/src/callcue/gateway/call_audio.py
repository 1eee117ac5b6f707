"""A live call's recent audio, kept so a new transcriber can pick up where a lost one was."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

# What one request to the transcriber carries at most.
_CHUNK_SECONDS = 0.1


class CallAudio:
    """The caller's audio between the intake and the transcriber stream reading it.

    The intake waits while it is more than ``ahead_seconds`` ahead of the reader, so a
    slow transcriber still slows the caller down (gRPC flow control) rather than the
    gateway buffering without bound. The last ``keep_seconds`` behind the reader are kept
    for replay: a new transcriber stream can start from any point in them.
    """

    def __init__(
        self,
        bytes_per_second: int,
        frame_bytes: int,
        *,
        keep_seconds: float = 60.0,
        ahead_seconds: float = 5.0,
    ) -> None:
        self._rate = bytes_per_second
        self._frame = frame_bytes
        self._keep = self._aligned(keep_seconds * bytes_per_second)
        self._ahead = self._aligned(ahead_seconds * bytes_per_second)
        self._chunk = max(self._frame, self._aligned(_CHUNK_SECONDS * bytes_per_second))
        self._data = bytearray()
        self._base = 0  # call offset of _data[0], in bytes
        self._read = 0  # how far the current reader got
        self._closed = False
        self._changed = asyncio.Condition()

    def _aligned(self, size: float) -> int:
        return int(size) // self._frame * self._frame

    @property
    def end(self) -> int:
        return self._base + len(self._data)

    def seconds(self, offset: int) -> float:
        return offset / self._rate

    def offset(self, seconds: float) -> int:
        """The byte offset of a point in the call, as far back as is still kept."""
        return max(self._aligned(seconds * self._rate), self._base)

    async def append(self, chunk: bytes) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.end - self._read < self._ahead)
            self._data += chunk
            self._changed.notify_all()

    async def close(self) -> None:
        """No more audio will come: readers end when they reach the end."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _readable(self, position: int) -> bool:
        return self.end > position or self._closed

    async def read_from(self, offset: int) -> AsyncIterator[bytes]:
        """The audio from ``offset`` (a frame boundary still kept) to the end of the call."""
        position = max(offset, self._base)
        self._read = position
        while True:
            async with self._changed:
                await self._changed.wait_for(functools.partial(self._readable, position))
                if position >= self.end:
                    return
                start = position - self._base
                chunk = bytes(self._data[start : start + self._chunk])
                position += len(chunk)
                self._read = position
                drop = self._aligned(position - self._keep - self._base)
                if drop > 0:
                    del self._data[:drop]
                    self._base += drop
                self._changed.notify_all()
            yield chunk
