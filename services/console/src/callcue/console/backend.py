"""The services the console calls for the person signed in, and the failures it passes on.

Until services trust each other by certificate, the console proves a tenant to the
gateway, notifier and detector the way any client does: with an API key of that tenant.
It creates one per tenant when first needed, keeps it in memory only, and revokes it
when it stops, so no console key is ever written down.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
import structlog
from connectrpc.code import Code
from connectrpc.errors import ConnectError

from callcue.core.auth import AUTHORIZATION
from callcue.core.channel import open_channel
from callcue.detector.v1 import detector_service_pb2_grpc
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier.v1 import notifier_service_pb2_grpc

log = structlog.get_logger("callcue.console.backend")

Metadata = Sequence[tuple[str, str]]


class KeyIssuer(Protocol):
    async def create_key(self, tenant_id: str, display_name: str = "") -> tuple[object, str]: ...

    async def revoke(self, key_id: str) -> bool: ...


class TenantKeys:
    """One API key per tenant served, in memory, revoked on close."""

    def __init__(self, issuer: KeyIssuer) -> None:
        self._issuer = issuer
        self._keys: dict[str, tuple[str, str]] = {}
        self._name = f"console {socket.gethostname()} pid {os.getpid()}"

    async def metadata(self, tenant_id: str) -> Metadata:
        if tenant_id not in self._keys:
            info, key = await self._issuer.create_key(tenant_id, self._name)
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


@dataclass(frozen=True)
class Backend:
    gateway: gateway_service_pb2_grpc.GatewayServiceAsyncStub
    notifier: notifier_service_pb2_grpc.NotifierServiceAsyncStub
    detector: detector_service_pb2_grpc.DetectorServiceAsyncStub
    keys: TenantKeys

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, gateway: str, notifier: str, detector: str, keys: TenantKeys
    ) -> AsyncIterator[Backend]:
        channels = [open_channel(address) for address in (gateway, notifier, detector)]
        try:
            yield cls(
                gateway_service_pb2_grpc.GatewayServiceStub(channels[0]),
                notifier_service_pb2_grpc.NotifierServiceStub(channels[1]),
                detector_service_pb2_grpc.DetectorServiceStub(channels[2]),
                keys,
            )
        finally:
            await keys.close()
            for channel in channels:
                await channel.close()


# gRPC spells one code differently; the rest share their names.
_CODES = {grpc.StatusCode.CANCELLED: Code.CANCELED}


def connect_error(error: grpc.aio.AioRpcError) -> ConnectError:
    code = _CODES.get(error.code()) or Code.__members__.get(error.code().name, Code.UNKNOWN)
    return ConnectError(code, error.details() or error.code().name.lower())


@contextlib.contextmanager
def passed_on() -> Iterator[None]:
    """A failure of a service the console called reaches the browser with its code and
    message, as if the browser had called it."""
    try:
        yield
    except grpc.aio.AioRpcError as error:
        raise connect_error(error) from None
