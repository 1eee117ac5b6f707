"""Failed logins slow down guessing: after a few failures in a window, from one address or
for one username, further attempts are refused until the window passes."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class LoginLimiter:
    """Per replica, in memory: with N replicas a guesser gets N times the budget, still a
    handful of guesses a minute against an Argon2 hash."""

    def __init__(
        self,
        *,
        failures: int = 5,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 100_000,
    ) -> None:
        self._failures = failures
        self._window = window_seconds
        self._clock = clock
        self._max = max_tracked
        self._seen: dict[str, deque[float]] = {}

    def retry_after(self, *subjects: str) -> float:
        """Seconds until any of ``subjects`` may try again; 0 if they may now."""
        now = self._clock()
        wait = 0.0
        for subject in subjects:
            times = self._recent(subject, now)
            if len(times) >= self._failures:
                wait = max(wait, times[0] + self._window - now)
        return math.ceil(wait) if wait > 0 else 0.0

    def failed(self, *subjects: str) -> None:
        now = self._clock()
        if len(self._seen) >= self._max:
            self._seen.clear()  # a flood of names must not grow memory without bound
        for subject in subjects:
            self._seen.setdefault(subject, deque()).append(now)

    def succeeded(self, *subjects: str) -> None:
        for subject in subjects:
            self._seen.pop(subject, None)

    def _recent(self, subject: str, now: float) -> deque[float]:
        times = self._seen.get(subject, deque())
        while times and times[0] <= now - self._window:
            times.popleft()
        return times
