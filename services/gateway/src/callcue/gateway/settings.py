"""Gateway settings, read from the environment once."""

from __future__ import annotations

from dataclasses import dataclass, field

from callcue.core.settings import PREFIX, Doors, Environment, ServerSettings
from callcue.gateway.session_store import LEASE_SECONDS


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    # May hold a password: kept out of repr, and so out of logs.
    database_url: str = field(repr=False)
    database_pool_size: int
    transcriber_address: str
    detector_address: str
    notifier_address: str
    # One audio message: a few seconds of audio at most; more suggests a broken client.
    max_chunk_bytes: int
    max_call_seconds: float
    max_upload_bytes: int
    # Live calls a tenant may run at once unless its own limit says otherwise.
    max_concurrent_calls: int
    # Send the call's playbook phrases to the transcriber as hotwords (prompt bias), which
    # raised detector recall (docs/benchmarks.md, Detector).
    hotwords_from_playbook: bool
    # A live session's lease: a gateway that stops renewing it (it died) has its sessions
    # failed and no longer counted against the tenant's limit after this long.
    session_lease_seconds: float

    @classmethod
    def from_env(cls, env: Environment) -> Settings:
        return cls(
            server=ServerSettings.from_env(
                env, default_port=50051, doors=Doors("gateway", signs=True)
            ),
            database_url=env.string("DATABASE_URL"),
            database_pool_size=env.integer(
                f"{PREFIX}DATABASE_POOL_SIZE", 10, minimum=1, maximum=200
            ),
            transcriber_address=env.string(f"{PREFIX}TRANSCRIBER_ADDRESS", "localhost:50052"),
            detector_address=env.string(f"{PREFIX}DETECTOR_ADDRESS", "localhost:50053"),
            notifier_address=env.string(f"{PREFIX}NOTIFIER_ADDRESS", "localhost:50054"),
            max_chunk_bytes=env.integer(
                f"{PREFIX}MAX_CHUNK_BYTES", 1024 * 1024, minimum=1024, maximum=64 * 1024 * 1024
            ),
            max_call_seconds=env.number(
                f"{PREFIX}MAX_CALL_SECONDS", 4 * 3600.0, minimum=10.0, maximum=7 * 86400.0
            ),
            max_upload_bytes=env.integer(
                f"{PREFIX}MAX_UPLOAD_BYTES", 500 * 1024 * 1024, minimum=1024, maximum=1 << 34
            ),
            max_concurrent_calls=env.integer(
                f"{PREFIX}MAX_CONCURRENT_CALLS", 100, minimum=0, maximum=1_000_000
            ),
            hotwords_from_playbook=env.boolean(f"{PREFIX}HOTWORDS_FROM_PLAYBOOK", True),
            session_lease_seconds=env.number(
                f"{PREFIX}SESSION_LEASE_SECONDS", LEASE_SECONDS, minimum=1.0, maximum=3600.0
            ),
        )
