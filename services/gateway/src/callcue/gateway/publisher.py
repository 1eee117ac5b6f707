"""Numbers a session's events and publishes them to the notifier."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog
from google.protobuf import timestamp_pb2

from callcue.call.v1 import call_pb2
from callcue.core.backoff import Backoff
from callcue.gateway.retries import RETRYABLE
from callcue.notifier.v1 import notifier_service_pb2 as notifier_pb
from callcue.notifier.v1 import notifier_service_pb2_grpc as notifier_grpc

log = structlog.get_logger("callcue.gateway")


class SessionPublisher:
    """One Publish stream per session. Events get consecutive sequence numbers here,
    so the caller's stream and every subscriber see the same numbering.

    The first event is confirmed before it is handed back, so a client that learns the
    session id from it can subscribe at once. Later events are not waited on: a slow
    or failed notifier must not hold up the call. Events stay in hand until they are
    acknowledged; when the stream fails (the notifier replica went away, or its Redis) a
    new stream, on another replica, gets them again (the log drops the ones it already
    has), for as long as the session runs and up to 10 s after it ends.
    """

    def __init__(self, notifier: notifier_grpc.PublisherServiceAsyncStub, session_id: str) -> None:
        self._notifier = notifier
        self._session_id = session_id
        self._sequence = 0
        self._outbox: asyncio.Queue[notifier_pb.PublishRequest | None] = asyncio.Queue()
        self._unacked: deque[notifier_pb.PublishRequest] = deque()
        self._closing = False
        self._acked = 0
        self._first_ack = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._call: grpc.aio.StreamStreamCall[Any, Any] | None = None

    def start(self) -> None:
        """Opens the Publish stream (and a new one whenever it fails) in the background."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_acks())

    async def _requests(self) -> AsyncIterator[notifier_pb.PublishRequest]:
        for request in list(self._unacked):
            yield request
        while not self._closing:
            item = await self._outbox.get()
            if item is None:
                self._closing = True
                return
            # Held from here: a stream that fails before the ack means a resend.
            self._unacked.append(item)
            yield item

    async def _read_acks(self) -> None:
        backoff = Backoff()  # never gives up by itself: close() ends it
        try:
            while True:
                self._call = self._notifier.Publish(self._requests())
                try:
                    async for ack in self._call:
                        backoff.reset()
                        self._acked = ack.sequence
                        while self._unacked and self._unacked[0].event.sequence <= ack.sequence:
                            self._unacked.popleft()
                        self._first_ack.set()
                    return
                except grpc.aio.AioRpcError as error:
                    log.warning(
                        "notifier publish stream lost",
                        code=error.code().name,
                        details=error.details(),
                        last_acknowledged=self._acked,
                    )
                    # Re-sent events are recognised by the log, so retrying is always safe,
                    # also after INTERNAL: grpc.aio reports a status that arrives while the
                    # client is still writing that way (grpc/grpc#36066). It goes on until
                    # close() gives up, however long the notifier or Redis is away.
                    if error.code() not in (*RETRYABLE, grpc.StatusCode.INTERNAL):
                        return
                    await backoff.wait()
        finally:
            self._first_ack.set()

    async def publish(self, event: call_pb2.CallEvent) -> call_pb2.CallEvent:
        """Stamps the event with the session, its sequence and the time, and sends it."""
        self._sequence += 1
        event.session_id = self._session_id
        event.sequence = self._sequence
        event.create_time.CopyFrom(timestamp_pb2.Timestamp())
        event.create_time.GetCurrentTime()
        self._outbox.put_nowait(notifier_pb.PublishRequest(event=event))
        if self._sequence == 1:
            try:
                await asyncio.wait_for(self._first_ack.wait(), timeout=5)
            except TimeoutError:
                log.warning("notifier did not acknowledge the first event in 5 s")
        return event

    async def close(self) -> None:
        self._outbox.put_nowait(None)
        if self._reader is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout=10)
        except TimeoutError:
            self._reader.cancel()
            if self._call is not None:
                self._call.cancel()
        if self._acked < self._sequence:
            log.warning(
                "notifier missed events", published=self._sequence, acknowledged=self._acked
            )
