"""`callcue watch`: follow one session, or every live call of the tenant, through the
notifier; a dropped connection is resumed after the last event seen, so nothing is lost or
shown twice."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable

import grpc

from callcue.call.v1 import call_pb2
from callcue.cli.json_output import as_json
from callcue.cli.text_view import CallView, EventView, Output
from callcue.notifier.v1 import notifier_service_pb2 as pb
from callcue.notifier.v1 import notifier_service_pb2_grpc as pb_grpc

# Pauses between reconnection attempts; a stream that delivered anything resets them.
RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0, 5.0, 5.0)

ChannelFactory = Callable[[], grpc.aio.Channel]


async def _resuming(
    open_stream: Callable[[pb_grpc.SubscriberServiceAsyncStub], AsyncIterator[call_pb2.CallEvent]],
    channel: ChannelFactory,
    err: Output,
    view: CallView | None = None,
) -> AsyncIterator[call_pb2.CallEvent]:
    failures = 0
    while True:
        try:
            async with channel() as opened:
                async for event in open_stream(pb_grpc.SubscriberServiceStub(opened)):
                    failures = 0
                    yield event
                return
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or failures >= len(RECONNECT_SECONDS):
                raise
            err.write(f"callcue: connection lost ({error.details()}); reconnecting\n")
            if view is not None:
                view.connection("reconnecting", error.details() or "")
            await asyncio.sleep(RECONNECT_SECONDS[failures])
            failures += 1


async def watch_session(
    channel: ChannelFactory,
    session_id: str,
    view: CallView,
    *,
    after: int = 0,
    json_lines: bool = False,
    out: Output = sys.stdout,
    err: Output = sys.stderr,
) -> CallView:
    """Every event of the session after ``after``, until the session ends."""
    last = after

    def subscribe(stub: pb_grpc.SubscriberServiceAsyncStub) -> AsyncIterator[call_pb2.CallEvent]:
        request = pb.SubscribeRequest(session_id=session_id, after_sequence=last)
        return _events(stub.Subscribe(request))

    view.connection("connecting")
    try:
        async for event in _resuming(subscribe, channel, err, view):
            last = event.sequence
            _print(event, view, json_lines, out)
    finally:
        view.close()
    return view


async def watch_tenant(
    channel: ChannelFactory,
    *,
    count: int = 0,
    json_lines: bool = False,
    out: Output = sys.stdout,
    err: Output = sys.stderr,
) -> int:
    """Events of every session of the tenant as they happen; stops after ``count`` if set."""
    cursor = ""
    seen = 0
    views: dict[str, EventView] = {}

    async def subscribe(
        stub: pb_grpc.SubscriberServiceAsyncStub,
    ) -> AsyncIterator[call_pb2.CallEvent]:
        nonlocal cursor
        async for response in stub.SubscribeAll(pb.SubscribeAllRequest(after_cursor=cursor)):
            cursor = response.cursor
            yield response.event

    async for event in _resuming(subscribe, channel, err):
        view = views.setdefault(event.session_id, EventView(_Prefixed(out, event.session_id)))
        _print(event, view, json_lines, out)
        seen += 1
        if count and seen >= count:
            break
    for view in views.values():
        view.close()
    return seen


async def _events(
    call: AsyncIterable[pb.SubscribeResponse],
) -> AsyncIterator[call_pb2.CallEvent]:
    async for response in call:
        yield response.event


def _print(event: call_pb2.CallEvent, view: CallView, json_lines: bool, out: Output) -> None:
    if json_lines:
        out.write(as_json(event) + "\n")
        out.flush()
    else:
        view.show(event)


class _Prefixed:
    """Lines of one session among many, each marked with the start of the session id."""

    def __init__(self, out: Output, session_id: str) -> None:
        self._out = out
        self._mark = f"{session_id[:8]} | "
        self._fresh = True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self._fresh:
                self._out.write(self._mark)
            self._out.write(piece)
            self._fresh = piece.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self._out.flush()

    def isatty(self) -> bool:
        return False  # no redrawing: lines of other sessions come in between
