"""Client side of authentication: metadata added to every call a channel makes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc

from callcue.core.auth import AUTHORIZATION

MetadataSource = Callable[[], Sequence[tuple[str, str]]]


def api_key(key: str) -> MetadataSource:
    """Always the same key: a client acting for itself."""
    metadata = ((AUTHORIZATION, f"Bearer {key}"),)
    return lambda: metadata


def interceptors(source: MetadataSource) -> list[grpc.aio.ClientInterceptor]:
    """One interceptor per RPC kind: grpc.aio files each under the first kind it is."""
    return [
        _UnaryUnary(source),
        _UnaryStream(source),
        _StreamUnary(source),
        _StreamStream(source),
    ]


class _Adds:
    def __init__(self, source: MetadataSource) -> None:
        self._source = source

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        for name, value in self._source():
            metadata[name] = value
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
        )


class _UnaryUnary(_Adds, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStream(_Adds, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamUnary(_Adds, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStream(_Adds, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)
