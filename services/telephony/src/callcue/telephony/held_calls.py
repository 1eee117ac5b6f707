"""AudioHook calls whose connection was lost without a close: kept open for a short grace
period, so the reconnect that continues the conversation continues the same session."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import structlog

from callcue.telephony.gateway_call import GatewayCall

log = structlog.get_logger("callcue.telephony.held_calls")


@dataclass
class HeldCall:
    call: GatewayCall
    # Keys it can be continued by: the AudioHook session id, and the conversation id.
    keys: tuple[str, ...]
    # Where its audio ended, in samples, and when.
    position_samples: int
    held_at: float = field(default_factory=time.monotonic)
    expiry: asyncio.TimerHandle | None = None


class HeldCalls:
    def __init__(self, grace_seconds: float) -> None:
        self._grace = grace_seconds
        self._held: dict[str, HeldCall] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def hold(self, held: HeldCall) -> None:
        if self._grace <= 0:
            self._finish(held)
            return
        for key in held.keys:
            self._held[key] = held
        held.expiry = asyncio.get_running_loop().call_later(self._grace, self._expire, held)
        log.info("call held for a reconnect", session_id=held.call.session_id)

    def take(self, keys: list[str]) -> HeldCall | None:
        for key in keys:
            held = self._held.get(key)
            if held is not None:
                self._release(held)
                return held
        return None

    def _release(self, held: HeldCall) -> None:
        for key in held.keys:
            if self._held.get(key) is held:
                del self._held[key]
        if held.expiry is not None:
            held.expiry.cancel()

    def _expire(self, held: HeldCall) -> None:
        log.info("no reconnect came; ending the call", session_id=held.call.session_id)
        self._release(held)
        self._finish(held)

    def _finish(self, held: HeldCall) -> None:
        task = asyncio.get_running_loop().create_task(self._end(held.call))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _end(self, call: GatewayCall) -> None:
        try:
            await call.finish()
        except Exception as error:  # the call is over either way; say why
            log.warning("a held call ended badly", session_id=call.session_id, error=str(error))

    async def close(self) -> None:
        for held in {id(h): h for h in self._held.values()}.values():
            self._release(held)
            self._finish(held)
        if self._closing:
            await asyncio.wait(list(self._closing))
