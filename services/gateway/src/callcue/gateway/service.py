"""The GatewayService: live calls and recordings (each in a module of its own), and the
reads of their sessions."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import structlog

from callcue.core import auth, errors
from callcue.core.server import Context
from callcue.gateway import exports, redaction_policy
from callcue.gateway.call_session import Downstream
from callcue.gateway.live_call import LiveCalls
from callcue.gateway.recording import Recordings
from callcue.gateway.redaction_policy import PolicyStore
from callcue.gateway.running import Gateway, RunningSessions
from callcue.gateway.session_store import SessionStore
from callcue.gateway.settings import Settings
from callcue.gateway.summary import summarise
from callcue.gateway.v1 import gateway_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

log = structlog.get_logger("callcue.gateway")


class GatewayService(pb_grpc.GatewayServiceServicer):
    def __init__(
        self,
        downstream: Downstream,
        store: SessionStore,
        settings: Settings,
        policies: PolicyStore,
    ) -> None:
        self._store = store
        self._policies = policies
        self.sessions = RunningSessions(store)
        gateway = Gateway(downstream, store, settings, self.sessions, policies)
        self._live = LiveCalls(gateway)
        self._recordings = Recordings(gateway)

    async def StreamCall(
        self, request_iterator: AsyncIterator[pb.StreamCallRequest], context: Context
    ) -> AsyncIterator[pb.StreamCallResponse]:
        # Closed explicitly, so the call's own clean-up runs when the caller goes away.
        async with contextlib.aclosing(self._live.stream(request_iterator)) as responses:
            async for response in responses:
                yield response

    async def UploadRecording(
        self, request_iterator: AsyncIterator[pb.UploadRecordingRequest], context: Context
    ) -> pb.UploadRecordingResponse:
        return await self._recordings.upload(request_iterator)

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

    async def GetRedactionPolicy(
        self, request: pb.GetRedactionPolicyRequest, context: Context
    ) -> pb.GetRedactionPolicyResponse:
        policy = await self._policies.get(auth.tenant_id())
        return pb.GetRedactionPolicyResponse(policy=redaction_policy.to_proto(policy))

    async def UpdateRedactionPolicy(
        self, request: pb.UpdateRedactionPolicyRequest, context: Context
    ) -> pb.UpdateRedactionPolicyResponse:
        changes = redaction_policy.changes_from(request.rules)
        policy = await self._policies.update(auth.tenant_id(), changes)
        log.info(
            "redaction policy changed",
            changes={kind.value: action.value for kind, action in changes.items()},
        )
        return pb.UpdateRedactionPolicyResponse(policy=redaction_policy.to_proto(policy))
