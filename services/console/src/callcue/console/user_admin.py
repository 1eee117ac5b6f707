"""callcue-users: add, list and remove the people who sign in to the console, and set
their passwords, straight against the database.

An operator's tool (``kubectl exec deploy/console -- callcue-users add ...``): it needs
DATABASE_URL. A password is read from the terminal (or, for scripts, one line of
standard input), never from the command line, where other users and shell history see it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

import argon2

from callcue.console import app
from callcue.console.people import InvalidPerson, PeopleStore, Role
from callcue.core import api_keys, database
from callcue.core.admin_tool import add_database_flag, run_tool


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="callcue users", description=__doc__.splitlines()[0])
    add_database_flag(top)
    commands = top.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a person to a tenant with a role")
    add.add_argument("username", help="for example an email address")
    add.add_argument("--tenant", default=api_keys.DEFAULT_TENANT)
    add.add_argument("--role", choices=[role.value for role in Role], default=Role.REP.value)
    add.add_argument("--name", default="", help="the name shown in the console")
    listing = commands.add_parser("ls", help="list people (never their passwords)")
    listing.add_argument("--tenant")
    remove = commands.add_parser("rm", help="remove a person; their sign-ins end")
    remove.add_argument("username")
    password = commands.add_parser("passwd", help="set a person's password; sign-ins end")
    password.add_argument("username")
    return top


def read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InvalidPerson("the two passwords differ")
    return first


async def run(args: argparse.Namespace) -> int:
    url = args.database_url
    await database.migrate(url, api_keys.COMPONENT, api_keys.MIGRATIONS)
    await database.migrate(url, app.COMPONENT, app.MIGRATIONS)
    pool = await database.open_pool(url, max_size=1)
    people = PeopleStore(pool, argon2.PasswordHasher())
    try:
        if args.command == "add":
            person = await people.add(
                args.username, args.tenant, Role(args.role), read_password(), args.name
            )
            print(f"added {person.username}: {person.role.value} of tenant {person.tenant_id}")
        elif args.command == "ls":
            for person in await people.list(args.tenant):
                print(
                    f"{person.username:<32} {person.tenant_id:<20} {person.role.value:<11}"
                    f"{person.display_name}"
                )
        elif args.command == "rm":
            if not await people.remove(args.username):
                print(f"callcue users: no user {args.username}", file=sys.stderr)
                return 1
            print(f"removed {args.username}")
        else:
            if not await people.set_password(args.username, read_password()):
                print(f"callcue users: no user {args.username}", file=sys.stderr)
                return 1
            print(f"password of {args.username} set; their sign-ins ended")
    finally:
        await pool.close()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    # InvalidPerson is a ValueError: a bad name or password ends as one line, code 2.
    run_tool("callcue users", parser(), run, argv)


if __name__ == "__main__":
    main()
