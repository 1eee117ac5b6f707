"""Telephony settings, read from the environment once."""

from __future__ import annotations

from dataclasses import dataclass

from callcue.core.settings import PREFIX, Doors, Environment, ServerSettings, SettingsError


@dataclass(frozen=True)
class Limits:
    """What one phone-system stream may do before it is cut off."""

    # Largest WebSocket message (a Twilio media frame is about 250 bytes, an AudioHook
    # one a few KiB).
    max_message_bytes: int = 64 * 1024
    # Messages a second, averaged over a few seconds; phone systems send 50.
    max_messages_per_second: float = 400.0
    # How far the audio received may run ahead of the wall clock: phone systems send in
    # real time, so a stream far ahead is a flood (or a replay), not a call.
    max_audio_lead_seconds: float = 10.0
    # Out-of-order Twilio frames are reordered within this much audio; later ones are
    # dropped and the gap is filled with silence.
    reorder_window_seconds: float = 0.2
    # A pause, hold or gap filled with silence is capped at this, so a bad position value
    # cannot make the service write hours of silence.
    max_silence_fill_seconds: float = 600.0
    # An AudioHook connection lost without "close" keeps its call open this long for the
    # reconnect that continues it.
    reconnect_grace_seconds: float = 30.0


@dataclass(frozen=True)
class Settings:
    # The WebSocket port phone systems connect to (CALLCUE_PORT) and how it logs and drains.
    server: ServerSettings
    # The gRPC ConnectorService (with health and reflection) on its own port.
    grpc_port: int
    gateway_address: str
    # Fernet key (url-safe base64 of 32 bytes) that seals connector secrets in the database.
    secrets_key: str
    # The address phone systems use, for example "wss://calls.example.com"; Twilio signs
    # the URL it connects to. Empty: rebuilt from the request's Host and X-Forwarded-Proto.
    public_url: str
    limits: Limits

    @property
    def database_url(self) -> str:
        url = self.server.auth.database_url
        assert url is not None  # checked in from_env
        return url

    @classmethod
    def from_env(cls, env: Environment) -> Settings:
        server = ServerSettings.from_env(env, default_port=8090, doors=Doors("telephony"))
        if server.auth.database_url is None:
            raise SettingsError("DATABASE_URL is required: connectors are kept there")
        secrets_key = env.optional(f"{PREFIX}TELEPHONY_SECRETS_KEY")
        if not secrets_key:
            raise SettingsError(
                f"{PREFIX}TELEPHONY_SECRETS_KEY is required: it seals connector secrets "
                "(make one with `callcue connectors new-secrets-key`)"
            )
        defaults = Limits()
        return cls(
            server=server,
            grpc_port=env.integer(f"{PREFIX}TELEPHONY_GRPC_PORT", 50055, minimum=0, maximum=65535),
            gateway_address=env.string(f"{PREFIX}GATEWAY_ADDRESS", "localhost:50051"),
            secrets_key=secrets_key,
            public_url=env.string(f"{PREFIX}TELEPHONY_PUBLIC_URL", "").rstrip("/"),
            limits=Limits(
                max_message_bytes=env.integer(
                    f"{PREFIX}TELEPHONY_MAX_MESSAGE_BYTES",
                    defaults.max_message_bytes,
                    minimum=1024,
                    maximum=16 * 1024 * 1024,
                ),
                max_messages_per_second=env.number(
                    f"{PREFIX}TELEPHONY_MAX_MESSAGES_PER_SECOND",
                    defaults.max_messages_per_second,
                    minimum=10.0,
                    maximum=100_000.0,
                ),
                max_audio_lead_seconds=env.number(
                    f"{PREFIX}TELEPHONY_MAX_AUDIO_LEAD_SECONDS",
                    defaults.max_audio_lead_seconds,
                    minimum=1.0,
                    maximum=86_400.0,
                ),
                reorder_window_seconds=env.number(
                    f"{PREFIX}TELEPHONY_REORDER_WINDOW_SECONDS",
                    defaults.reorder_window_seconds,
                    minimum=0.0,
                    maximum=5.0,
                ),
                max_silence_fill_seconds=env.number(
                    f"{PREFIX}TELEPHONY_MAX_SILENCE_FILL_SECONDS",
                    defaults.max_silence_fill_seconds,
                    minimum=0.0,
                    maximum=86_400.0,
                ),
                reconnect_grace_seconds=env.number(
                    f"{PREFIX}TELEPHONY_RECONNECT_GRACE_SECONDS",
                    defaults.reconnect_grace_seconds,
                    minimum=0.0,
                    maximum=3600.0,
                ),
            ),
        )
