"""One phone call streamed into the gateway as a StreamCall, like any client's call: its
events go to the notifier from there, so the console and `callcue watch` show it live."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import grpc
import structlog

from callcue.call.v1 import call_pb2
from callcue.core.audio_format import bytes_per_second
from callcue.core.service_keys import Metadata
from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb
from callcue.gateway.v1 import gateway_service_pb2_grpc

log = structlog.get_logger("callcue.telephony.gateway_call")

# The gateway's own limit is larger; 100 ms of audio is what it expects.
MAX_CHUNK_BYTES = 16 * 1024
# Phone systems send 20 ms frames; they go on to the gateway in chunks of this much audio,
# a fifth of the messages (and of their CPU) for at most 80 ms more delay.
CHUNK_SECONDS = 0.1
MAX_METADATA = 32
MAX_KEY, MAX_VALUE, MAX_TITLE = 64, 512, 200


class GatewayError(Exception):
    """The gateway refused or ended the call."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


def clean_metadata(values: Mapping[str, object]) -> dict[str, str]:
    """Call metadata from a phone system's parameters: text only, NUL-free, bounded."""
    cleaned: dict[str, str] = {}
    for key, value in values.items():
        if len(cleaned) >= MAX_METADATA:
            break
        if not isinstance(value, str | int | float | bool) or not key:
            continue
        text = str(value).replace("\x00", "")[:MAX_VALUE]
        cleaned[str(key).replace("\x00", "")[:MAX_KEY]] = text
    return cleaned


def call_config(
    audio_format: call_pb2.AudioFormat,
    roles: Sequence[call_pb2.SpeakerRole.ValueType],
    title: str,
    metadata: Mapping[str, str],
    playbook_ids: tuple[str, ...],
) -> gateway_pb.CallConfig:
    return gateway_pb.CallConfig(
        audio_format=audio_format,
        channel_roles=roles,
        interim_results=True,
        title=title.replace("\x00", "")[:MAX_TITLE],
        metadata=dict(metadata),
        playbook_ids=list(playbook_ids),
    )


class GatewayCall:
    def __init__(
        self,
        gateway: gateway_service_pb2_grpc.GatewayServiceAsyncStub,
        config: gateway_pb.CallConfig,
        auth: Metadata,
    ) -> None:
        self._gateway = gateway
        self._config = config
        self._auth = auth
        # About 10 s of 8 kHz stereo audio in 20 ms chunks: the gateway is not keeping up
        # if this fills, and the socket's reads wait rather than memory growing.
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=500)
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending = bytearray()
        self._chunk = max(1, int(bytes_per_second(config.audio_format) * CHUNK_SECONDS))
        self.session_id = ""
        self.events = 0
        self.bytes_sent = 0

    async def start(self) -> str:
        """Opens the call; returns its session id once the gateway has created it."""

        async def requests() -> AsyncIterator[gateway_pb.StreamCallRequest]:
            yield gateway_pb.StreamCallRequest(config=self._config)
            while (chunk := await self._audio.get()) is not None:
                yield gateway_pb.StreamCallRequest(audio=chunk)

        self._call = self._gateway.StreamCall(requests(), metadata=self._auth)
        try:
            first = await self._call.read()
        except grpc.aio.AioRpcError as error:
            raise GatewayError(error.code(), error.details() or "") from None
        if not isinstance(first, gateway_pb.StreamCallResponse):
            raise GatewayError(grpc.StatusCode.UNAVAILABLE, "the gateway ended the call at once")
        self.session_id = first.event.session_id
        self._reader = asyncio.create_task(self._read())
        return self.session_id

    async def _read(self) -> None:
        # The events reach people through the notifier; they are read here so the
        # gateway is never held up by a full stream.
        while await self._call.read() is not grpc.aio.EOF:
            self.events += 1

    async def send(self, audio: bytes) -> None:
        if self._reader is not None and self._reader.done():
            self._raise_failure()
            raise GatewayError(grpc.StatusCode.ABORTED, "the gateway ended the call")
        self._pending += audio
        self.bytes_sent += len(audio)
        if len(self._pending) >= self._chunk:
            await self.flush()

    async def flush(self) -> None:
        """Sends what is waiting for a whole chunk (before a pause, say)."""
        audio, self._pending = bytes(self._pending), bytearray()
        for start in range(0, len(audio), MAX_CHUNK_BYTES):
            await self._audio.put(audio[start : start + MAX_CHUNK_BYTES])

    async def finish(self, patience: float = 60.0) -> None:
        """Ends the audio and waits for the call's last finals (at most ``patience`` s)."""
        await self.flush()
        await self._audio.put(None)
        if self._reader is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), patience)
        except TimeoutError:
            log.warning("the gateway did not end the call in time", session_id=self.session_id)
            self.cancel()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._reader is None or not self._reader.done() or self._reader.cancelled():
            return
        error = self._reader.exception()
        if isinstance(error, grpc.aio.AioRpcError):
            raise GatewayError(error.code(), error.details() or "")

    def cancel(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()

    async def aclose(self) -> None:
        self.cancel()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await self._reader
