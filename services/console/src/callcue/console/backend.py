"""The services the console calls for the person signed in (with a key of that person's
tenant, from core.service_keys), and the failures it passes on."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError

from callcue.core.channel import open_channel
from callcue.core.service_keys import ServiceKeys
from callcue.detector.v1 import detector_service_pb2_grpc
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.notifier.v1 import notifier_service_pb2_grpc
from callcue.telephony.v1 import connector_service_pb2_grpc


@dataclass(frozen=True)
class Backend:
    gateway: gateway_service_pb2_grpc.GatewayServiceAsyncStub
    notifier: notifier_service_pb2_grpc.SubscriberServiceAsyncStub
    detector: detector_service_pb2_grpc.PlaybookServiceAsyncStub
    telephony: connector_service_pb2_grpc.ConnectorServiceAsyncStub
    keys: ServiceKeys

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, gateway: str, notifier: str, detector: str, telephony: str, keys: ServiceKeys
    ) -> AsyncIterator[Backend]:
        addresses = (gateway, notifier, detector, telephony)
        channels = [open_channel(address) for address in addresses]
        try:
            yield cls(
                gateway_service_pb2_grpc.GatewayServiceStub(channels[0]),
                notifier_service_pb2_grpc.SubscriberServiceStub(channels[1]),
                detector_service_pb2_grpc.PlaybookServiceStub(channels[2]),
                connector_service_pb2_grpc.ConnectorServiceStub(channels[3]),
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
