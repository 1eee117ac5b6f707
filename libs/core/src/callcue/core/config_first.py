"""Config-first client streams (``oneof request { Config config = 1; ... }``): the first
message configures the stream, the rest carry audio or a file's bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, Literal, Protocol, TypeVar

import grpc
from google.protobuf.message import Message

from callcue.core import errors
from callcue.core.text_fields import reject_nul

C = TypeVar("C", bound=Message)
C_co = TypeVar("C_co", bound=Message, covariant=True)


class ConfigFirst(Protocol[C_co]):
    """A request with ``oneof request { Config config = 1; ... }``."""

    @property
    def config(self) -> C_co: ...
    def WhichOneof(self, oneof_group: Literal["request"]) -> str | None: ...


# A stream that opens and says nothing holds a handler: it gets this long to send its config.
CONFIG_TIMEOUT_SECONDS = 10.0


async def first_config(
    requests: AsyncIterator[ConfigFirst[C]],
    data: str = "audio",
    patience: float = CONFIG_TIMEOUT_SECONDS,
) -> C | None:
    """The config from the stream's first message; None if the stream closed empty;
    DEADLINE_EXCEEDED if nothing came within ``patience`` seconds."""
    try:
        first = await asyncio.wait_for(anext(aiter(requests), None), patience)
    except TimeoutError:
        raise errors.RpcError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"no config within {patience:g} s of opening the stream; send it first",
        ) from None
    if first is None:
        return None
    if first.WhichOneof("request") != "config":
        raise errors.invalid_argument(
            "config", f"the first message must be the config; {data} came first"
        )
    reject_nul(first.config, "config.")
    return first.config


class UploadRequest(ConfigFirst[C_co], Protocol[C_co]):
    """A request with ``oneof request { Config config = 1; bytes data = 2; }``."""

    @property
    def data(self) -> bytes: ...


class Upload(Generic[C]):
    def __init__(self, config: C, data: bytes) -> None:
        self.config = config
        self.data = data


async def receive_upload(
    requests: AsyncIterator[UploadRequest[C]], max_bytes: int, what: str
) -> Upload[C]:
    """Reads the whole upload: INVALID_ARGUMENT without a leading config, or for data
    before it; RESOURCE_EXHAUSTED as soon as the data passes max_bytes."""
    config: C | None = None
    chunks: list[bytes] = []
    size = 0
    async for request in requests:
        if request.WhichOneof("request") == "config":
            if config is not None:
                raise errors.invalid_argument("config", "send the config once, first")
            config = request.config
            continue
        if config is None:
            raise errors.invalid_argument(
                "config", "the first message must be the config; data came first"
            )
        size += len(request.data)
        if size > max_bytes:
            raise errors.resource_exhausted(
                f"{what} size", f"the {what} exceeds the {max_bytes} byte limit"
            )
        chunks.append(request.data)
    if config is None:
        raise errors.invalid_argument("config", "no config was sent")
    reject_nul(config, "config.")
    return Upload(config, b"".join(chunks))
