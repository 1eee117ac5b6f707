"""Live calls: the caller's audio to the transcriber (resumed on another replica when one
is lost), the transcript to the detector, every event back to the caller and out to the
notifier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import structlog

from callcue.call.v1 import call_pb2
from callcue.core import auth, errors
from callcue.core.audio_format import bytes_per_second, check_format
from callcue.core.config_first import first_config
from callcue.core.durations import duration
from callcue.gateway.call_session import CallSession
from callcue.gateway.running import CALLS, Gateway, error_text
from callcue.gateway.settings import Settings
from callcue.gateway.transcriber_link import TranscriberLink, pump
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.transcriber.v1 import transcriber_service_pb2 as transcriber_pb

log = structlog.get_logger("callcue.gateway")


class LiveCalls:
    def __init__(self, gateway: Gateway) -> None:
        self._downstream = gateway.downstream
        self._store = gateway.store
        self._policies = gateway.policies
        self._settings = gateway.settings
        self._sessions = gateway.sessions

    async def stream(
        self, request_iterator: AsyncIterator[pb.StreamCallRequest]
    ) -> AsyncGenerator[pb.StreamCallResponse, None]:
        config = await first_config(request_iterator)
        if config is None:
            return
        check_format(config.audio_format, config.channel_roles)
        caller = auth.current_caller()
        limit = caller.tenant.max_concurrent_calls
        session = await self._store.create(
            caller.tenant_id,
            pb.SESSION_SOURCE_LIVE,
            config,
            max_live_calls=self._settings.max_concurrent_calls if limit is None else limit,
        )
        self._sessions.add(session.session_id)
        structlog.contextvars.bind_contextvars(session_id=session.session_id)
        log.info("call started", channels=config.audio_format.channel_count or 1)
        call = CallSession(
            session.session_id,
            config.playbook_ids,
            self._downstream,
            self._store,
            interim=config.interim_results,
            policy=await self._policies.get(caller.tenant_id),
        )
        audio = _AudioIntake(request_iterator, config, self._settings)
        transcribing = asyncio.create_task(self._transcribe_live(call, config, audio))
        state, message = call_pb2.CALL_STATE_FAILED, "the call was cancelled"
        refusal: errors.RpcError | None = None
        try:
            yield pb.StreamCallResponse(event=await call.start("call started"))
            async for event in call.events():
                yield pb.StreamCallResponse(event=event)
            state, message, refusal = await transcribing
        finally:
            transcribing.cancel()
            audio.cancel()
            await call.close(message)
            self._sessions.discard(session.session_id)
            await self._sessions.keep_writing(
                call.writer.finish(state, audio.seconds, error_text(state, message))
            )
            CALLS.labels("live", call_pb2.CallState.Name(state)).inc()
            log.info(
                "call ended", state=call_pb2.CallState.Name(state), audio_seconds=audio.seconds
            )
        if audio.error is not None:
            raise audio.error
        if refusal is not None:
            raise refusal
        if state == call_pb2.CALL_STATE_FAILED:
            raise errors.unavailable(message)

    async def _transcribe_live(
        self, call: CallSession, config: pb.CallConfig, audio: _AudioIntake
    ) -> tuple[call_pb2.CallState.ValueType, str, errors.RpcError | None]:
        link = TranscriberLink(
            self._downstream.transcriber,
            transcriber_pb.StreamingConfig(
                audio_format=config.audio_format,
                channel_roles=config.channel_roles,
                language_code=config.language_code,
                interim_results=config.interim_results,
                session_id=call.session_id,
                hotwords=await call.vocabulary() if self._settings.hotwords_from_playbook else [],
            ),
        )
        intake = asyncio.create_task(pump(audio, link.audio))
        try:
            state, message = await link.run(call)
        finally:
            intake.cancel()
        if audio.error is not None:
            state, message = call_pb2.CALL_STATE_FAILED, audio.error.message
        await call.finish(
            call_pb2.CallStatus(
                state=state, message=message, audio_received=duration(audio.seconds)
            )
        )
        return state, message, link.refusal


class _AudioIntake:
    """The caller's audio messages, checked against the call's limits.

    A bad message ends the intake and is kept in ``error``, so the call can still be
    closed cleanly (final status, session stored) before the caller gets the status.
    """

    def __init__(
        self,
        requests: AsyncIterator[pb.StreamCallRequest],
        config: pb.CallConfig,
        settings: Settings,
    ) -> None:
        self._requests = requests
        self._rate = bytes_per_second(config.audio_format)
        self._settings = settings
        self._bytes = 0
        self._cancelled = False
        self.error: errors.RpcError | None = None

    @property
    def seconds(self) -> float:
        return self._bytes / self._rate

    def cancel(self) -> None:
        self._cancelled = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for request in self._requests:
                if self._cancelled:
                    return
                self._check(request)
                if self.error is not None:
                    return
                self._bytes += len(request.audio)
                yield request.audio
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the caller's stream broke (cancelled, reset)
            log.info("caller stream ended abruptly", error=str(error))

    def _check(self, request: pb.StreamCallRequest) -> None:
        if request.WhichOneof("request") != "audio":
            self.error = errors.invalid_argument("config", "send the config once, first")
        elif len(request.audio) > self._settings.max_chunk_bytes:
            self.error = errors.resource_exhausted(
                "audio chunk",
                f"an audio message of {len(request.audio)} bytes exceeds the limit of "
                f"{self._settings.max_chunk_bytes}; send smaller chunks (100 ms is typical)",
            )
        elif (self._bytes + len(request.audio)) / self._rate > self._settings.max_call_seconds:
            self.error = errors.resource_exhausted(
                "call duration",
                f"the call exceeds the maximum of {self._settings.max_call_seconds:.0f} seconds",
            )
