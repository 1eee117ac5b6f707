"""How a service that acts for many tenants (the console, telephony) proves a tenant to
the gateway and the other services: with an API key of that tenant, as any client does.

It creates one key per tenant when first needed, with the scopes the service needs (the
console's admin pages need admin; telephony only streams calls), keeps it in memory only, and
revokes it when it stops, so no such key is ever written down. (The gateway's own calls to
internal services use signed service credentials instead: core.service_tokens.)
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from typing import Protocol

import structlog

from callcue.core.auth import AUTHORIZATION

log = structlog.get_logger("callcue.service_keys")

Metadata = Sequence[tuple[str, str]]


class KeyIssuer(Protocol):
    async def create_key(
        self, tenant_id: str, display_name: str = "", key_scopes: Iterable[str] = ...
    ) -> tuple[object, str]: ...

    async def revoke(self, key_id: str) -> bool: ...


class ServiceKeys:
    """One API key per tenant served, with the scopes the service needs, in memory, revoked
    on close."""

    def __init__(self, issuer: KeyIssuer, service: str, key_scopes: Sequence[str]) -> None:
        self._issuer = issuer
        self._scopes = tuple(key_scopes)
        self._keys: dict[str, tuple[str, str]] = {}
        self._name = f"{service} {socket.gethostname()} pid {os.getpid()}"

    async def metadata(self, tenant_id: str) -> Metadata:
        if tenant_id not in self._keys:
            info, key = await self._issuer.create_key(tenant_id, self._name, self._scopes)
            key_id = str(getattr(info, "key_id", ""))
            # Another request of the same tenant may have created one meanwhile: keep one.
            if tenant_id in self._keys:
                await self._issuer.revoke(key_id)
            else:
                self._keys[tenant_id] = (key_id, key)
                log.info("tenant key created", tenant_id=tenant_id, key_id=key_id)
        return ((AUTHORIZATION, f"Bearer {self._keys[tenant_id][1]}"),)

    async def close(self) -> None:
        for key_id, _ in self._keys.values():
            await self._issuer.revoke(key_id)
        self._keys.clear()
