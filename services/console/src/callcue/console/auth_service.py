"""AuthService: signing in and out with a password, and who is signed in."""

from __future__ import annotations

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from callcue.console.access import Context, Gatekeeper, session_token
from callcue.console.browser_sessions import COOKIE, BrowserSessions
from callcue.console.login_limiter import LoginLimiter
from callcue.console.metrics import LOGINS
from callcue.console.people import PeopleStore, Person, Role
from callcue.console.v1 import console_service_pb2 as pb

_ROLES = {
    Role.REP: pb.ROLE_REP,
    Role.SUPERVISOR: pb.ROLE_SUPERVISOR,
    Role.ADMIN: pb.ROLE_ADMIN,
}
MAX_CREDENTIAL_LENGTH = 1024


def user_message(person: Person) -> pb.User:
    return pb.User(
        username=person.username,
        tenant_id=person.tenant_id,
        role=_ROLES[person.role],
        display_name=person.display_name,
    )


class AuthService:
    def __init__(
        self,
        people: PeopleStore,
        sessions: BrowserSessions,
        gatekeeper: Gatekeeper,
        by_name: LoginLimiter,
        by_address: LoginLimiter,
        *,
        secure_cookies: bool,
    ) -> None:
        self._people = people
        self._sessions = sessions
        self._gatekeeper = gatekeeper
        self._by_name = by_name
        self._by_address = by_address
        self._secure = secure_cookies

    async def login(self, request: pb.LoginRequest, ctx: Context) -> pb.LoginResponse:
        username = request.username.strip().lower()
        if not username or not request.password:
            raise ConnectError(Code.INVALID_ARGUMENT, "enter a username and a password")
        if len(username) > MAX_CREDENTIAL_LENGTH or len(request.password) > MAX_CREDENTIAL_LENGTH:
            raise ConnectError(Code.INVALID_ARGUMENT, "the username or password is too long")
        address = _address(ctx)
        wait = max(self._by_name.retry_after(username), self._by_address.retry_after(address))
        if wait:
            LOGINS.labels("limited").inc()
            raise ConnectError(
                Code.RESOURCE_EXHAUSTED,
                f"too many failed sign-ins; try again in {wait:.0f} s",
            )
        person = await self._people.check_password(username, request.password)
        if person is None:
            self._by_name.failed(username)
            self._by_address.failed(address)
            LOGINS.labels("failed").inc()
            raise ConnectError(Code.UNAUTHENTICATED, "wrong username or password")
        self._by_name.succeeded(username)
        LOGINS.labels("succeeded").inc()
        token, session = await self._sessions.start(person)
        max_age = int(self._sessions.lifetime.total_seconds())
        ctx.response_headers().add(
            "set-cookie",
            f"{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
            + ("; Secure" if self._secure else ""),
        )
        return pb.LoginResponse(user=user_message(person), csrf_token=session.csrf_token)

    async def logout(self, request: pb.LogoutRequest, ctx: Context) -> pb.LogoutResponse:
        await self._gatekeeper.session_of(ctx.request_headers())
        token = session_token(ctx.request_headers().get("cookie"))
        if token is not None:
            await self._sessions.end(token)
        ctx.response_headers().add(
            "set-cookie", f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
        )
        return pb.LogoutResponse()

    async def get_me(self, request: pb.GetMeRequest, ctx: Context) -> pb.GetMeResponse:
        # The one RPC a reloaded page calls before it knows the CSRF token: it changes
        # nothing, and the token it returns is only readable by the console's own pages.
        token = session_token(ctx.request_headers().get("cookie"))
        session = None if token is None else await self._sessions.find(token)
        if session is None:
            raise ConnectError(Code.UNAUTHENTICATED, "not signed in")
        return pb.GetMeResponse(user=user_message(session.person), csrf_token=session.csrf_token)


def _address(ctx: Context) -> str:
    address = ctx.client_address() or ""
    return address.rsplit(":", 1)[0]
