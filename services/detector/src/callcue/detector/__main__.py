from __future__ import annotations

from callcue.core.entrypoint import run_service
from callcue.detector.app import migrate, serve
from callcue.detector.settings import Settings


def main() -> None:
    run_service("detector", Settings.from_env, serve, migrate)


if __name__ == "__main__":
    main()
