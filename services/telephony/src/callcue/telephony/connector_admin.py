"""`callcue-connectors` (also `callcue connectors`): add, list and remove the connectors
phone systems stream calls through, straight on the database.

    callcue connectors add acme twilio --account AC123 --name "Support line"
    callcue connectors add acme audiohook --playbook sales
    callcue connectors add acme freeswitch --rep-channel left
    callcue connectors ls [TENANT]
    callcue connectors rm CONNECTOR_ID
    callcue connectors new-secrets-key

A Twilio connector needs the account's auth token (Twilio signs each stream with it): it
is read from the terminal, or from stdin when piped, never from the command line. AudioHook
and FreeSWITCH connectors get a generated key (and AudioHook a client secret), shown once.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence

from callcue.core import database
from callcue.core.admin_tool import add_database_flag, run_tool
from callcue.telephony.app import COMPONENT, MIGRATIONS
from callcue.telephony.connectors import ConnectorStore, Protocol
from callcue.telephony.sealing import SecretBox, new_key

SECRETS_KEY = "CALLCUE_TELEPHONY_SECRETS_KEY"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="callcue connectors",
        description="Manage the connectors phone systems stream calls through.",
    )
    add_database_flag(root)
    commands = root.add_subparsers(dest="command", required=True)
    add = commands.add_parser(
        "add", help="add a connector and print how to point the phone system at it"
    )
    add.add_argument("tenant")
    add.add_argument("protocol", choices=[p.value for p in Protocol])
    add.add_argument("--name", default="", help="what it is for")
    add.add_argument(
        "--rep-channel",
        default="",
        help="which channel is the rep: twilio outbound|inbound (default outbound), "
        "audiohook internal|external (default internal), freeswitch right|left|mixed "
        "(default right)",
    )
    add.add_argument("--playbook", action="append", default=[], help="playbook id (repeatable)")
    add.add_argument(
        "--account",
        default="",
        help="Twilio AccountSid or Genesys organization id the streams must come from",
    )
    add.add_argument(
        "--public-url",
        default=os.environ.get("CALLCUE_TELEPHONY_PUBLIC_URL", "ws://localhost:8090"),
        help="the service's address as phone systems reach it (for the printed URL)",
    )
    ls = commands.add_parser("ls", help="list connectors")
    ls.add_argument("tenant", nargs="?")
    rm = commands.add_parser("rm", help="remove a connector (its streams are refused from then on)")
    rm.add_argument("connector_id")
    commands.add_parser("new-secrets-key", help=f"print a new key for {SECRETS_KEY}")
    return root


def _auth_token() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Twilio auth token: ").strip()
    return sys.stdin.readline().strip()


async def run(args: argparse.Namespace) -> int:
    await database.migrate(args.database_url, COMPONENT, MIGRATIONS)
    key = os.environ.get(SECRETS_KEY, "")
    if not key:
        raise ValueError(f"set {SECRETS_KEY} (the key the telephony service seals secrets with)")
    pool = await database.open_pool(args.database_url, max_size=1)
    try:
        store = ConnectorStore(pool, SecretBox(key))
        if args.command == "add":
            protocol = Protocol(args.protocol)
            token = _auth_token() if protocol is Protocol.TWILIO else ""
            connector, credentials = await store.create(
                args.tenant,
                protocol,
                display_name=args.name,
                rep_channel=args.rep_channel,
                playbook_ids=tuple(args.playbook),
                account_id=args.account,
                auth_token=token,
            )
            print(f"connector {connector.connector_id} ({protocol}, rep: {connector.rep_channel})")
            base = args.public_url.rstrip("/")
            print(f"  url            {base}/{protocol}/{connector.connector_id}")
            if credentials.api_key:
                header = "X-API-KEY" if protocol is Protocol.AUDIOHOOK else "Authorization: Bearer"
                print(f"  api key        {credentials.api_key}   ({header}; shown once)")
            if credentials.client_secret:
                print(f"  client secret  {credentials.client_secret}   (shown once)")
            return 0
        if args.command == "ls":
            for c in await store.every(args.tenant):
                playbooks = ",".join(c.playbook_ids) or "-"
                print(
                    f"{c.connector_id}\t{c.tenant_id}\t{c.protocol}\trep={c.rep_channel}\t"
                    f"playbooks={playbooks}\taccount={c.account_id or '-'}\t"
                    f"{c.create_time:%Y-%m-%d %H:%M}\t{c.display_name}"
                )
            return 0
        if args.command == "rm":
            if await store.delete(args.connector_id):
                print(f"removed {args.connector_id}")
                return 0
            print(f"callcue connectors: no connector {args.connector_id}", file=sys.stderr)
            return 1
        return 2
    finally:
        await pool.close()


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments == ["new-secrets-key"]:
        print(new_key())
        return
    run_tool("callcue connectors", parser(), run, arguments)


if __name__ == "__main__":
    main()
