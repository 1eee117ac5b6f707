"""Notifier settings, read from the environment once."""

from __future__ import annotations

from dataclasses import dataclass

from callcue.core.settings import PREFIX, Doors, Environment, ServerSettings


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    # Events kept per session for subscribers that join late or reconnect.
    events_per_session: int
    # Ended sessions kept for replay before the oldest are forgotten (in memory).
    ended_sessions_kept: int
    # Redis shared by every replica; without it one notifier keeps events in memory.
    redis_url: str
    # A session's events stay in Redis this long after its last event.
    session_ttl_seconds: int
    # A session whose Publish stream broke, and that no publisher took up again within
    # this time (a gateway reconnects in seconds), is ended as FAILED for its subscribers.
    orphaned_session_seconds: float

    @classmethod
    def from_env(cls, env: Environment) -> Settings:
        return cls(
            server=ServerSettings.from_env(
                env, default_port=50054, doors=Doors("notifier", internal=True)
            ),
            events_per_session=env.integer(
                f"{PREFIX}NOTIFIER_EVENTS_PER_SESSION", 100_000, minimum=100, maximum=10_000_000
            ),
            ended_sessions_kept=env.integer(
                f"{PREFIX}NOTIFIER_ENDED_SESSIONS_KEPT", 1000, minimum=1, maximum=1_000_000
            ),
            redis_url=env.string("REDIS_URL", ""),
            session_ttl_seconds=env.integer(
                f"{PREFIX}NOTIFIER_SESSION_TTL_SECONDS", 86_400, minimum=60, maximum=30 * 86_400
            ),
            orphaned_session_seconds=env.number(
                f"{PREFIX}NOTIFIER_ORPHANED_SESSION_SECONDS", 30.0, minimum=1.0, maximum=3600.0
            ),
        )
