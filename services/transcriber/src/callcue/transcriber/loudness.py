"""Which windows stand out from a channel's noise floor: the VAD's fallback.

Silero can score clear speech almost as low as silence (speech band-limited to 1-3 kHz, a
conference bridge's codec); whatever is that much louder than the channel's background may
be speech, so it is handed to Whisper to judge instead of being thrown away.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from callcue.transcriber.audio import Samples

_SILENCE_DB = -100.0


class LoudnessGate:
    """Per window of ``window`` samples: is it ``margin_db`` above the noise floor and
    louder than ``minimum_db`` (dBFS)? The floor is the quietest window of the last
    ``floor_seconds``: speech dips between words well within that, while steady noise, hum
    or a sustained chord is its own floor after that long and stops counting; speech,
    music and a slammed door stand out, and the cutter and Whisper sort them out."""

    def __init__(
        self,
        window: int,
        *,
        sample_rate: int,
        margin_db: float = 12.0,
        minimum_db: float = -60.0,
        floor_seconds: float = 2.0,
    ) -> None:
        self._margin = margin_db
        self._minimum = minimum_db
        windows = max(1, round(floor_seconds * sample_rate / window))
        self._levels: deque[float] = deque(maxlen=windows)

    def loud(self, windows: Samples) -> np.ndarray:
        """``windows``: shape (n, window). One bool per window."""
        power = np.mean(np.square(windows, dtype=np.float64), axis=1)
        levels = np.where(power > 0, 10 * np.log10(np.maximum(power, 1e-20)), _SILENCE_DB)
        out = np.zeros(len(levels), dtype=bool)
        for index, level in enumerate(levels):
            self._levels.append(float(level))
            floor = min(self._levels)
            out[index] = level >= self._minimum and level >= floor + self._margin
        return out
