"""HistoryService: sessions that were, filtered for the person asking, with transcripts."""

from __future__ import annotations

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from callcue.console.access import Context, Gatekeeper, may_see
from callcue.console.backend import Backend, passed_on
from callcue.console.live_service import visible_session
from callcue.console.people import Role
from callcue.console.v1 import console_service_pb2 as pb
from callcue.gateway.v1 import gateway_service_pb2 as gateway_pb

MAX_PAGE = 200
# Sessions read from the gateway for one page at most, so a filter that matches nothing
# answers quickly with a token to go on from.
MAX_SCANNED = 2000


def _matches(request: pb.ListSessionsRequest, session: gateway_pb.Session) -> bool:
    if request.HasField("created_after") and (
        session.create_time.ToDatetime() < request.created_after.ToDatetime()
    ):
        return False
    if request.HasField("created_before") and (
        session.create_time.ToDatetime() >= request.created_before.ToDatetime()
    ):
        return False
    if request.text:
        haystack = " ".join([session.title, session.session_id, *session.metadata.values()]).lower()
        return request.text.lower() in haystack
    return True


class HistoryService:
    def __init__(self, backend: Backend, gatekeeper: Gatekeeper) -> None:
        self._backend = backend
        self._gatekeeper = gatekeeper

    async def list_sessions(
        self, request: pb.ListSessionsRequest, ctx: Context
    ) -> pb.ListSessionsResponse:
        person = await self._gatekeeper.person(ctx.request_headers(), at_least=Role.REP)
        if not 0 <= request.page_size <= MAX_PAGE:
            raise ConnectError(Code.INVALID_ARGUMENT, f"page_size must be 0 to {MAX_PAGE}")
        wanted = request.page_size or 50
        auth = await self._backend.keys.metadata(person.tenant_id)
        found: list[gateway_pb.Session] = []
        token, scanned = request.page_token, 0
        with passed_on():
            while len(found) < wanted and scanned < MAX_SCANNED:
                # Only as many as are still needed: each gateway page is used whole, so
                # its token is exactly where the next console page starts.
                page = await self._backend.gateway.ListSessions(
                    gateway_pb.ListSessionsRequest(
                        page_size=wanted - len(found), page_token=token, state=request.state
                    ),
                    metadata=auth,
                )
                scanned += len(page.sessions)
                found.extend(
                    session
                    for session in page.sessions
                    if may_see(person, session.metadata) and _matches(request, session)
                )
                token = page.next_page_token
                if not token:
                    break
        return pb.ListSessionsResponse(sessions=found, next_page_token=token)

    async def get_session_detail(
        self, request: pb.GetSessionDetailRequest, ctx: Context
    ) -> pb.GetSessionDetailResponse:
        person = await self._gatekeeper.person(ctx.request_headers(), at_least=Role.REP)
        auth = await self._backend.keys.metadata(person.tenant_id)
        session = await visible_session(self._backend, auth, person, request.session_id)
        with passed_on():
            transcript = await self._backend.gateway.GetTranscript(
                gateway_pb.GetTranscriptRequest(session_id=session.session_id), metadata=auth
            )
            summary = await self._backend.gateway.GetCallSummary(
                gateway_pb.GetCallSummaryRequest(session_id=session.session_id), metadata=auth
            )
        return pb.GetSessionDetailResponse(
            session=session, segments=transcript.segments, summary=summary.summary
        )

    async def export_transcript(
        self, request: pb.ExportTranscriptRequest, ctx: Context
    ) -> pb.ExportTranscriptResponse:
        person = await self._gatekeeper.person(ctx.request_headers(), at_least=Role.REP)
        auth = await self._backend.keys.metadata(person.tenant_id)
        session = await visible_session(self._backend, auth, person, request.session_id)
        with passed_on():
            exported = await self._backend.gateway.ExportTranscript(
                gateway_pb.ExportTranscriptRequest(
                    session_id=session.session_id, format=request.format
                ),
                metadata=auth,
            )
        return pb.ExportTranscriptResponse(
            content=exported.content,
            content_type=exported.content_type,
            filename=exported.filename,
        )
