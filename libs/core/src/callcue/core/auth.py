"""Who is calling: every RPC of every service authenticates its caller to a tenant.

Clients send ``authorization: Bearer <api key>``; callcue services calling an internal
RPC for a caller send a signed service credential instead (``service_tokens``). The server
interceptor resolves either to a ``Caller`` for the duration of the RPC
(``current_caller()``), checks it may call the method (``access``), and services scope
every read and write to ``current_caller().tenant``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

import grpc
import psycopg
import structlog

from callcue.core import api_keys, scopes
from callcue.core.api_keys import DEFAULT_TENANT, Grant, Tenant
from callcue.core.errors import RpcError

log = structlog.get_logger("callcue.auth")

AUTHORIZATION = "authorization"
_BEARER = "bearer "
_HOW = f"send the metadata '{AUTHORIZATION}: Bearer <api key>'"


@dataclass(frozen=True)
class Caller:
    tenant: Tenant
    # Public id of the key used ("" without keys); safe to log, unlike the key.
    key_id: str = ""
    # What the key may do (callcue.core.scopes).
    scopes: frozenset[str] = frozenset()
    # The callcue service that called for this caller with a service credential; "" when
    # the caller called itself with its key.
    service: str = ""

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id


_caller: ContextVar[Caller | None] = ContextVar("callcue_caller", default=None)


def current_caller() -> Caller:
    caller = _caller.get()
    if caller is None:
        raise RuntimeError("no authenticated caller: only RPC handlers have one")
    return caller


def tenant_id() -> str:
    return current_caller().tenant_id


def bind_caller(caller: Caller) -> None:
    """Makes ``caller`` the current one for this task and the tasks it starts."""
    _caller.set(caller)


class Authenticator(Protocol):
    async def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> Caller:
        """The caller the metadata proves, or an UNAUTHENTICATED ``RpcError``."""
        ...


def _unauthenticated(message: str) -> RpcError:
    return RpcError(grpc.StatusCode.UNAUTHENTICATED, message)


def bearer_key(metadata: Sequence[tuple[str, str | bytes]]) -> str:
    values = [value for name, value in metadata if name == AUTHORIZATION]
    if not values:
        raise _unauthenticated(f"no API key: {_HOW}")
    value = values[0]
    if isinstance(value, bytes) or not value[: len(_BEARER)].lower() == _BEARER:
        raise _unauthenticated(f"the authorization metadata is not a bearer API key: {_HOW}")
    return value[len(_BEARER) :].strip()


class KeyLookup(Protocol):
    async def grant_of(self, key: str) -> Grant | None: ...


class ApiKeyAuthenticator:
    """Checks bearer API keys against the key store, remembering answers for a while.

    A revoked key keeps working for at most ``cache_seconds`` on replicas that saw it.
    """

    def __init__(
        self,
        keys: KeyLookup,
        *,
        cache_seconds: float = 30.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._ttl = cache_seconds
        self._size = cache_size
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, Grant | None]] = OrderedDict()

    async def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> Caller:
        key = bearer_key(metadata)
        key_id = api_keys.key_id_of(key)
        if key_id is None:
            raise _unauthenticated("the API key is malformed; keys look like cc_<id>_<secret>")
        grant = await self._grant_of(key)
        if grant is None:
            raise _unauthenticated(f"API key {key_id} is not valid: unknown or revoked")
        return Caller(grant.tenant, key_id, grant.scopes)

    async def _grant_of(self, key: str) -> Grant | None:
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            return cached[1]
        try:
            grant = await self._keys.grant_of(key)
        except (psycopg.Error, OSError) as error:
            log.warning("key store unreachable", error=str(error))
            raise RpcError(
                grpc.StatusCode.UNAVAILABLE, "API keys cannot be checked right now; retry"
            ) from None
        self._cache[key] = (now + self._ttl, grant)
        self._cache.move_to_end(key)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return grant


class ServiceCredentials(Protocol):
    def caller(self, token: str) -> Caller:
        """The caller a service credential names, or an UNAUTHENTICATED ``RpcError``."""
        ...


class CallerAuthenticator:
    """A tenant's API key (for a public service) or a callcue service's credential (for an
    internal one), whichever the metadata carries; what the caller may then call is
    ``access``'s to decide."""

    def __init__(
        self,
        keys: Authenticator | None,
        services: ServiceCredentials | None,
        credential_header: str,
    ) -> None:
        self._keys = keys
        self._services = services
        self._header = credential_header

    async def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> Caller:
        tokens = [value for name, value in metadata if name == self._header]
        if tokens:
            if self._services is None or not isinstance(tokens[0], str):
                raise _unauthenticated("this service takes no service credentials")
            return self._services.caller(tokens[0])
        if self._keys is not None:
            return await self._keys.authenticate(metadata)
        if any(name == AUTHORIZATION for name, _ in metadata):
            raise RpcError(
                grpc.StatusCode.PERMISSION_DENIED,
                "this service serves only callcue services: API keys are refused here",
            )
        raise _unauthenticated("no service credential: this service serves only callcue services")


class SingleTenant:
    """No keys: every caller is the one tenant, may do everything and is trusted as a
    callcue service. For a local, single-user setup only."""

    def __init__(self, tenant_id: str = DEFAULT_TENANT) -> None:
        tenant = Tenant(api_keys.check_tenant_id(tenant_id))
        self._caller = Caller(tenant, scopes=frozenset({scopes.ADMIN}), service="anyone")

    async def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> Caller:
        return self._caller
