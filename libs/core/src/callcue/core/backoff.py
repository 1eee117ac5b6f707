"""Waiting between attempts at something that failed: every retry loop of callcue.

Each loop states its own rules (the pauses, how many failures in a row it tolerates) and
resets the count when an attempt got somewhere, so a long call that loses a replica now and
then is never given up for failures hours apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

# Pauses before the next attempts, growing; the last repeats for as long as the loop goes on.
STREAM_PAUSES = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class Backoff:
    pauses: Sequence[float] = STREAM_PAUSES
    # Failures in a row after which ``exhausted`` is true; None: never give up.
    give_up_after: int | None = None
    failures: int = field(default=0, init=False)

    @property
    def exhausted(self) -> bool:
        return self.give_up_after is not None and self.failures >= self.give_up_after

    @property
    def next_pause(self) -> float:
        return self.pauses[min(self.failures, len(self.pauses) - 1)]

    async def wait(self) -> None:
        """Sleeps the pause this failure calls for, and counts it."""
        pause = self.next_pause
        self.failures += 1
        await asyncio.sleep(pause)

    def reset(self) -> None:
        """An attempt got somewhere: the next failure starts from the first pause."""
        self.failures = 0
