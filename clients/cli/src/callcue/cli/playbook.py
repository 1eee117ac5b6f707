"""Playbooks and keywords through the detector: whole files (YAML or JSON, validated whole)
and single keywords."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from callcue.call.v1 import call_pb2
from callcue.core.pagination import every_page
from callcue.detector.v1 import detector_service_pb2 as pb
from callcue.detector.v1 import detector_service_pb2_grpc as pb_grpc


def file_format(path: Path) -> pb.PlaybookFormat.ValueType:
    return pb.PLAYBOOK_FORMAT_JSON if path.suffix.lower() == ".json" else pb.PLAYBOOK_FORMAT_YAML


async def import_file(
    detector: pb_grpc.PlaybookServiceAsyncStub, path: Path, *, replace: bool
) -> pb.ImportPlaybookResponse:
    """Creates the playbook in ``path`` (or, with ``replace``, replaces it): all or nothing."""
    content = await asyncio.to_thread(path.read_bytes)
    request = pb.ImportPlaybookRequest(content=content, format=file_format(path), replace=replace)
    response: pb.ImportPlaybookResponse = await detector.ImportPlaybook(request)
    return response


async def export_file(
    detector: pb_grpc.PlaybookServiceAsyncStub, playbook_id: str, file_format: str
) -> bytes:
    request = pb.ExportPlaybookRequest(
        playbook_id=playbook_id,
        format=pb.PLAYBOOK_FORMAT_JSON if file_format == "json" else pb.PLAYBOOK_FORMAT_YAML,
    )
    response: pb.ExportPlaybookResponse = await detector.ExportPlaybook(request)
    return response.content


async def list_playbooks(detector: pb_grpc.PlaybookServiceAsyncStub) -> list[pb.Playbook]:
    async def fetch(token: str) -> tuple[Sequence[pb.Playbook], str]:
        page = await detector.ListPlaybooks(
            pb.ListPlaybooksRequest(page_size=1000, page_token=token)
        )
        return page.playbooks, page.next_page_token

    return await every_page(fetch)


async def list_keywords(
    detector: pb_grpc.PlaybookServiceAsyncStub, playbook_id: str, query: str = ""
) -> list[pb.Keyword]:
    async def fetch(token: str) -> tuple[Sequence[pb.Keyword], str]:
        request = pb.ListKeywordsRequest(
            playbook_id=playbook_id, query=query, page_size=1000, page_token=token
        )
        page = await detector.ListKeywords(request)
        return page.keywords, page.next_page_token

    return await every_page(fetch)


def keyword_line(keyword: pb.Keyword) -> str:
    category = (
        call_pb2.TalkingPointCategory.Name(keyword.talking_point.category)
        .removeprefix("TALKING_POINT_CATEGORY_")
        .lower()
    )
    trigger = keyword.phrase or ", ".join(keyword.patterns) or f"{len(keyword.examples)} examples"
    return (
        f"{keyword.keyword_id}  {keyword.playbook_id:<12} {category:<11} {trigger:<28} "
        f"{keyword.talking_point.title}"
    )
