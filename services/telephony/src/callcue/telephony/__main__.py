"""`callcue-telephony`: takes calls from phone systems over WebSockets."""

from __future__ import annotations

from callcue.core.entrypoint import run_service
from callcue.telephony import app
from callcue.telephony.settings import Settings


def main() -> None:
    run_service("telephony", Settings.from_env, app.serve, app.migrate)


if __name__ == "__main__":
    main()
