"""The process entry point of every service: `callcue-<service> [migrate]`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Protocol, TypeVar

from callcue.core import api_keys, database, garbage_collection
from callcue.core.log import configure_logging
from callcue.core.metrics import serve_metrics
from callcue.core.settings import Environment, ServerSettings, SettingsError


class HasServerSettings(Protocol):
    @property
    def server(self) -> ServerSettings: ...


S = TypeVar("S", bound=HasServerSettings)


def run_service(
    name: str,
    load: Callable[[Environment], S],
    serve: Callable[[S], Coroutine[object, object, None]],
    migrate: Callable[[S], Coroutine[object, object, None]] | None = None,
) -> None:
    """Reads settings (exiting with a clear message if they are wrong), sets up logging
    and metrics, and runs the service until it is signalled to stop.

    ``callcue-<name> migrate`` instead applies the database migrations the service needs
    and exits: what a Kubernetes init container runs before the service starts.
    """
    if sys.argv[1:] not in ([], ["migrate"]):
        print(f"usage: callcue-{name} [migrate]", file=sys.stderr)
        raise SystemExit(2)
    migrating = sys.argv[1:] == ["migrate"]
    # Migrating authenticates nobody: it needs DATABASE_URL, not the service's keys.
    environ = {**os.environ, "CALLCUE_AUTH": "none"} if migrating else None
    try:
        settings = load(Environment(environ))
    except SettingsError as error:
        print(f"callcue-{name}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.server.log_level, settings.server.log_format)
    if migrating:
        asyncio.run(_migrate(settings, migrate))
        return
    serve_metrics(settings.server.metrics_port, settings.server.host)
    garbage_collection.tune_collector()
    asyncio.run(serve(settings))


async def _migrate(
    settings: S, migrate: Callable[[S], Coroutine[object, object, None]] | None
) -> None:
    url = settings.server.auth.database_url
    if url is not None:
        await database.migrate(url, api_keys.COMPONENT, api_keys.MIGRATIONS)
    if migrate is not None:
        await migrate(settings)
