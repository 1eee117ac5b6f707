"""Who may do what: the signed-in person of a request, and which calls they may see."""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any, TypeAlias

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import Headers, RequestContext

from callcue.console.browser_sessions import COOKIE, CSRF_HEADER, BrowserSession, BrowserSessions
from callcue.console.people import Person, Role

# What every handler receives; requests and responses are typed on the handler itself.
Context: TypeAlias = RequestContext[Any, Any]

# The session metadata that names the rep of a call: set by the console for calls it
# starts, and by phone-system connectors or `callcue call --rep` for the others.
REP_METADATA = "rep"


def session_token(cookie_header: str | None) -> str | None:
    if not cookie_header:
        return None
    try:
        cookies = SimpleCookie(cookie_header)
    except CookieError:
        return None
    morsel = cookies.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


class Gatekeeper:
    def __init__(self, sessions: BrowserSessions) -> None:
        self._sessions = sessions

    async def session_of(self, headers: Headers | Mapping[str, str]) -> BrowserSession:
        """The browser session a request proves, CSRF token included, or UNAUTHENTICATED."""
        token = session_token(headers.get("cookie"))
        if token is None:
            raise ConnectError(Code.UNAUTHENTICATED, "not signed in")
        session = await self._sessions.find(token)
        if session is None:
            raise ConnectError(Code.UNAUTHENTICATED, "the sign-in expired; sign in again")
        if not session.csrf_matches(headers.get(CSRF_HEADER)):
            raise ConnectError(
                Code.PERMISSION_DENIED,
                f"missing or wrong CSRF token: send the one GetMe returns in {CSRF_HEADER}",
            )
        return session

    async def person(self, headers: Headers | Mapping[str, str], *, at_least: Role) -> Person:
        person = (await self.session_of(headers)).person
        if not allows(person.role, at_least):
            raise ConnectError(
                Code.PERMISSION_DENIED,
                f"this needs the {at_least.value} role; {person.username} is a {person.role.value}",
            )
        return person


_RANK = {Role.REP: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}


def allows(role: Role, needed: Role) -> bool:
    return _RANK[role] >= _RANK[needed]


def rep_of(metadata: Mapping[str, str]) -> str:
    return metadata.get(REP_METADATA, "")


def may_see(person: Person, metadata: Mapping[str, str]) -> bool:
    """Supervisors and admins see every call of their tenant; a rep only their own."""
    return person.role.sees_every_call() or rep_of(metadata) == person.username


def refused(session_id: str) -> ConnectError:
    # The same answer whether or not the session exists (AIP-211): ids of other reps'
    # calls are not confirmed.
    return ConnectError(
        Code.PERMISSION_DENIED, f"session {session_id} is not one of your calls, or does not exist"
    )
