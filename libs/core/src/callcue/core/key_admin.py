"""callcue-keys: create, list and revoke API keys, straight against the database.

An operator's bootstrap tool (``kubectl exec deploy/gateway -- callcue-keys create
acme``): it needs DATABASE_URL, not an existing key.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from callcue.core import api_keys, database, scopes
from callcue.core.admin_tool import add_database_flag, run_tool


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="callcue-keys", description=__doc__.splitlines()[0])
    add_database_flag(top)
    commands = top.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key for a tenant (and the tenant)")
    create.add_argument("tenant")
    create.add_argument("--name", default="", help="what the key is for, shown in listings")
    create.add_argument(
        "--scope",
        action="append",
        choices=scopes.ALL,
        metavar="SCOPE",
        help="what the key may do; repeat for more (default: "
        + " ".join(scopes.DEFAULT)
        + "). "
        + "; ".join(f"{name}: {what}" for name, what in scopes.DESCRIPTIONS.items()),
    )
    listing = commands.add_parser(
        "list", aliases=["ls"], help="list keys and their scopes (never the keys themselves)"
    )
    listing.add_argument("--tenant")
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    limit = commands.add_parser("limit", help="set a tenant's maximum of concurrent calls")
    limit.add_argument("tenant")
    limit.add_argument("calls", help="a number, or 'default' for the deployment's limit")
    return top


async def run(args: argparse.Namespace) -> int:
    url = args.database_url
    await database.migrate(url, api_keys.COMPONENT, api_keys.MIGRATIONS)
    pool = await database.open_pool(url, max_size=1)
    keys = api_keys.ApiKeyStore(pool)
    try:
        if args.command == "create":
            info, key = await keys.create_key(args.tenant, args.name, args.scope or scopes.DEFAULT)
            print(
                f"created key {info.key_id} for tenant {info.tenant_id} "
                f"({' '.join(info.scopes)}); it is shown only once:"
            )
            print(key)
        elif args.command in ("list", "ls"):
            for info in await keys.list_keys(args.tenant):
                state = f"revoked {info.revoke_time:%Y-%m-%d}" if info.revoke_time else "live"
                print(
                    f"{info.key_id}  {info.tenant_id:<20} {info.create_time:%Y-%m-%d %H:%M}  "
                    f"{state:<18} {','.join(info.scopes):<40} {info.display_name}"
                )
        elif args.command == "revoke":
            if not await keys.revoke(args.key_id):
                print(f"callcue-keys: no live key {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked key {args.key_id}")
        else:
            calls = None if args.calls == "default" else int(args.calls)
            if calls is not None and calls < 0:
                raise ValueError("the limit must be 0 or more")
            await keys.set_call_limit(args.tenant, calls)
            print(f"tenant {args.tenant}: at most {args.calls} concurrent calls")
    finally:
        await pool.close()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    run_tool("callcue-keys", parser(), run, argv)


if __name__ == "__main__":
    main()
