"""What an API key may do: the scopes chosen when the key is created.

``admin`` holds every other scope. Keys made before scopes existed were given ``admin``,
so they keep doing everything they did.
"""

from __future__ import annotations

from collections.abc import Iterable

CALLS_STREAM = "calls:stream"
CALLS_READ = "calls:read"
SESSIONS_EXPORT = "sessions:export"
PLAYBOOKS_READ = "playbooks:read"
PLAYBOOKS_WRITE = "playbooks:write"
SUBSCRIBE = "subscribe"
ADMIN = "admin"

# What each scope lets a key do, for `callcue keys create --help` and the docs.
DESCRIPTIONS = {
    CALLS_STREAM: "stream live calls and upload recordings",
    CALLS_READ: "read sessions, transcripts and summaries",
    SESSIONS_EXPORT: "export transcripts (SRT, VTT, JSON, text)",
    PLAYBOOKS_READ: "read, export and test playbooks and keywords",
    PLAYBOOKS_WRITE: "create, change, import and delete playbooks and keywords",
    SUBSCRIBE: "follow the events of live calls",
    ADMIN: "everything above, and phone-system connectors",
}
ALL = tuple(DESCRIPTIONS)
# A new key without --scope: what a client app streaming and following its calls needs.
DEFAULT = (CALLS_STREAM, CALLS_READ, SUBSCRIBE)


class UnknownScope(ValueError):
    """A scope name that is not one of ALL."""


def checked(names: Iterable[str]) -> tuple[str, ...]:
    """The scopes, each once and in the order of ALL; an unknown name is refused with the list."""
    wanted = set(names)
    unknown = sorted(wanted - set(ALL))
    if unknown:
        raise UnknownScope(f"unknown scope {unknown[0]!r}: scopes are {', '.join(ALL)}")
    if not wanted:
        raise UnknownScope(f"a key needs at least one scope: {', '.join(ALL)}")
    return tuple(scope for scope in ALL if scope in wanted)


def allows(granted: Iterable[str], needed: str) -> bool:
    granted = set(granted)
    return ADMIN in granted or needed in granted
