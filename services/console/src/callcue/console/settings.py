"""Console settings, read from the environment once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from callcue.core.settings import PREFIX, Doors, Environment, ServerSettings, SettingsError


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    gateway_address: str
    notifier_address: str
    detector_address: str
    # The telephony service's ConnectorService (phone-system connectors).
    telephony_address: str
    # The built pages (clients/web/dist, from `make install`).
    static_dir: Path
    # Send the session cookie over HTTPS only. Off only for http://localhost development.
    secure_cookies: bool
    session_lifetime: timedelta
    login_failures: int
    login_window_seconds: float
    # Largest recording a browser may upload.
    max_upload_bytes: int

    @property
    def database_url(self) -> str:
        url = self.server.auth.database_url
        assert url is not None  # checked in from_env
        return url

    @classmethod
    def from_env(cls, env: Environment) -> Settings:
        server = ServerSettings.from_env(env, default_port=8080, doors=Doors("console"))
        if server.auth.database_url is None:
            raise SettingsError("DATABASE_URL is required: the console keeps its users there")
        return cls(
            server=server,
            gateway_address=env.string(f"{PREFIX}GATEWAY_ADDRESS", "localhost:50051"),
            notifier_address=env.string(f"{PREFIX}NOTIFIER_ADDRESS", "localhost:50054"),
            detector_address=env.string(f"{PREFIX}DETECTOR_ADDRESS", "localhost:50053"),
            telephony_address=env.string(f"{PREFIX}TELEPHONY_ADDRESS", "localhost:50055"),
            static_dir=Path(env.string(f"{PREFIX}CONSOLE_STATIC_DIR", "clients/web/dist")),
            secure_cookies=env.boolean(f"{PREFIX}CONSOLE_SECURE_COOKIES", True),
            session_lifetime=timedelta(
                hours=env.number(
                    f"{PREFIX}CONSOLE_SESSION_HOURS", 12.0, minimum=0.01, maximum=24 * 30
                )
            ),
            login_failures=env.integer(
                f"{PREFIX}CONSOLE_LOGIN_FAILURES", 5, minimum=1, maximum=1000
            ),
            login_window_seconds=env.number(
                f"{PREFIX}CONSOLE_LOGIN_WINDOW_SECONDS", 60.0, minimum=1.0, maximum=86_400.0
            ),
            max_upload_bytes=env.integer(
                f"{PREFIX}CONSOLE_MAX_UPLOAD_BYTES",
                200 * 1024 * 1024,
                minimum=1024,
                maximum=10 * 1024 * 1024 * 1024,
            ),
        )
