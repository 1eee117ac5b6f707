"""What the operator tools that work straight on the database share (callcue-keys,
callcue-users): the --database-url flag, quiet logging, and a failure as one line and
exit code 2 instead of a traceback."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence

import psycopg

from callcue.core.log import configure_logging


def add_database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="PostgreSQL URL (default: $DATABASE_URL)",
    )


def run_tool(
    name: str,
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], Coroutine[object, object, int]],
    argv: Sequence[str] | None = None,
) -> None:
    args = parser.parse_args(argv)
    configure_logging("warning", "console")  # the output is for a person, not a log pipeline
    if not args.database_url:
        parser.error("set DATABASE_URL or pass --database-url")
    try:
        raise SystemExit(asyncio.run(run(args)))
    except (ValueError, OSError, psycopg.Error) as error:
        print(f"{name}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
