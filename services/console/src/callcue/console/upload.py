"""Recordings uploaded from a browser: one HTTP POST whose body is the file, streamed to
the gateway's UploadRecording as it arrives (a browser cannot open a client-streaming RPC,
and XMLHttpRequest reports upload progress where fetch does not)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog
from connectrpc.errors import ConnectError
from starlette.requests import Request
from starlette.responses import JSONResponse

from callcue.console.access import REP_METADATA, Gatekeeper
from callcue.console.backend import Backend
from callcue.console.people import Role
from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb

log = structlog.get_logger("callcue.console.upload")

CHUNK_BYTES = 256 * 1024
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
}


class Uploads:
    def __init__(self, backend: Backend, gatekeeper: Gatekeeper, max_bytes: int) -> None:
        self._backend = backend
        self._gatekeeper = gatekeeper
        self._max = max_bytes

    async def handle(self, request: Request) -> JSONResponse:
        try:
            person = await self._gatekeeper.person(request.headers, at_least=Role.REP)
        except ConnectError as error:
            return JSONResponse({"error": error.message}, status_code=401)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            return _too_large(self._max)
        filename = request.query_params.get("filename", "recording")[:200]
        config = gateway_pb.RecordingConfig(
            filename=filename,
            content_type=request.headers.get("content-type", "")[:100],
            title=request.query_params.get("title", filename)[:200],
            metadata={REP_METADATA: person.username, "source": "console upload"},
            playbook_ids=request.query_params.getlist("playbook"),
        )
        auth = await self._backend.keys.metadata(person.tenant_id)
        body = _Body(request, self._max)
        call = self._backend.gateway.UploadRecording(body.requests(config), metadata=auth)
        body.call = call
        try:
            reply = await call
        except asyncio.CancelledError:
            if not body.too_large:
                raise
            return _too_large(self._max)
        except grpc.aio.AioRpcError as error:
            if body.too_large:
                return _too_large(self._max)
            status = _HTTP_STATUS.get(error.code(), 502)
            return JSONResponse({"error": error.details() or error.code().name}, status_code=status)
        log.info("recording uploaded", session_id=reply.session.session_id, filename=filename)
        return JSONResponse({"session_id": reply.session.session_id})


class _Body:
    """The request body as upload messages; stops (and says so) past the limit."""

    def __init__(self, request: Request, limit: int) -> None:
        self._request = request
        self._limit = limit
        self.too_large = False
        # Cancelled past the limit: ending the stream would upload a truncated file.
        self.call: grpc.aio.StreamUnaryCall[Any, Any] | None = None

    async def requests(
        self, config: gateway_pb.RecordingConfig
    ) -> AsyncIterator[gateway_pb.UploadRecordingRequest]:
        yield gateway_pb.UploadRecordingRequest(config=config)
        received = 0
        buffer = bytearray()
        async for piece in self._request.stream():
            received += len(piece)
            if received > self._limit:
                self.too_large = True
                if self.call is not None:
                    self.call.cancel()
                return
            buffer += piece
            if len(buffer) >= CHUNK_BYTES:
                yield gateway_pb.UploadRecordingRequest(data=bytes(buffer))
                buffer.clear()
        if buffer:
            yield gateway_pb.UploadRecordingRequest(data=bytes(buffer))


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {"error": f"the recording is larger than the {limit // (1024 * 1024)} MiB allowed"},
        status_code=413,
    )
