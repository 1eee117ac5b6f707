"""Settings read from the environment once, at start-up, into frozen objects.

A bad or missing value fails start-up with a message that names the variable and
says what it should be, instead of surfacing later as an obscure error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from callcue.core.api_keys import DEFAULT_TENANT, check_tenant_id
from callcue.core.service_tokens import ServiceKeyError, private_key, read_trusted

T = TypeVar("T")

PREFIX = "CALLCUE_"


class SettingsError(ValueError):
    """An environment variable is missing or has a value that cannot be used."""


class Environment:
    """Typed, validated reads of environment variables."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def string(self, name: str, default: str | None = None) -> str:
        value = self._raw(name)
        if value is not None:
            return value
        if default is None:
            raise SettingsError(f"{name} is required but not set")
        return default

    def optional(self, name: str) -> str | None:
        return self._raw(name)

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {number}")
        return number

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {number}")
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name} must be true or false, got {value!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(name, default).lower()
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Doors:
    """Who a service serves, and whether it calls internal RPCs itself: what its
    authentication settings must then hold."""

    # The service's name: the audience of the service credentials it accepts, the issuer
    # of those it signs.
    service: str = "callcue"
    # Public RPCs: tenant API keys, checked against DATABASE_URL.
    public: bool = True
    # Internal RPCs: credentials of the services in CALLCUE_TRUSTED_SERVICES_DIR.
    internal: bool = False
    # Calls internal RPCs: signs with CALLCUE_SERVICE_KEY_FILE.
    signs: bool = False


@dataclass(frozen=True)
class AuthSettings:
    """How callers prove who they are."""

    # "api-keys" (tenant keys and service credentials) or "none" (one tenant, no checks).
    mode: str
    # May hold a password: kept out of repr, and so out of logs.
    database_url: str | None = field(repr=False)
    cache_seconds: float
    single_tenant: str
    service: str = "callcue"
    public: bool = True
    # Public keys (PEM) of the services whose credentials this one accepts, by name.
    trusted_services: dict[str, bytes] | None = None
    # This service's private key (PEM) for the credentials it signs.
    service_key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Environment, doors: Doors | None = None) -> AuthSettings:
        doors = doors or Doors()
        mode = env.choice(f"{PREFIX}AUTH", "api-keys", ("api-keys", "none"))
        database_url = env.optional("DATABASE_URL")
        if mode == "api-keys" and doors.public and database_url is None:
            raise SettingsError(
                f"DATABASE_URL is required to check API keys ({PREFIX}AUTH=api-keys); "
                f"set {PREFIX}AUTH=none for a single-tenant setup without keys"
            )
        tenant = env.string(f"{PREFIX}SINGLE_TENANT", DEFAULT_TENANT)
        try:
            check_tenant_id(tenant)
        except ValueError as error:
            raise SettingsError(f"{PREFIX}SINGLE_TENANT: {error}") from None
        trusted_name, key_name = f"{PREFIX}TRUSTED_SERVICES_DIR", f"{PREFIX}SERVICE_KEY_FILE"
        trusted_dir, key_file = env.optional(trusted_name), env.optional(key_name)
        if mode == "api-keys" and doors.internal and trusted_dir is None:
            raise SettingsError(
                f"{trusted_name} is required: the directory of the public keys "
                f"(<service>.pub) of the services allowed to call {doors.service}"
            )
        if mode == "api-keys" and doors.signs and key_file is None:
            raise SettingsError(
                f"{key_name} is required: {doors.service}'s Ed25519 private key (PEM), "
                "which signs its calls to internal services"
            )
        trusted = None
        if trusted_dir is not None and doors.internal:
            try:
                trusted = read_trusted(Path(trusted_dir))
            except ServiceKeyError as error:
                raise SettingsError(f"{trusted_name}: {error}") from None
        return cls(
            mode=mode,
            database_url=database_url,
            cache_seconds=env.number(
                f"{PREFIX}AUTH_CACHE_SECONDS", 30.0, minimum=0.0, maximum=3600.0
            ),
            single_tenant=tenant,
            service=doors.service,
            public=doors.public,
            trusted_services=trusted,
            service_key=_service_key(key_name, key_file) if key_file and doors.signs else None,
        )


def _service_key(name: str, path: str) -> bytes:
    pem = _read(name, path)
    try:
        private_key(pem, path)
    except ServiceKeyError as error:
        raise SettingsError(f"{name}: {error}") from None
    return pem


@dataclass(frozen=True)
class TlsSettings:
    """The server's certificate for TLS, and the CA of client certificates for mutual TLS."""

    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None

    @classmethod
    def from_env(cls, env: Environment) -> TlsSettings | None:
        names = [f"{PREFIX}TLS_{name}" for name in ("CERT_FILE", "KEY_FILE", "CLIENT_CA_FILE")]
        cert, key, client_ca = (env.optional(name) for name in names)
        if cert is None and key is None:
            if client_ca is not None:
                raise SettingsError(f"{names[2]} needs {names[0]} and {names[1]} as well")
            return None
        if cert is None or key is None:
            raise SettingsError(f"{names[0]} and {names[1]} go together: set both or neither")
        return cls(
            _read(names[0], cert),
            _read(names[1], key),
            None if client_ca is None else _read(names[2], client_ca),
        )


def _read(name: str, path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise SettingsError(f"{name}: cannot read {path}: {error.strerror}") from None


@dataclass(frozen=True)
class ServerSettings:
    """How a service's gRPC server listens, logs and shuts down."""

    host: str
    port: int
    log_level: str
    log_format: str
    shutdown_grace_seconds: float
    max_message_bytes: int
    # Closing long-lived connections now and then lets clients rebalance onto new replicas.
    max_connection_age_seconds: float
    max_connection_age_grace_seconds: float
    # RPCs one process serves at once (streams included); more are refused with
    # RESOURCE_EXHAUSTED, so streams opened and left idle cannot exhaust memory (an idle
    # call stream holds about 42 KiB in the gateway). 0: no limit.
    max_concurrent_rpcs: int
    # Prometheus /metrics over HTTP on this port; 0 turns it off.
    metrics_port: int
    auth: AuthSettings
    # None: plaintext (inside a cluster, behind a TLS-terminating ingress).
    tls: TlsSettings | None

    @classmethod
    def from_env(
        cls, env: Environment, default_port: int, doors: Doors | None = None
    ) -> ServerSettings:
        return cls(
            host=env.string(f"{PREFIX}HOST", "[::]"),
            port=env.integer(f"{PREFIX}PORT", default_port, minimum=0, maximum=65535),
            log_level=env.choice(
                f"{PREFIX}LOG_LEVEL", "info", ("debug", "info", "warning", "error")
            ),
            log_format=env.choice(f"{PREFIX}LOG_FORMAT", "json", ("json", "console")),
            shutdown_grace_seconds=env.number(
                f"{PREFIX}SHUTDOWN_GRACE_SECONDS", 20.0, minimum=0.0, maximum=3600.0
            ),
            max_message_bytes=env.integer(
                f"{PREFIX}MAX_MESSAGE_BYTES", 8 * 1024 * 1024, minimum=64 * 1024, maximum=1 << 30
            ),
            max_connection_age_seconds=env.number(
                f"{PREFIX}MAX_CONNECTION_AGE_SECONDS", 0.0, minimum=0.0, maximum=7 * 86400.0
            ),
            max_connection_age_grace_seconds=env.number(
                f"{PREFIX}MAX_CONNECTION_AGE_GRACE_SECONDS", 3600.0, minimum=0.0, maximum=86400.0
            ),
            max_concurrent_rpcs=env.integer(
                f"{PREFIX}MAX_CONCURRENT_RPCS", 10_000, minimum=0, maximum=1_000_000
            ),
            metrics_port=env.integer(f"{PREFIX}METRICS_PORT", 9090, minimum=0, maximum=65535),
            auth=AuthSettings.from_env(env, doors),
            tls=TlsSettings.from_env(env),
        )
