"""Playbook files (YAML) loaded into the detector through its admin RPCs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml

from callcue.call.v1 import call_pb2
from callcue.detector.v1 import detector_service_pb2 as pb
from callcue.detector.v1 import detector_service_pb2_grpc as pb_grpc

_SPEAKERS = {
    "anyone": call_pb2.SPEAKER_ROLE_UNSPECIFIED,
    "rep": call_pb2.SPEAKER_ROLE_REP,
    "prospect": call_pb2.SPEAKER_ROLE_PROSPECT,
}


class PlaybookError(ValueError):
    pass


@dataclass(frozen=True)
class LoadResult:
    created: int
    kept: int


def parse(path: Path) -> tuple[str, list[pb.Keyword]]:
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise PlaybookError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keywords"), list):
        raise PlaybookError(f"{path}: expected 'playbook: NAME' and a 'keywords:' list")
    playbook = str(document.get("playbook") or "default")
    return playbook, [
        _keyword(playbook, entry, index, path) for index, entry in enumerate(document["keywords"])
    ]


def _keyword(playbook: str, entry: Any, index: int, path: Path) -> pb.Keyword:
    where = f"{path}: keywords[{index}]"
    if not isinstance(entry, dict) or "phrase" not in entry:
        raise PlaybookError(f"{where}: needs a 'phrase'")
    point = entry.get("talking_point") or {}
    category = str(point.get("category", "other")).upper()
    speaker = str(entry.get("speaker", "anyone")).lower()
    if speaker not in _SPEAKERS:
        raise PlaybookError(f"{where}.speaker: one of {', '.join(_SPEAKERS)}")
    try:
        category_value = call_pb2.TalkingPointCategory.Value(f"TALKING_POINT_CATEGORY_{category}")
    except ValueError:
        raise PlaybookError(
            f"{where}.talking_point.category: unknown category {category.lower()!r}"
        ) from None
    return pb.Keyword(
        playbook_id=playbook,
        phrase=str(entry["phrase"]),
        aliases=[str(alias) for alias in entry.get("aliases") or []],
        speaker=_SPEAKERS[speaker],
        talking_point=call_pb2.TalkingPoint(
            title=str(point.get("title", "")),
            body=str(point.get("body", "")),
            links=[str(link) for link in point.get("links") or []],
            category=category_value,
            priority=int(point.get("priority", 0)),
        ),
    )


async def load(
    detector: pb_grpc.DetectorServiceAsyncStub, keywords: list[pb.Keyword]
) -> LoadResult:
    """Creates each keyword; one already there (same phrase in the playbook) is kept."""
    created = kept = 0
    for keyword in keywords:
        try:
            await detector.CreateKeyword(pb.CreateKeywordRequest(keyword=keyword))
            created += 1
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
            kept += 1
    return LoadResult(created, kept)
