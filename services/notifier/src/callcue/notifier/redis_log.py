"""The event log in Redis Streams, shared by every notifier replica.

One stream per session, entry ids ``<sequence>-0``, so Redis itself keeps the order and a
re-sent event is recognised; the event that ends a session is marked, and nothing is
appended after it. Appends run as one Lua script (gap check and XADD at once),
which also adds the event to its tenant's feed, a stream numbered by a counter, for
supervisors following every call of the tenant. A tenant's keys share a hash tag.
Each replica runs one tail reader per session it has subscribers for (a blocking XREAD)
and fans events out to them from memory, so a thousand subscribers of a session cost one
blocked Redis connection, not a thousand; events appended through the replica itself go
to its tails at once, without that read's round trip. History a subscriber asks for comes
from XRANGE; the handover to the live tail is by sequence number, so nothing is skipped or
repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as redis
import structlog
from redis.exceptions import RedisError

from callcue.call.v1 import call_pb2
from callcue.notifier.event_log import (
    FEED_EVENTS,
    BadCursor,
    FellBehind,
    LogUnavailable,
    SequenceGap,
    SessionEnded,
    UnknownSession,
    is_terminal,
)

log = structlog.get_logger("callcue.notifier")

_APPEND = """
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local sequence = tonumber(ARGV[1])
if #top > 0 then
  local last = tonumber(string.match(top[1][1], '^(%d+)'))
  if sequence <= last then return 0 end
  if top[1][2][3] == 'end' then return 2 end
  if sequence ~= last + 1 then return -(last + 1) end
end
if ARGV[6] == '1' then
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], sequence .. '-0', 'e', ARGV[2], 'end', '1')
else
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], sequence .. '-0', 'e', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
local position = redis.call('INCR', KEYS[3])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], position .. '-0', 'e', ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[4])
return 1
"""
# A follower with nothing new re-reads Redis this often: it covers the moment between its
# history read and the start of the replica's tail reader.
_POLL_SECONDS = 1.0
_BLOCK_MS = 5000
_TAIL_KEPT = 10_000
_HISTORY_BATCH = 500


def _sequence(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def _event(fields: dict[Any, Any]) -> call_pb2.CallEvent:
    return call_pb2.CallEvent.FromString(fields[b"e"])


@dataclass
class _Tail:
    """What this replica has read live of one session, for its local followers."""

    first: int | None = None  # sequence of events[0]
    events: list[call_pb2.CallEvent] = field(default_factory=list)
    ended: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    followers: int = 0
    task: asyncio.Task[None] | None = None

    @property
    def reading(self) -> bool:
        return self.task is not None and not self.task.done()

    def add(self, event: call_pb2.CallEvent) -> None:
        if self.first is None:
            self.first = event.sequence
        elif event.sequence != self.first + len(self.events):
            return  # already have it
        self.events.append(event)
        self.ended = self.ended or is_terminal(event)
        if len(self.events) > _TAIL_KEPT * 2:
            del self.events[:_TAIL_KEPT]
            self.first += _TAIL_KEPT
        self.changed.set()
        self.changed = asyncio.Event()


class RedisEventLog:
    def __init__(
        self,
        url: str,
        *,
        events_per_session: int,
        session_ttl_seconds: int,
        prefix: str = "callcue:events:",
        max_connections: int = 64,
    ) -> None:
        # Commands share a bounded pool and wait for a free connection rather than fail;
        # the tails' blocking reads each hold one for seconds, so they get a pool of their
        # own that grows with the number of followed sessions.
        self._redis = redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=10
            )
        )
        self._blocking = redis.Redis.from_url(url)
        self._append = self._redis.register_script(_APPEND)
        self._capacity = events_per_session
        self._ttl = session_ttl_seconds
        self._prefix = prefix
        self._tails: dict[str, _Tail] = {}  # by session key

    def _key(self, tenant_id: str, session_id: str) -> str:
        return f"{self._prefix}{{{tenant_id}}}:s:{session_id}"

    def _feed_key(self, tenant_id: str) -> str:
        return f"{self._prefix}{{{tenant_id}}}:feed"

    async def append(self, tenant_id: str, event: call_pb2.CallEvent) -> bool:
        feed = self._feed_key(tenant_id)
        try:
            result = int(
                await self._append(
                    keys=[self._key(tenant_id, event.session_id), feed, f"{feed}:position"],
                    args=[
                        event.sequence,
                        event.SerializeToString(),
                        self._capacity,
                        self._ttl,
                        FEED_EVENTS,
                        "1" if is_terminal(event) else "0",
                    ],
                )
            )
        except RedisError as error:
            raise LogUnavailable(f"Redis: {error}") from error
        if result < 0:
            raise SequenceGap(event.session_id, -result, event.sequence)
        if result == 2:
            raise SessionEnded(event.session_id)
        tail = self._tails.get(self._key(tenant_id, event.session_id))
        if result == 1 and tail is not None:
            # Followers here need not wait for the tail's read of what this replica just
            # stored; the tail skips the event when Redis hands it over too.
            tail.add(event)
        return result == 1

    async def last_event(self, tenant_id: str, session_id: str) -> call_pb2.CallEvent | None:
        try:
            top: Any = await self._redis.xrevrange(
                self._key(tenant_id, session_id), "+", "-", count=1
            )
        except RedisError as error:
            raise LogUnavailable(f"Redis: {error}") from error
        return _event(top[0][1]) if top else None

    def _publisher_key(self, tenant_id: str, session_id: str) -> str:
        return f"{self._prefix}{{{tenant_id}}}:publisher:{session_id}"

    async def hold_publisher(self, tenant_id: str, session_id: str, seconds: float) -> None:
        try:
            await self._redis.set(
                self._publisher_key(tenant_id, session_id), 1, px=max(int(seconds * 1000), 1)
            )
        except RedisError as error:
            raise LogUnavailable(f"Redis: {error}") from error

    async def has_publisher(self, tenant_id: str, session_id: str) -> bool:
        try:
            return bool(await self._redis.exists(self._publisher_key(tenant_id, session_id)))
        except RedisError as error:
            raise LogUnavailable(f"Redis: {error}") from error

    async def follow(
        self, tenant_id: str, session_id: str, after_sequence: int
    ) -> AsyncIterator[call_pb2.CallEvent]:
        try:
            async for event in self._follow(tenant_id, session_id, after_sequence):
                yield event
        except RedisError as error:
            raise LogUnavailable(f"Redis: {error}") from error

    async def _follow(
        self, tenant_id: str, session_id: str, after_sequence: int
    ) -> AsyncIterator[call_pb2.CallEvent]:
        key = self._key(tenant_id, session_id)
        if not await self._redis.exists(key):
            raise UnknownSession(session_id)
        tail = self._join(key)
        wanted = max(after_sequence + 1, 1)
        try:
            while True:
                if tail.first is not None and wanted >= tail.first:
                    while tail.first is not None and wanted < tail.first + len(tail.events):
                        event = tail.events[wanted - tail.first]
                        yield event
                        wanted += 1
                        if is_terminal(event):
                            return
                    if tail.first is not None and wanted >= tail.first and tail.reading:
                        await _wait(tail.changed)
                        continue
                    # The tail reader is gone (see _read_tail): read Redis directly.
                # Older than what the tail holds (or the tail has nothing yet): Redis.
                # redis-py's reply types are unions of every decoding: read them as replies.
                entries: Any = await self._redis.xrange(
                    key, f"{wanted}-0", "+", count=_HISTORY_BATCH
                )
                if entries and _sequence(entries[0][0]) > wanted:
                    # Trimmed (MAXLEN) past what the reader wants: it must skip ahead.
                    raise FellBehind(
                        f"session {session_id}", wanted, _sequence(entries[0][0]), "after_sequence"
                    )
                for _, fields in entries:
                    event = _event(fields)
                    yield event
                    wanted += 1
                    if is_terminal(event):
                        return
                if not entries:
                    if not await self._redis.exists(key):
                        return  # expired: the session is long over
                    await _wait(tail.changed)
        finally:
            self._leave(key, tail)

    def _join(self, key: str) -> _Tail:
        tail = self._tails.get(key)
        if tail is None:
            tail = self._tails[key] = _Tail()
            tail.task = asyncio.create_task(self._read_tail(key, tail))
        tail.followers += 1
        return tail

    def _leave(self, key: str, tail: _Tail) -> None:
        tail.followers -= 1
        if tail.followers == 0 and self._tails.get(key) is tail:
            del self._tails[key]
            if tail.task is not None:
                tail.task.cancel()

    async def _read_tail(self, key: str, tail: _Tail) -> None:
        try:
            await self._read_tail_until_end(key, tail)
        except Exception:
            # Followers waiting on this tail would otherwise wait forever; once it is
            # done they read Redis themselves, once a second.
            log.exception("event tail failed; its followers read Redis directly", key=key)

    async def _read_tail_until_end(self, key: str, tail: _Tail) -> None:
        last_id: Any = None
        failures = 0
        while not tail.ended:
            try:
                if last_id is None:
                    top: Any = await self._redis.xrevrange(key, "+", "-", count=1)
                    last_id = top[0][0] if top else "0-0"
                streams: Any = await self._blocking.xread(
                    {key: last_id}, block=_BLOCK_MS, count=1000
                )
            except RedisError as error:
                # Followers meanwhile read Redis themselves (see _POLL_SECONDS).
                failures += 1
                log.warning("event tail lost Redis", key=key, error=str(error))
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
                continue
            failures = 0
            for _, entries in streams:
                for entry_id, fields in entries:
                    tail.add(_event(fields))
                    last_id = entry_id

    async def follow_tenant(
        self, tenant_id: str, after_cursor: str
    ) -> AsyncIterator[tuple[str, call_pb2.CallEvent]]:
        try:
            async for item in self._follow_tenant(tenant_id, after_cursor):
                yield item
        except RedisError as error:
            raise LogUnavailable(f"Redis: {error}") from error

    async def _follow_tenant(
        self, tenant_id: str, after_cursor: str
    ) -> AsyncIterator[tuple[str, call_pb2.CallEvent]]:
        # Supervisors are few: each reads the feed itself, no shared tail.
        key = self._feed_key(tenant_id)
        if not after_cursor:
            top: Any = await self._redis.xrevrange(key, "+", "-", count=1)
            wanted = _sequence(top[0][0]) + 1 if top else 1
        elif after_cursor.isdigit():
            wanted = int(after_cursor) + 1
        else:
            raise BadCursor(f"{after_cursor!r} is not a cursor of this notifier")
        while True:
            entries: Any = await self._redis.xrange(key, f"{wanted}-0", "+", count=_HISTORY_BATCH)
            if entries and _sequence(entries[0][0]) > wanted:
                raise FellBehind(
                    f"tenant {tenant_id}", wanted, _sequence(entries[0][0]), "after_cursor"
                )
            for entry_id, fields in entries:
                wanted = _sequence(entry_id) + 1
                yield str(wanted - 1), _event(fields)
            if not entries:
                await self._blocking.xread({key: f"{wanted - 1}-0"}, block=_BLOCK_MS, count=1)

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        for tail in self._tails.values():
            if tail.task is not None:
                tail.task.cancel()
        await self._redis.aclose()
        await self._blocking.aclose()


async def _wait(changed: asyncio.Event) -> None:
    # asyncio.timeout, not wait_for: no extra task per wait, with a thousand followers.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_POLL_SECONDS):
            await changed.wait()
