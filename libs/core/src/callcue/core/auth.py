"""Who is calling: every RPC of every service authenticates its caller to a tenant.

Clients send ``authorization: Bearer <api key>``. The server interceptor resolves it
to a ``Caller`` for the duration of the RPC (``current_caller()``); services scope
every read and write to ``current_caller().tenant``, and pass the same credentials
on when they call another service for the caller (``credentials.forwarded``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

import grpc
import psycopg
import structlog

from callcue.core import api_keys, database
from callcue.core.api_keys import DEFAULT_TENANT, Tenant
from callcue.core.errors import RpcError
from callcue.core.settings import AuthSettings

log = structlog.get_logger("callcue.auth")

AUTHORIZATION = "authorization"
_BEARER = "bearer "
_HOW = f"send the metadata '{AUTHORIZATION}: Bearer <api key>'"


@dataclass(frozen=True)
class Caller:
    tenant: Tenant
    # Public id of the key used ("" without keys); safe to log, unlike the key.
    key_id: str = ""
    # Metadata that proves who the caller is to the next service.
    credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False)

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
    async def tenant_of(self, key: str) -> Tenant | None: ...


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
        self._cache: OrderedDict[str, tuple[float, Tenant | None]] = OrderedDict()

    async def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> Caller:
        key = bearer_key(metadata)
        key_id = api_keys.key_id_of(key)
        if key_id is None:
            raise _unauthenticated("the API key is malformed; keys look like cc_<id>_<secret>")
        tenant = await self._tenant_of(key)
        if tenant is None:
            raise _unauthenticated(f"API key {key_id} is not valid: unknown or revoked")
        return Caller(tenant, key_id, ((AUTHORIZATION, f"Bearer {key}"),))

    async def _tenant_of(self, key: str) -> Tenant | None:
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            return cached[1]
        try:
            tenant = await self._keys.tenant_of(key)
        except (psycopg.Error, OSError) as error:
            log.warning("key store unreachable", error=str(error))
            raise RpcError(
                grpc.StatusCode.UNAVAILABLE, "API keys cannot be checked right now; retry"
            ) from None
        self._cache[key] = (now + self._ttl, tenant)
        self._cache.move_to_end(key)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return tenant


class SingleTenant:
    """No keys: every caller is the one tenant. For a local, single-user setup only."""

    def __init__(self, tenant_id: str = DEFAULT_TENANT) -> None:
        self._caller = Caller(Tenant(api_keys.check_tenant_id(tenant_id)))

    async def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> Caller:
        return self._caller


async def open_authenticator(
    settings: AuthSettings,
) -> tuple[Authenticator, Callable[[], Awaitable[None]]]:
    """The authenticator the settings ask for, and how to release what it holds."""
    if settings.mode == "none":
        log.warning(
            "authentication is off: every caller is one tenant", tenant=settings.single_tenant
        )

        async def nothing() -> None:
            return None

        return SingleTenant(settings.single_tenant), nothing
    assert settings.database_url is not None
    await database.migrate(settings.database_url, api_keys.COMPONENT, api_keys.MIGRATIONS)
    pool = await database.open_pool(settings.database_url, max_size=4)
    authenticator = ApiKeyAuthenticator(
        api_keys.ApiKeyStore(pool), cache_seconds=settings.cache_seconds
    )
    return authenticator, pool.close
