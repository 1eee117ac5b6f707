"""The common entry point of every service's ``main``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Protocol, TypeVar

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
) -> None:
    """Reads settings (exiting with a clear message if they are wrong), sets up logging
    and metrics, and runs the service until it is signalled to stop."""
    try:
        settings = load(Environment())
    except SettingsError as error:
        print(f"callcue-{name}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.server.log_level, settings.server.log_format)
    serve_metrics(settings.server.metrics_port)
    asyncio.run(serve(settings))
