"""What every phone-system stream goes through before its WebSocket is accepted: its
connector looked up by the id in the URL, the protocol's own credentials checked, and a
refusal answered as an HTTP status, before any audio is read."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import structlog
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from callcue.core.service_keys import ServiceKeys
from callcue.gateway.v1 import gateway_service_pb2_grpc
from callcue.telephony.connectors import Connector, ConnectorStore, Protocol
from callcue.telephony.held_calls import HeldCalls
from callcue.telephony.metrics import OPEN_STREAMS, REFUSED
from callcue.telephony.request_signatures import NonceCache
from callcue.telephony.settings import Limits

log = structlog.get_logger("callcue.telephony.admission")


@dataclass
class Telephony:
    """What the protocol handlers share."""

    connectors: ConnectorStore
    gateway: gateway_service_pb2_grpc.GatewayServiceAsyncStub
    keys: ServiceKeys
    limits: Limits
    public_url: str
    nonces: NonceCache
    held: HeldCalls
    # Set on SIGTERM: new streams are refused (503) while running calls finish.
    draining: bool = False
    streams: int = 0

    @contextlib.contextmanager
    def streaming(self, protocol: Protocol) -> Iterator[None]:
        OPEN_STREAMS.labels(protocol.value).inc()
        self.streams += 1
        try:
            yield
        finally:
            self.streams -= 1
            OPEN_STREAMS.labels(protocol.value).dec()


class Refused(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


async def connector_for(
    telephony: Telephony, websocket: WebSocket, protocol: Protocol
) -> Connector:
    if telephony.draining:
        raise Refused(503, "draining", "this replica is shutting down; connect again")
    connector_id = str(websocket.path_params.get("connector_id", ""))
    connector = await telephony.connectors.get(connector_id) if connector_id else None
    if connector is None or connector.protocol is not protocol:
        raise Refused(404, "unknown connector", f"no {protocol} connector {connector_id!r}")
    return connector


async def refuse(websocket: WebSocket, protocol: Protocol, refused: Refused) -> None:
    REFUSED.labels(protocol.value, refused.reason).inc()
    log.warning(
        "stream refused",
        protocol=protocol.value,
        reason=refused.reason,
        status=refused.status,
        path=websocket.url.path,
    )
    await websocket.send_denial_response(
        JSONResponse({"error": refused.message}, status_code=refused.status)
    )


def request_url(websocket: WebSocket, public_url: str) -> str:
    """The URL the phone system connected to, as it signed it."""
    query = websocket.url.query
    tail = websocket.url.path + (f"?{query}" if query else "")
    if public_url:
        return public_url + tail
    proto = websocket.headers.get("x-forwarded-proto", websocket.url.scheme)
    scheme = {"https": "wss", "http": "ws"}.get(proto, proto)
    host = websocket.headers.get("x-forwarded-host") or websocket.headers.get("host", "")
    return f"{scheme}://{host}{tail}"
