"""Where the services are and which API key to send: flags, else the environment, else the
config file, else the local stack `make run` starts.

The config file is TOML (``$CALLCUE_CONFIG``, default ``~/.config/callcue/config.toml``):

    gateway = "callcue.example.com:443"
    notifier = "callcue.example.com:443"
    detector = "callcue.example.com:443"
    api_key = "cc_..."
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
    unknown = set(data) - {*DEFAULTS, "api_key"}
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    return {key: str(value) for key, value in data.items()}


@dataclass(frozen=True)
class ClientConfig:
    addresses: dict[str, str]
    key: str | None

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
        return cls(addresses, key.strip() if key else None)

    def channel(self, service: str) -> grpc.aio.Channel:
        if not self.key:
            raise NoApiKey
        return open_channel(self.addresses[service], credentials=api_key(self.key))


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (flags, else CALLCUE_* variables, else config)")
    group.add_argument("--api-key", help="API key (or CALLCUE_API_KEY, or api_key in the config)")
    for service, default in DEFAULTS.items():
        group.add_argument(f"--{service}", help=f"{service} address (default {default})")
