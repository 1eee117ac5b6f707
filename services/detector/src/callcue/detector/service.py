"""The detector's two services: detection streams of live calls (internal, for the gateway)
and playbook administration (public)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import prometheus_client
import structlog
from google.protobuf import field_mask_pb2

from callcue.call.v1 import call_pb2
from callcue.core import auth, durations, errors
from callcue.core.server import Context
from callcue.core.text_fields import reject_nul
from callcue.detector import playbook_file
from callcue.detector.keywords import DEFAULT_PLAYBOOK, KeywordFilter
from callcue.detector.live import LiveMatchers
from callcue.detector.matcher import KeywordMatcher
from callcue.detector.playbooks import ImportResult
from callcue.detector.v1 import detector_service_pb2 as pb
from callcue.detector.v1 import detector_service_pb2_grpc as pb_grpc

log = structlog.get_logger("callcue.detector")

DETECTIONS = prometheus_client.Counter(
    "callcue_detections_total", "Detections sent to calls, by state.", ["state"]
)

_CONTENT_TYPES = {playbook_file.YAML: "application/yaml", playbook_file.JSON: "application/json"}
MAX_IMPORT_BYTES = 8 * 1024 * 1024


class Keywords(Protocol):
    async def create(self, tenant_id: str, keyword: pb.Keyword) -> pb.Keyword: ...
    async def get(self, tenant_id: str, keyword_id: str) -> pb.Keyword: ...
    async def page(
        self, tenant_id: str, where: KeywordFilter, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[pb.Keyword], str]: ...
    async def for_playbooks(
        self, tenant_id: str, playbook_ids: Sequence[str]
    ) -> list[pb.Keyword]: ...
    async def update(
        self, tenant_id: str, keyword: pb.Keyword, mask: field_mask_pb2.FieldMask
    ) -> pb.Keyword: ...
    async def delete(self, tenant_id: str, keyword_id: str) -> None: ...


class Playbooks(Protocol):
    async def create(self, tenant_id: str, playbook: pb.Playbook) -> pb.Playbook: ...
    async def get(self, tenant_id: str, playbook_id: str) -> pb.Playbook: ...
    async def page(
        self, tenant_id: str, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[pb.Playbook], str]: ...
    async def update(
        self, tenant_id: str, playbook: pb.Playbook, mask: field_mask_pb2.FieldMask
    ) -> pb.Playbook: ...
    async def delete(self, tenant_id: str, playbook_id: str, force: bool) -> None: ...
    async def import_file(
        self, tenant_id: str, playbook: pb.Playbook, keywords: list[pb.Keyword], replace: bool
    ) -> ImportResult: ...


class DetectionService(pb_grpc.DetectionServiceServicer):
    def __init__(self, matchers: LiveMatchers) -> None:
        self._matchers = matchers

    async def Detect(
        self, request_iterator: AsyncIterator[pb.DetectRequest], context: Context
    ) -> AsyncIterator[pb.DetectResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        if first.WhichOneof("request") != "config":
            raise errors.invalid_argument(
                "config", "the first message must be the config; send it before segments"
            )
        config = first.config
        reject_nul(config, "config.")
        structlog.contextvars.bind_contextvars(session_id=config.session_id)
        playbooks = list(dict.fromkeys(config.playbook_ids)) or [DEFAULT_PLAYBOOK]
        call = await self._matchers.attach(
            auth.tenant_id(), playbooks, interim=config.interim_results
        )
        log.info("detecting", playbooks=playbooks, keywords=len(call.matcher))
        try:
            yield pb.DetectResponse(vocabulary=pb.CallVocabulary(phrases=vocabulary(call.matcher)))
            async for request in request_iterator:
                kind = request.WhichOneof("request")
                if kind == "config":
                    raise errors.invalid_argument("config", "send the config once, first")
                if kind != "segment":
                    raise errors.invalid_argument("request", "must carry a config or a segment")
                for detection in call.update(request.segment):
                    log.info(
                        "keyword detected",
                        phrase=detection.phrase,
                        keyword_id=detection.keyword_id,
                        state=detection.state,
                        detection_id=detection.detection_id,
                    )
                    DETECTIONS.labels(call_pb2.DetectionState.Name(detection.state)).inc()
                    yield pb.DetectResponse(detection=detection)
            for detection in call.finish():
                DETECTIONS.labels(call_pb2.DetectionState.Name(detection.state)).inc()
                yield pb.DetectResponse(detection=detection)
        finally:
            self._matchers.detach(call)


class PlaybookService(pb_grpc.PlaybookServiceServicer):
    def __init__(self, keywords: Keywords, playbooks: Playbooks, matchers: LiveMatchers) -> None:
        self._keywords = keywords
        self._playbooks = playbooks
        self._matchers = matchers

    async def TestPlaybook(
        self, request: pb.TestPlaybookRequest, context: Context
    ) -> pb.TestPlaybookResponse:
        words = request.text.split()
        if not words:
            raise errors.invalid_argument("text", "say something to test the playbook with")
        if len(request.text) > MAX_TEST_CHARACTERS:
            raise errors.invalid_argument(
                "text", f"test at most {MAX_TEST_CHARACTERS} characters at once"
            )
        call = await self._matchers.attach(
            auth.tenant_id(), [request.playbook_id or DEFAULT_PLAYBOOK], interim=False
        )
        try:
            found = [*call.update(_spoken(request.text, words, request.speaker)), *call.finish()]
        finally:
            self._matchers.detach(call)
        confirmed = [d for d in found if d.state == call_pb2.DETECTION_STATE_CONFIRMED]
        return pb.TestPlaybookResponse(detections=confirmed)

    async def CreatePlaybook(
        self, request: pb.CreatePlaybookRequest, context: Context
    ) -> pb.CreatePlaybookResponse:
        playbook = await self._playbooks.create(auth.tenant_id(), request.playbook)
        log.info("playbook created", playbook_id=playbook.playbook_id)
        return pb.CreatePlaybookResponse(playbook=playbook)

    async def GetPlaybook(
        self, request: pb.GetPlaybookRequest, context: Context
    ) -> pb.GetPlaybookResponse:
        return pb.GetPlaybookResponse(
            playbook=await self._playbooks.get(auth.tenant_id(), request.playbook_id)
        )

    async def ListPlaybooks(
        self, request: pb.ListPlaybooksRequest, context: Context
    ) -> pb.ListPlaybooksResponse:
        playbooks, next_token = await self._playbooks.page(
            auth.tenant_id(), request.page_size, request.page_token
        )
        return pb.ListPlaybooksResponse(playbooks=playbooks, next_page_token=next_token)

    async def UpdatePlaybook(
        self, request: pb.UpdatePlaybookRequest, context: Context
    ) -> pb.UpdatePlaybookResponse:
        playbook = await self._playbooks.update(
            auth.tenant_id(), request.playbook, request.update_mask
        )
        log.info("playbook updated", playbook_id=playbook.playbook_id)
        return pb.UpdatePlaybookResponse(playbook=playbook)

    async def DeletePlaybook(
        self, request: pb.DeletePlaybookRequest, context: Context
    ) -> pb.DeletePlaybookResponse:
        await self._playbooks.delete(auth.tenant_id(), request.playbook_id, request.force)
        log.info("playbook deleted", playbook_id=request.playbook_id)
        return pb.DeletePlaybookResponse()

    async def ImportPlaybook(
        self, request: pb.ImportPlaybookRequest, context: Context
    ) -> pb.ImportPlaybookResponse:
        if len(request.content) > MAX_IMPORT_BYTES:
            raise errors.resource_exhausted(
                "content", f"a playbook file may be at most {MAX_IMPORT_BYTES // 2**20} MiB"
            )
        if request.format not in pb.PlaybookFormat.values():
            raise errors.invalid_argument("format", f"unknown format {request.format}")
        parsed = playbook_file.parse(request.content, request.format or playbook_file.YAML)
        reject_nul(parsed.playbook)
        for index, keyword in enumerate(parsed.keywords):
            reject_nul(keyword, f"keywords[{index}].")
        result = await self._playbooks.import_file(
            auth.tenant_id(), parsed.playbook, parsed.keywords, request.replace
        )
        log.info(
            "playbook imported",
            playbook_id=result.playbook.playbook_id,
            created=result.created,
            deleted=result.deleted,
        )
        return pb.ImportPlaybookResponse(
            playbook=result.playbook,
            keywords_created=result.created,
            keywords_deleted=result.deleted,
        )

    async def ExportPlaybook(
        self, request: pb.ExportPlaybookRequest, context: Context
    ) -> pb.ExportPlaybookResponse:
        if request.format not in pb.PlaybookFormat.values():
            raise errors.invalid_argument("format", f"unknown format {request.format}")
        content_format = request.format or playbook_file.YAML
        playbook = await self._playbooks.get(auth.tenant_id(), request.playbook_id)
        keywords = await self._keywords.for_playbooks(auth.tenant_id(), [playbook.playbook_id])
        return pb.ExportPlaybookResponse(
            content=playbook_file.dump(playbook, keywords, content_format),
            content_type=_CONTENT_TYPES[content_format],
        )

    async def CreateKeyword(
        self, request: pb.CreateKeywordRequest, context: Context
    ) -> pb.CreateKeywordResponse:
        keyword = await self._keywords.create(auth.tenant_id(), request.keyword)
        log.info("keyword created", keyword_id=keyword.keyword_id, name=keyword.display_name)
        return pb.CreateKeywordResponse(keyword=keyword)

    async def GetKeyword(
        self, request: pb.GetKeywordRequest, context: Context
    ) -> pb.GetKeywordResponse:
        return pb.GetKeywordResponse(
            keyword=await self._keywords.get(auth.tenant_id(), request.keyword_id)
        )

    async def ListKeywords(
        self, request: pb.ListKeywordsRequest, context: Context
    ) -> pb.ListKeywordsResponse:
        where = KeywordFilter(request.playbook_id, request.category, request.query)
        keywords, next_token = await self._keywords.page(
            auth.tenant_id(), where, request.page_size, request.page_token
        )
        return pb.ListKeywordsResponse(keywords=keywords, next_page_token=next_token)

    async def UpdateKeyword(
        self, request: pb.UpdateKeywordRequest, context: Context
    ) -> pb.UpdateKeywordResponse:
        keyword = await self._keywords.update(
            auth.tenant_id(), request.keyword, request.update_mask
        )
        log.info("keyword updated", keyword_id=keyword.keyword_id)
        return pb.UpdateKeywordResponse(keyword=keyword)

    async def DeleteKeyword(
        self, request: pb.DeleteKeywordRequest, context: Context
    ) -> pb.DeleteKeywordResponse:
        await self._keywords.delete(auth.tenant_id(), request.keyword_id)
        log.info("keyword deleted", keyword_id=request.keyword_id)
        return pb.DeleteKeywordResponse()


MAX_TEST_CHARACTERS = 2000
# Test text is timed as if spoken at an even pace, for conditions on time in the call.
_TEST_WORD_SECONDS = 0.35


def _spoken(
    text: str, words: list[str], speaker: call_pb2.SpeakerRole.ValueType
) -> call_pb2.TranscriptSegment:
    segment = call_pb2.TranscriptSegment(
        segment_id="test-1", is_final=True, text=text, speaker=speaker
    )
    for index, word in enumerate(words):
        segment.words.add(
            text=word,
            start_offset=durations.duration(index * _TEST_WORD_SECONDS),
            end_offset=durations.duration((index + 1) * _TEST_WORD_SECONDS),
            confidence=1.0,
        )
    segment.start_offset.CopyFrom(durations.duration(0.0))
    segment.end_offset.CopyFrom(durations.duration(len(words) * _TEST_WORD_SECONDS))
    return segment


# Whisper's prompt holds about 220 tokens; the call's own recent words need room too.
MAX_VOCABULARY = 50


def vocabulary(matcher: KeywordMatcher) -> list[str]:
    """The call's hotwords: its keywords' phrases, by priority, each once."""
    ranked = sorted(matcher.keywords, key=lambda k: -k.talking_point.priority)
    phrases = dict.fromkeys(k.phrase for k in ranked if k.phrase.strip())
    return list(phrases)[:MAX_VOCABULARY]
