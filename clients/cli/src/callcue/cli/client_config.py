"""Where the services are and which API key to send: flags, else the environment, else the
config file, else the local stack `make run` starts.

The config file is TOML (``$CALLCUE_CONFIG``, default ``~/.config/callcue/config.toml``):

    gateway = "callcue.example.com:443"
    notifier = "callcue.example.com:443"
    detector = "callcue.example.com:443"
    api_key = "cc_..."
    tls = true                     # or ca_cert = "ca.pem" for a private CA
    client_cert = "me.pem"         # mutual TLS, when the server asks for it
    client_key = "me.key"
"""

from __future__ import annotations

import argparse
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import grpc

from callcue.cli.credentials_file import DEV_KEY_FILE, NoApiKey
from callcue.core.channel import open_channel
from callcue.core.credentials import api_key

DEFAULTS = {
    "gateway": "localhost:50051",
    "detector": "localhost:50053",
    "notifier": "localhost:50054",
}
TLS_SETTINGS = ("tls", "ca_cert", "client_cert", "client_key")


class ConfigError(ValueError):
    pass


def config_path() -> Path:
    return Path(os.environ.get("CALLCUE_CONFIG", "~/.config/callcue/config.toml")).expanduser()


def _file() -> dict[str, str]:
    path = config_path()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    unknown = set(data) - {*DEFAULTS, "api_key", *TLS_SETTINGS}
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    return {key: str(value).lower() if key == "tls" else str(value) for key, value in data.items()}


@dataclass(frozen=True)
class ClientConfig:
    addresses: dict[str, str]
    key: str | None
    tls: grpc.ChannelCredentials | None = None

    @classmethod
    def resolve(cls, args: argparse.Namespace) -> ClientConfig:
        from_file = _file()
        addresses = {
            service: getattr(args, service, None)
            or os.environ.get(f"CALLCUE_{service.upper()}")
            or from_file.get(service)
            or default
            for service, default in DEFAULTS.items()
        }
        key = getattr(args, "api_key", None) or os.environ.get("CALLCUE_API_KEY")
        key = key or from_file.get("api_key")
        if not key and DEV_KEY_FILE.is_file():
            key = DEV_KEY_FILE.read_text().strip()
        return cls(addresses, key.strip() if key else None, _tls(args, from_file))

    def channel(self, service: str) -> grpc.aio.Channel:
        if not self.key:
            raise NoApiKey
        return open_channel(self.addresses[service], credentials=api_key(self.key), tls=self.tls)


def _tls(args: argparse.Namespace, from_file: dict[str, str]) -> grpc.ChannelCredentials | None:
    def setting(name: str) -> str | None:
        return getattr(args, name, None) or from_file.get(name)

    if not (getattr(args, "tls", False) or from_file.get("tls") == "true" or setting("ca_cert")):
        return None

    def read(name: str) -> bytes | None:
        path = setting(name)
        if path is None:
            return None
        try:
            return Path(path).expanduser().read_bytes()
        except OSError as error:
            message = f"{name.replace('_', '-')}: cannot read {path}: {error.strerror}"
            raise ConfigError(message) from None

    if bool(setting("client_cert")) != bool(setting("client_key")):
        raise ConfigError("--client-cert and --client-key go together")
    return grpc.ssl_channel_credentials(
        root_certificates=read("ca_cert"),
        private_key=read("client_key"),
        certificate_chain=read("client_cert"),
    )


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (flags, else CALLCUE_* variables, else config)")
    group.add_argument("--api-key", help="API key (or CALLCUE_API_KEY, or api_key in the config)")
    for service, default in DEFAULTS.items():
        group.add_argument(f"--{service}", help=f"{service} address (default {default})")
    group.add_argument("--tls", action="store_true", help="encrypt, trusting the system's CAs")
    group.add_argument("--ca-cert", help="encrypt, trusting this CA certificate (PEM)")
    group.add_argument("--client-cert", help="client certificate (PEM) for mutual TLS")
    group.add_argument("--client-key", help="client certificate's private key (PEM)")
