"""How a phone-system stream ends on this side when it goes wrong: the WebSocket close codes
(RFC 6455) and the error that carries one, for the protocols whose only word back is the
close frame (Twilio, FreeSWITCH; AudioHook answers with its own disconnect message)."""

from __future__ import annotations

from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from callcue.telephony.connectors import Protocol
from callcue.telephony.gateway_call import GatewayError
from callcue.telephony.metrics import PROTOCOL_ERRORS

# 1003 data it cannot take, 1007 malformed data, 1008 policy (a flood), 1011 our failure.
CLOSE_NORMAL, CLOSE_UNSUPPORTED, CLOSE_MALFORMED, CLOSE_POLICY, CLOSE_ERROR = (
    1000,
    1003,
    1007,
    1008,
    1011,
)


class StreamError(Exception):
    """A broken protocol rule: the close code, a short reason for metrics, the message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


async def close(websocket: WebSocket, code: int, reason: str) -> None:
    try:
        await websocket.close(code, reason[:120])  # a close reason holds 123 bytes
    except (RuntimeError, WebSocketDisconnect):
        pass  # the phone system went first


async def fail(
    websocket: WebSocket, protocol: Protocol, log: Any, error: StreamError | GatewayError
) -> None:
    """Ends the stream for a broken rule or a call the gateway would not take."""
    if isinstance(error, StreamError):
        PROTOCOL_ERRORS.labels(protocol.value, error.reason).inc()
        log.warning("stream ended for a protocol error", reason=error.reason)
        await close(websocket, error.code, str(error))
    else:
        log.warning("the gateway ended the call", code=error.code.name)
        await close(websocket, CLOSE_ERROR, f"callcue could not take the call: {error.details}")
