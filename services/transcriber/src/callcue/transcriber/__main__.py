from __future__ import annotations

from callcue.core.entrypoint import run_service
from callcue.transcriber.app import serve
from callcue.transcriber.settings import Settings


def main() -> None:
    run_service("transcriber", Settings.from_env, serve)


if __name__ == "__main__":
    main()
