"""Phone systems send audio in real time, about fifty messages a second; a stream that
sends far more, or audio far ahead of the clock, is cut off before it can cost the
transcriber more than a call."""

from __future__ import annotations

import time
from collections.abc import Callable

from callcue.telephony.settings import Limits


class Flood(Exception):
    pass


class FloodGuard:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._rate = limits.max_messages_per_second
        # A few seconds of burst: a phone system catching up after a network stall.
        self._capacity = self._rate * 3
        self._tokens = self._capacity
        self._lead = limits.max_audio_lead_seconds
        self._started = self._last = clock()
        self._audio_seconds = 0.0

    def message(self) -> None:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1:
            raise Flood(f"more than {self._rate:.0f} messages a second")
        self._tokens -= 1

    def audio(self, seconds: float) -> None:
        self._audio_seconds += seconds
        ahead = self._audio_seconds - (self._clock() - self._started)
        if ahead > self._lead:
            raise Flood(f"audio arrives {ahead:.1f} s ahead of real time")
