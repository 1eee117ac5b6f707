from __future__ import annotations

import asyncio

import pytest

from callcue.core.backoff import Backoff


async def test_pauses_grow_then_repeat_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    backoff = Backoff((0.1, 0.5, 2.0))
    for _ in range(5):
        await backoff.wait()
    assert slept == [0.1, 0.5, 2.0, 2.0, 2.0]
    assert not backoff.exhausted  # no limit: it goes on
    backoff.reset()
    await backoff.wait()
    assert slept[-1] == 0.1


async def test_gives_up_after_so_many_failures_in_a_row() -> None:
    backoff = Backoff((0.0,), give_up_after=2)
    await backoff.wait()
    assert not backoff.exhausted
    await backoff.wait()
    assert backoff.exhausted
    backoff.reset()  # an attempt that got somewhere
    assert not backoff.exhausted and backoff.failures == 0
