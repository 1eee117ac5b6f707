"""Detector settings, read from the environment once."""

from __future__ import annotations

from dataclasses import dataclass, field

from callcue.core.settings import PREFIX, Doors, Environment, ServerSettings


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    # May hold a password: kept out of repr, and so out of logs.
    database_url: str = field(repr=False)
    database_pool_size: int
    # Load the sentence model (about 90 MB) so keywords with examples fire on meaning.
    semantic_triggers: bool

    @classmethod
    def from_env(cls, env: Environment) -> Settings:
        return cls(
            server=ServerSettings.from_env(
                env, default_port=50053, doors=Doors("detector", internal=True)
            ),
            database_url=env.string("DATABASE_URL"),
            database_pool_size=env.integer(
                f"{PREFIX}DATABASE_POOL_SIZE", 10, minimum=1, maximum=200
            ),
            semantic_triggers=env.boolean(f"{PREFIX}SEMANTIC_TRIGGERS", True),
        )
