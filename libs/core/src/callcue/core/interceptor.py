"""Per-RPC authentication, authorization, logging context and error translation for every
service."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
import psycopg
import structlog
from google.protobuf.message import Message

from callcue.core import access
from callcue.core.auth import Authenticator, bind_caller
from callcue.core.errors import RpcError
from callcue.core.metrics import ACTIVE_STREAMS, RPC_SECONDS
from callcue.core.text_fields import reject_nul

log = structlog.get_logger("callcue.rpc")

# Probes call these every few seconds; logging each would drown the real traffic.
_QUIET_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class RpcInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates the caller, checks the access rules allow it the method, binds the
    method and tenant to the log context, logs each RPC's outcome, and turns a raised
    ``RpcError`` into its status; any other exception becomes INTERNAL, never a crash."""

    def __init__(self, authenticator: Authenticator, rules: access.Rules = access.RULES) -> None:
        self._auth = _Checks(authenticator, rules)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_QUIET_PREFIXES):
            return handler
        # The stubs describe sync handlers; aio ones are coroutine or async generator functions.
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _unary(method, self._auth, cast(Any, handler.unary_unary)),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _unary(method, self._auth, cast(Any, handler.stream_unary)),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _streaming(method, self._auth, cast(Any, handler.unary_stream)),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            _streaming(method, self._auth, cast(Any, handler.stream_stream)),
            handler.request_deserializer,
            handler.response_serializer,
        )


def _begin(method: str, context: grpc.aio.ServicerContext[Any, Any]) -> float:
    # Each RPC runs in its own task, so these bindings cannot leak between calls.
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(rpc=method, peer=context.peer())
    return time.perf_counter()


class _Checks:
    def __init__(self, authenticator: Authenticator, rules: access.Rules) -> None:
        self.authenticator = authenticator
        self.rules = rules


async def _authenticate(
    method: str, checks: _Checks, context: grpc.aio.ServicerContext[Any, Any]
) -> None:
    caller = await checks.authenticator.authenticate(tuple(context.invocation_metadata() or ()))
    bind_caller(caller)
    structlog.contextvars.bind_contextvars(tenant=caller.tenant_id, key_id=caller.key_id)
    if caller.service:
        structlog.contextvars.bind_contextvars(via=caller.service)
    access.authorize(checks.rules, method, caller)


def _finish(method: str, started: float, code: grpc.StatusCode, message: str = "") -> None:
    elapsed = time.perf_counter() - started
    RPC_SECONDS.labels(method, code.name).observe(elapsed)
    elapsed_ms = round(elapsed * 1000, 1)
    if code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
        log.info("rpc finished", code=code.name, duration_ms=elapsed_ms)
    else:
        log.warning("rpc failed", code=code.name, message=message, duration_ms=elapsed_ms)


async def _fail(
    method: str,
    context: grpc.aio.ServicerContext[Any, Any],
    started: float,
    error: BaseException,
) -> None:
    if isinstance(error, psycopg.DataError):
        # A value the checks let through but the database refuses: the caller's to fix.
        log.warning("database refused a value", error=type(error).__name__)
        error = RpcError(
            grpc.StatusCode.INVALID_ARGUMENT, "a value in the request cannot be stored"
        )
    if isinstance(error, psycopg.OperationalError):
        # The database is away (restarting, failing over): the request may be retried.
        log.warning("database unavailable", error=str(error).splitlines()[0] if str(error) else "")
        error = RpcError(grpc.StatusCode.UNAVAILABLE, "the database is unavailable; retry shortly")
    if isinstance(error, RpcError):
        _finish(method, started, error.code, error.message)
        await context.abort_with_status(error.to_status())
    RPC_SECONDS.labels(method, grpc.StatusCode.INTERNAL.name).observe(time.perf_counter() - started)
    log.exception("rpc crashed", duration_ms=round((time.perf_counter() - started) * 1000, 1))
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the server log has the details")


def _unary(
    method: str, checks: _Checks, behaviour: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = _begin(method, context)
        try:
            await _authenticate(method, checks, context)
            if isinstance(request, Message):
                reject_nul(request)
            response = await behaviour(request, context)
        except (RpcError, Exception) as error:
            if _is_abort(error):
                raise
            await _fail(method, context, started, error)
        _finish(method, started, context.code() or grpc.StatusCode.OK)
        return response

    return wrapped


def _streaming(
    method: str, checks: _Checks, behaviour: Callable[..., AsyncIterator[Any]]
) -> Callable[..., AsyncIterator[Any]]:
    async def wrapped(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        started = _begin(method, context)
        streams = ACTIVE_STREAMS.labels(method)
        streams.inc()
        try:
            await _authenticate(method, checks, context)
            async for response in behaviour(request, context):
                yield response
        except (RpcError, Exception) as error:
            if _is_abort(error):
                raise
            await _fail(method, context, started, error)
        finally:
            streams.dec()
        _finish(method, started, context.code() or grpc.StatusCode.OK)

    return wrapped


def _is_abort(error: BaseException) -> bool:
    # context.abort() raises this to unwind the handler; it must pass through untouched.
    return type(error).__name__ == "AbortError"
