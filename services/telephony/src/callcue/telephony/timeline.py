"""Audio placed by its position in the call: frames that arrive out of order are put back
in order, missing ones become silence, and each party's track becomes one channel of an
interleaved stream, so the words keep their true times."""

from __future__ import annotations

import numpy as np

from callcue.call.v1 import call_pb2

# The byte of a sample at zero, by encoding (G.711 mu-law codes zero as 0xFF).
_SILENCE: dict[int, bytes] = {
    call_pb2.AUDIO_ENCODING_MULAW: b"\xff",
    call_pb2.AUDIO_ENCODING_ALAW: b"\xd5",
    call_pb2.AUDIO_ENCODING_LINEAR16: b"\x00\x00",
}


class PositionError(ValueError):
    """A frame's position is impossible: too far ahead, or not on a sample."""


def sample_bytes(encoding: int) -> int:
    return len(_SILENCE[encoding])


def silence(encoding: int, channels: int, samples: int) -> bytes:
    return _SILENCE[encoding] * (channels * max(0, samples))


class Timeline:
    def __init__(
        self,
        encoding: int,
        channels: int,
        *,
        window_samples: int,
        max_gap_samples: int,
    ) -> None:
        self._encoding = encoding
        self._width = sample_bytes(encoding)
        self._dtype = np.uint8 if self._width == 1 else np.int16
        self._channels = channels
        self._window = window_samples
        self._max_gap = max_gap_samples
        self._pending: list[dict[int, bytes]] = [{} for _ in range(channels)]
        self._ends = [0] * channels
        # Every channel has been written out up to this sample.
        self.emitted = 0
        self.late_samples = 0
        self.filled_samples = 0

    def put(self, channel: int, start: int, data: bytes) -> None:
        if len(data) % self._width:
            raise PositionError("a frame must hold whole samples")
        count = len(data) // self._width
        if start < 0:
            raise PositionError("a frame's position cannot be negative")
        if start - max(self._ends) > self._max_gap:
            raise PositionError(
                f"a frame jumps {(start - max(self._ends))} samples past the rest of the call"
            )
        if start < self.emitted:
            # Too late: its place has been written out (as silence); keep what is still new.
            skip = min(count, self.emitted - start)
            self.late_samples += skip
            data, start, count = data[skip * self._width :], start + skip, count - skip
        if count:
            self._pending[channel][start] = data
            self._ends[channel] = max(self._ends[channel], start + count)

    def _contiguous_end(self, channel: int, start: int) -> int:
        """How far the channel's audio runs without a gap from ``start``."""
        end = start
        for piece in sorted(self._pending[channel]):
            piece_end = piece + len(self._pending[channel][piece]) // self._width
            if piece_end <= end:
                continue
            if piece > end:
                break
            end = piece_end
        return end

    def take(self, *, final: bool = False) -> bytes:
        """Interleaved audio from where the last take ended: as far as every channel has
        arrived without a gap (no waiting while frames come in order), and past a gap once
        the furthest frame is the reorder window beyond it (up to the end when final)."""
        # Up to here a gap is given up on (silence); from here, what has come in order.
        base = max(self.emitted, max(self._ends) - self._window)
        ready = min(self._contiguous_end(channel, base) for channel in range(self._channels))
        horizon = max(self._ends) if final else ready
        if horizon <= self.emitted:
            return b""
        length = horizon - self.emitted
        silent = np.frombuffer(_SILENCE[self._encoding], dtype=self._dtype)[0]
        out = np.full((length, self._channels), silent, dtype=self._dtype)
        for channel, pending in enumerate(self._pending):
            covered = 0
            for start in sorted(pending):
                if start >= horizon:
                    break
                samples = np.frombuffer(pending.pop(start), dtype=self._dtype)
                inside = min(len(samples), horizon - start)
                out[start - self.emitted : start - self.emitted + inside, channel] = samples[
                    :inside
                ]
                covered += inside
                if inside < len(samples):
                    pending[horizon] = samples[inside:].tobytes()
            self.filled_samples += length - covered
        self.emitted = horizon
        return out.tobytes()
