"""The GatewayService: live calls, uploaded recordings and their sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import grpc
import prometheus_client
import psycopg
import structlog

from callcue.call.v1 import call_pb2
from callcue.core import auth, errors
from callcue.core.audio_format import bytes_per_second, check_format
from callcue.core.config_first import first_config, receive_upload
from callcue.core.durations import duration
from callcue.core.server import Context
from callcue.detector.v1 import detector_service_pb2 as detector_pb
from callcue.gateway import exports
from callcue.gateway.call_audio import CallAudio
from callcue.gateway.call_session import CallSession, Downstream
from callcue.gateway.resumption import Resumption
from callcue.gateway.retries import RETRYABLE
from callcue.gateway.session_writer import PATIENCE_SECONDS
from callcue.gateway.sessions import SessionStore
from callcue.gateway.settings import Settings
from callcue.gateway.summary import summarise
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from callcue.transcriber.v1 import transcriber_service_pb2 as transcriber_pb

log = structlog.get_logger("callcue.gateway")

CALLS = prometheus_client.Counter(
    "callcue_calls_total",
    "Calls and recordings finished, by source and final state.",
    ["source", "state"],
)

_UPLOAD_CHUNK = 64 * 1024
# Whisper's prompt holds about 220 tokens; the call's own recent words need room too.
MAX_HOTWORDS = 50


class GatewayService(pb_grpc.GatewayServiceServicer):
    def __init__(self, downstream: Downstream, store: SessionStore, settings: Settings) -> None:
        self._downstream = downstream
        self._store = store
        self._settings = settings
        self._uploads: set[asyncio.Task[None]] = set()
        self._running: set[str] = set()  # sessions this replica holds leases on
        self._writing: set[asyncio.Task[None]] = set()  # sessions not yet all stored

    # Live calls ---------------------------------------------------------------

    async def StreamCall(
        self, request_iterator: AsyncIterator[pb.StreamCallRequest], context: Context
    ) -> AsyncIterator[pb.StreamCallResponse]:
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
        self._running.add(session.session_id)
        structlog.contextvars.bind_contextvars(session_id=session.session_id)
        log.info("call started", channels=config.audio_format.channel_count or 1)
        call = CallSession(
            session.session_id,
            config.playbook_ids,
            self._downstream,
            self._store,
            interim=config.interim_results,
        )
        audio = _AudioIntake(request_iterator, config, self._settings)
        transcribing = asyncio.create_task(self._transcribe_live(call, config, audio))
        state, message = call_pb2.CALL_STATE_FAILED, "the call was cancelled"
        try:
            yield pb.StreamCallResponse(event=await call.start("call started"))
            async for event in call.events():
                yield pb.StreamCallResponse(event=event)
            state, message = await transcribing
        finally:
            transcribing.cancel()
            audio.cancel()
            await call.close(message)
            self._running.discard(session.session_id)
            await self._keep_writing(
                call.writer.finish(state, audio.seconds, _error(state, message))
            )
            CALLS.labels("live", call_pb2.CallState.Name(state)).inc()
            log.info(
                "call ended", state=call_pb2.CallState.Name(state), audio_seconds=audio.seconds
            )
        if audio.error is not None:
            raise audio.error
        if state == call_pb2.CALL_STATE_FAILED:
            raise errors.unavailable(message)

    async def _transcribe_live(
        self, call: CallSession, config: pb.CallConfig, audio: _AudioIntake
    ) -> tuple[call_pb2.CallState.ValueType, str]:
        streaming_config = transcriber_pb.StreamingConfig(
            audio_format=config.audio_format,
            channel_roles=config.channel_roles,
            language_code=config.language_code,
            interim_results=config.interim_results,
            session_id=call.session_id,
            hotwords=await self._hotwords(config.playbook_ids),
        )
        channels = config.audio_format.channel_count or 1
        rate = bytes_per_second(config.audio_format)
        buffer = CallAudio(rate, rate // config.audio_format.sample_rate_hertz)
        pump = asyncio.create_task(_pump(audio, buffer))
        resumption = Resumption(channels)
        state, message = call_pb2.CALL_STATE_ENDED, "call ended"
        try:
            while True:
                start = buffer.offset(resumption.offset)

                async def requests(
                    start: int = start,
                ) -> AsyncIterator[transcriber_pb.StreamingTranscribeRequest]:
                    yield transcriber_pb.StreamingTranscribeRequest(config=streaming_config)
                    async for chunk in buffer.read_from(start):
                        yield transcriber_pb.StreamingTranscribeRequest(audio=chunk)

                try:
                    stream = self._downstream.transcriber.StreamingTranscribe(requests())
                    async for response in stream:
                        if response.HasField("engine_status"):
                            call.engine = response.engine_status.engine
                            call.model = response.engine_status.model
                            call.add_status(
                                call_pb2.CallStatus(
                                    state=call_pb2.CALL_STATE_ACTIVE,
                                    message=f"transcribing with {response.engine_status.model}",
                                )
                            )
                        elif (segment := resumption.adopt(response.segment)) is not None:
                            call.add_segment(segment)
                    break
                except grpc.aio.AioRpcError as error:
                    log.warning(
                        "transcriber stream lost", code=error.code().name, details=error.details()
                    )
                    if error.code() not in RETRYABLE or resumption.backoff.exhausted:
                        state = call_pb2.CALL_STATE_FAILED
                        message = _downstream_failure("transcriber", error)
                        break
                    await resumption.backoff.wait()
                    resume_at = buffer.seconds(buffer.offset(resumption.resume_point()))
                    resumption.restart(resume_at)
                    call.add_status(
                        call_pb2.CallStatus(
                            state=call_pb2.CALL_STATE_ACTIVE,
                            message=f"transcriber lost ({error.code().name}); resuming on "
                            f"another replica from {resume_at:.1f} s into the call",
                        )
                    )
        finally:
            pump.cancel()
        if audio.error is not None:
            state, message = call_pb2.CALL_STATE_FAILED, audio.error.message
        await call.finish(
            call_pb2.CallStatus(
                state=state, message=message, audio_received=duration(audio.seconds)
            )
        )
        return state, message

    async def _hotwords(self, playbook_ids: Sequence[str]) -> list[str]:
        """The phrases of the call's playbooks, to bias recognition toward them."""
        if not self._settings.hotwords_from_playbook:
            return []
        phrases: list[str] = []
        try:
            for playbook in list(playbook_ids) or ["default"]:
                token = ""
                while len(phrases) < MAX_HOTWORDS:
                    page = await self._downstream.detector.ListKeywords(
                        detector_pb.ListKeywordsRequest(
                            playbook_id=playbook, page_size=100, page_token=token
                        ),
                        timeout=2,
                    )
                    phrases += [k.phrase for k in page.keywords]
                    token = page.next_page_token
                    if not token:
                        break
        except grpc.aio.AioRpcError as error:
            log.warning("no hotwords: the detector did not list keywords", code=error.code().name)
        return list(dict.fromkeys(phrases))[:MAX_HOTWORDS]

    # Recordings ---------------------------------------------------------------

    async def UploadRecording(
        self, request_iterator: AsyncIterator[pb.UploadRecordingRequest], context: Context
    ) -> pb.UploadRecordingResponse:
        upload = await receive_upload(
            request_iterator, self._settings.max_upload_bytes, "recording"
        )
        config, data = upload.config, upload.data
        if not data:
            raise errors.invalid_argument("data", "the recording is empty")
        session = await self._store.create(auth.tenant_id(), pb.SESSION_SOURCE_UPLOAD, config)
        self._running.add(session.session_id)
        structlog.contextvars.bind_contextvars(session_id=session.session_id)
        call = CallSession(session.session_id, config.playbook_ids, self._downstream, self._store)
        await call.start(f"processing {config.filename or 'the recording'}")
        task = asyncio.create_task(self._process_recording(call, config, data))
        self._uploads.add(task)
        task.add_done_callback(self._uploads.discard)
        log.info("recording accepted", bytes=len(data), filename=config.filename)
        return pb.UploadRecordingResponse(session=session)

    async def _process_recording(
        self, call: CallSession, config: pb.RecordingConfig, data: bytes
    ) -> None:
        file_config = transcriber_pb.FileConfig(
            filename=config.filename,
            content_type=config.content_type,
            channel_roles=config.channel_roles,
            language_code=config.language_code,
            session_id=call.session_id,
        )

        async def requests() -> AsyncIterator[transcriber_pb.TranscribeFileRequest]:
            yield transcriber_pb.TranscribeFileRequest(config=file_config)
            for start in range(0, len(data), _UPLOAD_CHUNK):
                yield transcriber_pb.TranscribeFileRequest(data=data[start : start + _UPLOAD_CHUNK])

        async def transcribe() -> tuple[call_pb2.CallStatus, float]:
            seconds, reported = 0.0, -1.0
            try:
                async for response in self._downstream.transcriber.TranscribeFile(requests()):
                    if response.HasField("segment"):
                        call.add_segment(response.segment)
                        continue
                    progress = response.progress
                    seconds = progress.total.ToNanoseconds() / 1e9
                    if progress.percent - reported >= 5 or progress.percent == 100:
                        reported = progress.percent
                        call.add_status(
                            call_pb2.CallStatus(
                                state=call_pb2.CALL_STATE_ACTIVE,
                                message="processing",
                                progress_percent=progress.percent,
                            )
                        )
            except grpc.aio.AioRpcError as error:
                message = _downstream_failure("transcriber", error)
                return call_pb2.CallStatus(
                    state=call_pb2.CALL_STATE_FAILED, message=message
                ), seconds
            done = call_pb2.CallStatus(
                state=call_pb2.CALL_STATE_ENDED,
                message="recording processed",
                progress_percent=100,
                audio_received=duration(seconds),
            )
            return done, seconds

        async def run() -> tuple[call_pb2.CallStatus, float]:
            status, seconds = await transcribe()
            await call.finish(status)
            return status, seconds

        runner = asyncio.create_task(run())
        try:
            async for _ in call.events():
                pass
            status, seconds = await runner
            await self._keep_writing(
                call.writer.finish(status.state, seconds, _error(status.state, status.message))
            )
            CALLS.labels("upload", call_pb2.CallState.Name(status.state)).inc()
            log.info("recording processed", state=call_pb2.CallState.Name(status.state))
        except Exception:
            log.exception("recording processing crashed")
            await self._keep_writing(
                call.writer.finish(call_pb2.CALL_STATE_FAILED, 0.0, "internal error")
            )
        finally:
            runner.cancel()
            self._running.discard(call.session_id)
            await call.close("processing was interrupted")

    async def keep_leases(self) -> None:
        """Renews the leases of this replica's sessions, and fails sessions whose replica
        died (any replica may: the update is idempotent)."""
        while True:
            await asyncio.sleep(self._store.renew_seconds)
            try:
                if self._running:
                    await self._store.renew(list(self._running))
                if abandoned := await self._store.fail_abandoned():
                    log.warning("failed sessions abandoned by a stopped gateway", count=abandoned)
            except psycopg.Error as error:
                log.warning("session leases not renewed", error=str(error))

    async def _keep_writing(self, writing: asyncio.Task[None]) -> None:
        """Waits a little for a session's last writes; if the database is away they go on
        after the RPC, until it is back or the replica stops."""
        self._writing.add(writing)
        writing.add_done_callback(self._writing.discard)
        await asyncio.wait([writing], timeout=PATIENCE_SECONDS)

    async def drain(self) -> None:
        """Lets uploads being processed finish and sessions be stored (or be cancelled on a
        second signal)."""
        if self._uploads:
            log.info("waiting for recordings in progress", count=len(self._uploads))
            await asyncio.gather(*self._uploads, return_exceptions=True)
        if self._writing:
            log.info("waiting for sessions to be stored", count=len(self._writing))
            await asyncio.gather(*self._writing, return_exceptions=True)

    # Sessions -----------------------------------------------------------------

    async def GetSession(
        self, request: pb.GetSessionRequest, context: Context
    ) -> pb.GetSessionResponse:
        session = await self._store.get(auth.tenant_id(), request.session_id)
        return pb.GetSessionResponse(session=session)

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: Context
    ) -> pb.ListSessionsResponse:
        sessions, token = await self._store.page(
            auth.tenant_id(), request.state, request.page_size, request.page_token
        )
        return pb.ListSessionsResponse(sessions=sessions, next_page_token=token)

    async def GetTranscript(
        self, request: pb.GetTranscriptRequest, context: Context
    ) -> pb.GetTranscriptResponse:
        segments, detections = await self._store.transcript(auth.tenant_id(), request.session_id)
        return pb.GetTranscriptResponse(segments=segments, detections=detections)

    async def ExportTranscript(
        self, request: pb.ExportTranscriptRequest, context: Context
    ) -> pb.ExportTranscriptResponse:
        if request.format not in pb.TranscriptFormat.values():
            raise errors.invalid_argument("format", f"unknown format {request.format}")
        transcript_format = request.format or pb.TRANSCRIPT_FORMAT_WEBVTT
        segments, detections = await self._store.transcript(auth.tenant_id(), request.session_id)
        if transcript_format == pb.TRANSCRIPT_FORMAT_SRT:
            text = exports.srt(segments)
        elif transcript_format == pb.TRANSCRIPT_FORMAT_WEBVTT:
            text = exports.webvtt(segments)
        else:
            session = await self._store.get(auth.tenant_id(), request.session_id)
            text = exports.as_json(session, segments, detections)
        content_type, extension = exports.FORMATS[transcript_format]
        return pb.ExportTranscriptResponse(
            content=text.encode(),
            content_type=content_type,
            filename=f"{request.session_id}.{extension}",
        )

    async def GetCallSummary(
        self, request: pb.GetCallSummaryRequest, context: Context
    ) -> pb.GetCallSummaryResponse:
        session = await self._store.get(auth.tenant_id(), request.session_id)
        segments, detections = await self._store.transcript(auth.tenant_id(), request.session_id)
        return pb.GetCallSummaryResponse(summary=summarise(session, segments, detections))


async def _pump(intake: _AudioIntake, buffer: CallAudio) -> None:
    async for chunk in intake:
        await buffer.append(chunk)
    await buffer.close()


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


def _error(state: call_pb2.CallState.ValueType, message: str) -> str:
    return message if state == call_pb2.CALL_STATE_FAILED else ""


def _downstream_failure(service: str, error: grpc.aio.AioRpcError) -> str:
    return f"{service} failed: {error.code().name}: {error.details()}"
