"""`callcue-console`: serves the browser console."""

from __future__ import annotations

from callcue.console import app
from callcue.console.settings import Settings
from callcue.core.entrypoint import run_service


def main() -> None:
    run_service("console", Settings.from_env, app.serve, app.migrate)


if __name__ == "__main__":
    main()
