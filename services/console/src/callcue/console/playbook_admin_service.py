"""PlaybookAdminService: playbooks and keywords for admins, through the detector, which
pushes every change to running calls itself."""

from __future__ import annotations

from collections.abc import Sequence

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from callcue.console.access import Context, Gatekeeper
from callcue.console.backend import Backend, passed_on
from callcue.console.people import Role
from callcue.console.v1 import console_service_pb2 as pb
from callcue.core.pagination import every_page
from callcue.core.service_keys import Metadata
from callcue.detector.v1 import detector_service_pb2 as detector_pb

MAX_KEYWORDS_LISTED = 5000


class PlaybookAdminService:
    def __init__(self, backend: Backend, gatekeeper: Gatekeeper) -> None:
        self._backend = backend
        self._gatekeeper = gatekeeper

    async def _auth(self, ctx: Context) -> Metadata:
        person = await self._gatekeeper.person(ctx.request_headers(), at_least=Role.ADMIN)
        return await self._backend.keys.metadata(person.tenant_id)

    async def list_playbooks(
        self, request: pb.ListPlaybooksRequest, ctx: Context
    ) -> pb.ListPlaybooksResponse:
        auth = await self._auth(ctx)

        async def fetch(token: str) -> tuple[Sequence[detector_pb.Playbook], str]:
            page = await self._backend.detector.ListPlaybooks(
                detector_pb.ListPlaybooksRequest(page_size=1000, page_token=token),
                metadata=auth,
            )
            return page.playbooks, page.next_page_token

        with passed_on():
            return pb.ListPlaybooksResponse(playbooks=await every_page(fetch))

    async def list_keywords(
        self, request: pb.ListKeywordsRequest, ctx: Context
    ) -> pb.ListKeywordsResponse:
        auth = await self._auth(ctx)

        async def fetch(token: str) -> tuple[Sequence[detector_pb.Keyword], str]:
            page = await self._backend.detector.ListKeywords(
                detector_pb.ListKeywordsRequest(
                    page_size=1000,
                    page_token=token,
                    playbook_id=request.playbook_id,
                    query=request.text,
                ),
                metadata=auth,
            )
            return page.keywords, page.next_page_token

        with passed_on():
            found = await every_page(fetch, limit=MAX_KEYWORDS_LISTED)
        return pb.ListKeywordsResponse(keywords=found)

    async def create_keyword(
        self, request: pb.CreateKeywordRequest, ctx: Context
    ) -> pb.CreateKeywordResponse:
        auth = await self._auth(ctx)
        with passed_on():
            created = await self._backend.detector.CreateKeyword(
                detector_pb.CreateKeywordRequest(keyword=request.keyword), metadata=auth
            )
        return pb.CreateKeywordResponse(keyword=created.keyword)

    async def update_keyword(
        self, request: pb.UpdateKeywordRequest, ctx: Context
    ) -> pb.UpdateKeywordResponse:
        auth = await self._auth(ctx)
        with passed_on():
            updated = await self._backend.detector.UpdateKeyword(
                detector_pb.UpdateKeywordRequest(keyword=request.keyword), metadata=auth
            )
        return pb.UpdateKeywordResponse(keyword=updated.keyword)

    async def delete_keyword(
        self, request: pb.DeleteKeywordRequest, ctx: Context
    ) -> pb.DeleteKeywordResponse:
        auth = await self._auth(ctx)
        with passed_on():
            await self._backend.detector.DeleteKeyword(
                detector_pb.DeleteKeywordRequest(keyword_id=request.keyword_id), metadata=auth
            )
        return pb.DeleteKeywordResponse()

    async def import_playbook(
        self, request: pb.ImportPlaybookRequest, ctx: Context
    ) -> pb.ImportPlaybookResponse:
        auth = await self._auth(ctx)
        with passed_on():
            imported = await self._backend.detector.ImportPlaybook(
                detector_pb.ImportPlaybookRequest(
                    content=request.content, format=request.format, replace=request.replace
                ),
                metadata=auth,
            )
        return pb.ImportPlaybookResponse(
            playbook=imported.playbook,
            keywords_created=imported.keywords_created,
            keywords_deleted=imported.keywords_deleted,
        )

    async def export_playbook(
        self, request: pb.ExportPlaybookRequest, ctx: Context
    ) -> pb.ExportPlaybookResponse:
        auth = await self._auth(ctx)
        with passed_on():
            exported = await self._backend.detector.ExportPlaybook(
                detector_pb.ExportPlaybookRequest(
                    playbook_id=request.playbook_id, format=request.format
                ),
                metadata=auth,
            )
        extension = "json" if exported.content_type == "application/json" else "yaml"
        return pb.ExportPlaybookResponse(
            content=exported.content,
            content_type=exported.content_type,
            filename=f"{request.playbook_id}.{extension}",
        )

    async def try_playbook(
        self, request: pb.TryPlaybookRequest, ctx: Context
    ) -> pb.TryPlaybookResponse:
        auth = await self._auth(ctx)
        if not request.text.split():
            raise ConnectError(Code.INVALID_ARGUMENT, "type a sentence to try")
        with passed_on():
            tested = await self._backend.detector.TestPlaybook(
                detector_pb.TestPlaybookRequest(
                    playbook_id=request.playbook_id, text=request.text, speaker=request.speaker
                ),
                metadata=auth,
            )
        return pb.TryPlaybookResponse(detections=tested.detections)
