"""Playbook files (YAML or JSON) sent to the detector, which validates them whole."""

from __future__ import annotations

import asyncio
from pathlib import Path

from callcue.detector.v1 import detector_service_pb2 as pb
from callcue.detector.v1 import detector_service_pb2_grpc as pb_grpc


def file_format(path: Path) -> pb.PlaybookFormat.ValueType:
    return pb.PLAYBOOK_FORMAT_JSON if path.suffix.lower() == ".json" else pb.PLAYBOOK_FORMAT_YAML


async def import_file(
    detector: pb_grpc.DetectorServiceAsyncStub, path: Path, *, replace: bool
) -> pb.ImportPlaybookResponse:
    """Creates the playbook in ``path`` (or, with ``replace``, replaces it): all or nothing."""
    content = await asyncio.to_thread(path.read_bytes)
    request = pb.ImportPlaybookRequest(content=content, format=file_format(path), replace=replace)
    response: pb.ImportPlaybookResponse = await detector.ImportPlaybook(request)
    return response
