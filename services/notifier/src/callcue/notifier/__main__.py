from __future__ import annotations

from callcue.core.entrypoint import run_service
from callcue.notifier.app import serve
from callcue.notifier.settings import Settings


def main() -> None:
    run_service("notifier", Settings.from_env, serve)


if __name__ == "__main__":
    main()
