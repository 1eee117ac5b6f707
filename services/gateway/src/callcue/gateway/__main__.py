from __future__ import annotations

from callcue.core.entrypoint import run_service
from callcue.gateway.app import migrate, serve
from callcue.gateway.settings import Settings


def main() -> None:
    run_service("gateway", Settings.from_env, serve, migrate)


if __name__ == "__main__":
    main()
