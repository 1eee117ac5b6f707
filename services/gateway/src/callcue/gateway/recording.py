"""Uploaded recordings: the file to the transcriber's file path, processed after the RPC
returns, its events to subscribers like a live call's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import structlog

from callcue.call.v1 import call_pb2
from callcue.core import auth, errors
from callcue.core.config_first import receive_upload
from callcue.core.durations import duration
from callcue.gateway.call_session import CallSession
from callcue.gateway.running import CALLS, Gateway, downstream_failure, error_text
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.transcriber.v1 import transcriber_service_pb2 as transcriber_pb

log = structlog.get_logger("callcue.gateway")

_UPLOAD_CHUNK = 64 * 1024


class Recordings:
    def __init__(self, gateway: Gateway) -> None:
        self._downstream = gateway.downstream
        self._store = gateway.store
        self._policies = gateway.policies
        self._settings = gateway.settings
        self._sessions = gateway.sessions

    async def upload(
        self, request_iterator: AsyncIterator[pb.UploadRecordingRequest]
    ) -> pb.UploadRecordingResponse:
        upload = await receive_upload(
            request_iterator, self._settings.max_upload_bytes, "recording"
        )
        config, data = upload.config, upload.data
        if not data:
            raise errors.invalid_argument("data", "the recording is empty")
        session = await self._store.create(auth.tenant_id(), pb.SESSION_SOURCE_UPLOAD, config)
        self._sessions.add(session.session_id)
        structlog.contextvars.bind_contextvars(session_id=session.session_id)
        call = CallSession(
            session.session_id,
            config.playbook_ids,
            self._downstream,
            self._store,
            policy=await self._policies.get(auth.tenant_id()),
        )
        await call.start(f"processing {config.filename or 'the recording'}")
        self._sessions.process(asyncio.create_task(self._process(call, config, data)))
        log.info("recording accepted", bytes=len(data), filename=config.filename)
        return pb.UploadRecordingResponse(session=session)

    async def _process(self, call: CallSession, config: pb.RecordingConfig, data: bytes) -> None:
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
                message = downstream_failure("transcriber", error)
                return call_pb2.CallStatus(
                    state=call_pb2.CALL_STATE_FAILED,
                    message=message,
                    audio_received=duration(seconds),
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
            await self._sessions.keep_writing(
                call.writer.finish(status.state, seconds, error_text(status.state, status.message))
            )
            CALLS.labels("upload", call_pb2.CallState.Name(status.state)).inc()
            log.info("recording processed", state=call_pb2.CallState.Name(status.state))
        except Exception:
            log.exception("recording processing crashed")
            await self._sessions.keep_writing(
                call.writer.finish(call_pb2.CALL_STATE_FAILED, 0.0, "internal error")
            )
        finally:
            runner.cancel()
            self._sessions.discard(call.session_id)
            await call.close("processing was interrupted")
