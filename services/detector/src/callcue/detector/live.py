"""Compiled matchers for running calls, rebuilt when their playbooks change.

Calls that select the same playbooks share one compiled matcher. Every write to the
keywords table NOTIFYs ``callcue_playbooks`` with ``<tenant>/<playbook>`` (a trigger,
see the migrations); each detector replica LISTENs, recompiles the matchers that use
that playbook and swaps them into the running calls, so an edit reaches live calls
within a second and no restart is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import psycopg
import structlog

from callcue.core.backoff import Backoff
from callcue.detector.call_detector import CallDetector
from callcue.detector.matcher import KeywordMatcher
from callcue.detector.sentences import SentenceEncoder
from callcue.detector.v1 import detector_service_pb2 as pb

log = structlog.get_logger("callcue.detector")

CHANNEL = "callcue_playbooks"
_RECONNECT_PAUSES = (0.2, 0.5, 1.0, 2.0, 5.0)


class KeywordSource(Protocol):
    async def for_playbooks(
        self, tenant_id: str, playbook_ids: Sequence[str]
    ) -> list[pb.Keyword]: ...


# A tenant and the playbooks its call selected.
Selection = tuple[str, tuple[str, ...]]


class LiveMatchers:
    def __init__(self, keywords: KeywordSource, sentences: SentenceEncoder | None) -> None:
        self._keywords = keywords
        self._sentences = sentences
        self._matchers: dict[Selection, KeywordMatcher] = {}
        self._calls: dict[Selection, set[CallDetector]] = {}

    async def _compile(self, playbooks: Selection) -> KeywordMatcher:
        keywords = await self._keywords.for_playbooks(*playbooks)
        # Compiling (automata, example embeddings) is CPU work: keep it off the event loop.
        return await asyncio.to_thread(KeywordMatcher, keywords, self._sentences)

    async def attach(
        self, tenant_id: str, playbook_ids: Sequence[str], *, interim: bool
    ) -> CallDetector:
        playbooks = (tenant_id, tuple(sorted(set(playbook_ids))))
        matcher = self._matchers.get(playbooks)
        if matcher is None:
            matcher = await self._compile(playbooks)
            self._matchers.setdefault(playbooks, matcher)
        call = CallDetector(self._matchers[playbooks], interim=interim)
        self._calls.setdefault(playbooks, set()).add(call)
        return call

    def detach(self, call: CallDetector) -> None:
        for playbooks, calls in list(self._calls.items()):
            calls.discard(call)
            if not calls:
                del self._calls[playbooks]
                self._matchers.pop(playbooks, None)

    async def changed(self, payload: str | None) -> None:
        """Recompiles the matchers that use the ``<tenant>/<playbook>`` of the payload
        (all of them for None)."""
        tenant_id, _, playbook_id = (payload or "").partition("/")
        for playbooks in list(self._calls):
            if payload is not None and (tenant_id, playbook_id) not in (
                (playbooks[0], selected) for selected in playbooks[1]
            ):
                continue
            try:
                matcher = await self._compile(playbooks)
            except Exception as error:  # a deleted playbook, a lost connection: keep the old
                log.warning("playbook reload failed", playbooks=playbooks, error=str(error))
                continue
            self._matchers[playbooks] = matcher
            for call in self._calls.get(playbooks, ()):
                call.matcher = matcher
            log.info("playbook reloaded", playbooks=playbooks, keywords=len(matcher))

    async def listen(self, database_url: str, ready: asyncio.Event | None = None) -> None:
        """Follows playbook changes until cancelled, reconnecting when the link drops."""
        backoff = Backoff(_RECONNECT_PAUSES)  # never gives up: edits must keep arriving
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    database_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if backoff.failures:
                        await self.changed(None)  # edits made while we were not listening
                    backoff.reset()
                    if ready is not None:
                        ready.set()
                    async for notify in conn.notifies():
                        await self.changed(notify.payload)
            except psycopg.OperationalError as error:
                log.warning(
                    "playbook listener lost its connection",
                    error=str(error),
                    retry_in=backoff.next_pause,
                )
                await backoff.wait()
