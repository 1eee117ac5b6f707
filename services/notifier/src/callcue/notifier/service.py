"""The notifier's two services: the gateway publishes to the event log (internal), clients
subscribe to it (public)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc
import prometheus_client
import structlog

from callcue.call.v1 import call_pb2
from callcue.core import auth, errors
from callcue.notifier.event_log import (
    BadCursor,
    EventLog,
    FellBehind,
    LogUnavailable,
    SequenceGap,
    SessionEnded,
    UnknownSession,
)
from callcue.notifier.orphans import PublisherWatch
from callcue.notifier.v1 import notifier_service_pb2 as pb
from callcue.notifier.v1 import notifier_service_pb2_grpc as pb_grpc

log = structlog.get_logger("callcue.notifier")

LAG_SECONDS = prometheus_client.Histogram(
    "callcue_notifier_lag_seconds",
    "From an event's creation (by the gateway) to its hand-over to a subscriber's stream; "
    "replays of old events included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 60),
)


def _observe_lag(event: call_pb2.CallEvent) -> None:
    if event.HasField("create_time"):
        LAG_SECONDS.observe(max(time.time() - event.create_time.ToNanoseconds() / 1e9, 0.0))


class PublisherService(pb_grpc.PublisherServiceServicer):
    def __init__(self, events: EventLog, publishers: PublisherWatch) -> None:
        self._events = events
        self._publishers = publishers

    async def Publish(
        self,
        request_iterator: AsyncIterator[pb.PublishRequest],
        context: grpc.aio.ServicerContext[pb.PublishRequest, pb.PublishResponse],
    ) -> AsyncIterator[pb.PublishResponse]:
        async with self._publishers.stream(auth.tenant_id()) as sessions:
            async for request in request_iterator:
                event = request.event
                if not event.session_id:
                    raise errors.invalid_argument("event.session_id", "must name the session")
                if event.sequence < 1:
                    raise errors.invalid_argument("event.sequence", "must be 1 or more")
                if event.WhichOneof("event") is None:
                    raise errors.invalid_argument(
                        "event", "must carry a transcript, a detection or a status"
                    )
                try:
                    await self._events.append(auth.tenant_id(), event)
                    await sessions.published(event)
                except (SequenceGap, SessionEnded) as refused:
                    raise errors.failed_precondition(str(refused)) from None
                except LogUnavailable as unavailable:
                    raise errors.unavailable(
                        f"events cannot be stored now: {unavailable}"
                    ) from None
                yield pb.PublishResponse(session_id=event.session_id, sequence=event.sequence)


class SubscriberService(pb_grpc.SubscriberServiceServicer):
    def __init__(self, events: EventLog) -> None:
        self._events = events

    async def Subscribe(
        self,
        request: pb.SubscribeRequest,
        context: grpc.aio.ServicerContext[pb.SubscribeRequest, pb.SubscribeResponse],
    ) -> AsyncIterator[pb.SubscribeResponse]:
        if not request.session_id:
            raise errors.invalid_argument("session_id", "must name the session to follow")
        if request.after_sequence < 0:
            raise errors.invalid_argument("after_sequence", "must be 0 or more")
        structlog.contextvars.bind_contextvars(session_id=request.session_id)
        log.info("subscriber joined", after_sequence=request.after_sequence)
        try:
            async for event in self._events.follow(
                auth.tenant_id(), request.session_id, request.after_sequence
            ):
                _observe_lag(event)
                yield pb.SubscribeResponse(event=event)
        except UnknownSession:
            raise errors.not_found("session", request.session_id) from None
        except FellBehind as behind:
            raise errors.RpcError(grpc.StatusCode.OUT_OF_RANGE, str(behind)) from None
        except LogUnavailable as unavailable:
            raise errors.unavailable(f"events cannot be read now: {unavailable}") from None

    async def SubscribeAll(
        self,
        request: pb.SubscribeAllRequest,
        context: grpc.aio.ServicerContext[pb.SubscribeAllRequest, pb.SubscribeAllResponse],
    ) -> AsyncIterator[pb.SubscribeAllResponse]:
        log.info("supervisor joined", after_cursor=request.after_cursor)
        try:
            async for cursor, event in self._events.follow_tenant(
                auth.tenant_id(), request.after_cursor
            ):
                _observe_lag(event)
                yield pb.SubscribeAllResponse(event=event, cursor=cursor)
        except BadCursor as bad:
            raise errors.invalid_argument("after_cursor", str(bad)) from None
        except FellBehind as behind:
            raise errors.RpcError(grpc.StatusCode.OUT_OF_RANGE, str(behind)) from None
        except LogUnavailable as unavailable:
            raise errors.unavailable(f"events cannot be read now: {unavailable}") from None
