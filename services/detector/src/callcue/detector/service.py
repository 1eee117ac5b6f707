"""The DetectorService: per-call detection streams and keyword administration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import structlog
from google.protobuf import field_mask_pb2

from callcue.core import errors
from callcue.core.server import Context
from callcue.detector.keywords import DEFAULT_PLAYBOOK
from callcue.detector.matcher import PhraseMatcher, Token
from callcue.detector.v1 import detector_service_pb2 as pb
from callcue.detector.v1 import detector_service_pb2_grpc as pb_grpc

log = structlog.get_logger("callcue.detector")


class Keywords(Protocol):
    async def create(self, keyword: pb.Keyword) -> pb.Keyword: ...
    async def get(self, keyword_id: str) -> pb.Keyword: ...
    async def page(
        self, playbook_id: str = "", page_size: int = 100, page_token: str = ""
    ) -> tuple[list[pb.Keyword], str]: ...
    async def for_playbooks(self, playbook_ids: list[str]) -> list[pb.Keyword]: ...
    async def update(self, keyword: pb.Keyword, mask: field_mask_pb2.FieldMask) -> pb.Keyword: ...
    async def delete(self, keyword_id: str) -> None: ...


class DetectorService(pb_grpc.DetectorServiceServicer):
    def __init__(self, keywords: Keywords) -> None:
        self._keywords = keywords

    async def Detect(
        self, request_iterator: AsyncIterator[pb.DetectRequest], context: Context
    ) -> AsyncIterator[pb.DetectResponse]:
        matcher: PhraseMatcher | None = None
        # Per channel, the end of its last final segment, for phrases split across two.
        carried: dict[int, list[Token]] = {}
        async for request in request_iterator:
            kind = request.WhichOneof("request")
            if kind == "config":
                if matcher is not None:
                    raise errors.invalid_argument("config", "send the config once, first")
                config = request.config
                structlog.contextvars.bind_contextvars(session_id=config.session_id)
                playbooks = list(config.playbook_ids) or [DEFAULT_PLAYBOOK]
                matcher = PhraseMatcher(await self._keywords.for_playbooks(playbooks))
                log.info("detecting", playbooks=playbooks, triggers=len(matcher))
            elif kind == "segment":
                if matcher is None:
                    raise errors.invalid_argument(
                        "segment", "the first message must be the config; send it before segments"
                    )
                # Partials are shown but not acted on: one spoken mention, one detection.
                segment = request.segment
                if not segment.is_final:
                    continue
                detections = matcher.detect(segment, carried.get(segment.channel, ()))
                carried[segment.channel] = matcher.tail(segment)
                for detection in detections:
                    log.info(
                        "keyword detected",
                        phrase=detection.phrase,
                        keyword_id=detection.keyword_id,
                        segment_id=detection.segment_id,
                    )
                    yield pb.DetectResponse(detection=detection)
            else:
                raise errors.invalid_argument("request", "must carry a config or a segment")

    async def CreateKeyword(
        self, request: pb.CreateKeywordRequest, context: Context
    ) -> pb.CreateKeywordResponse:
        keyword = await self._keywords.create(request.keyword)
        log.info("keyword created", keyword_id=keyword.keyword_id, phrase=keyword.phrase)
        return pb.CreateKeywordResponse(keyword=keyword)

    async def GetKeyword(
        self, request: pb.GetKeywordRequest, context: Context
    ) -> pb.GetKeywordResponse:
        return pb.GetKeywordResponse(keyword=await self._keywords.get(request.keyword_id))

    async def ListKeywords(
        self, request: pb.ListKeywordsRequest, context: Context
    ) -> pb.ListKeywordsResponse:
        keywords, next_token = await self._keywords.page(
            request.playbook_id, request.page_size, request.page_token
        )
        return pb.ListKeywordsResponse(keywords=keywords, next_page_token=next_token)

    async def UpdateKeyword(
        self, request: pb.UpdateKeywordRequest, context: Context
    ) -> pb.UpdateKeywordResponse:
        keyword = await self._keywords.update(request.keyword, request.update_mask)
        log.info("keyword updated", keyword_id=keyword.keyword_id)
        return pb.UpdateKeywordResponse(keyword=keyword)

    async def DeleteKeyword(
        self, request: pb.DeleteKeywordRequest, context: Context
    ) -> pb.DeleteKeywordResponse:
        await self._keywords.delete(request.keyword_id)
        log.info("keyword deleted", keyword_id=request.keyword_id)
        return pb.DeleteKeywordResponse()
