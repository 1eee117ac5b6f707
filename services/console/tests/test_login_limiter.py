from __future__ import annotations

from callcue.console.login_limiter import LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_past_the_limit_wait_until_the_window_passes() -> None:
    clock = Clock()
    limiter = LoginLimiter(failures=3, window_seconds=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("user:a", "address:1") == 0
        limiter.failed("user:a", "address:1")
    assert limiter.retry_after("user:a") == 60
    # Another name from the same address is held back as well.
    assert limiter.retry_after("user:b", "address:1") == 60
    clock.now += 59.5
    assert limiter.retry_after("user:a") == 1
    clock.now += 1
    assert limiter.retry_after("user:a", "address:1") == 0


def test_a_success_forgets_the_failures() -> None:
    limiter = LoginLimiter(failures=2, window_seconds=60, clock=Clock())
    limiter.failed("user:a")
    limiter.succeeded("user:a")
    limiter.failed("user:a")
    assert limiter.retry_after("user:a") == 0


def test_memory_stays_bounded_under_a_flood_of_names() -> None:
    limiter = LoginLimiter(failures=2, window_seconds=60, clock=Clock(), max_tracked=100)
    for index in range(1000):
        limiter.failed(f"user:{index}")
    assert len(limiter._seen) <= 100
