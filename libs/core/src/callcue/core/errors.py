"""Errors that handlers raise and clients receive as canonical gRPC statuses.

Handlers raise ``RpcError``; the server interceptor turns it into the status with
``google.rpc`` details (BadRequest, ResourceInfo, ...) so clients can act on it.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


class RpcError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, *details: Message) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def to_status(self) -> grpc.Status:
        packed = []
        for detail in self.details:
            holder = any_pb2.Any()
            holder.Pack(detail)
            packed.append(holder)
        proto = status_pb2.Status(
            code=getattr(code_pb2, self.code.name), message=self.message, details=packed
        )
        status: grpc.Status = rpc_status.to_status(proto)
        return status


def invalid_argument(field: str, description: str) -> RpcError:
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
    return RpcError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{field}: {description}",
        error_details_pb2.BadRequest(field_violations=[violation]),
    )


def not_found(resource_type: str, name: str) -> RpcError:
    return RpcError(
        grpc.StatusCode.NOT_FOUND,
        f"{resource_type} {name!r} does not exist",
        error_details_pb2.ResourceInfo(resource_type=resource_type, resource_name=name),
    )


def already_exists(resource_type: str, name: str, description: str) -> RpcError:
    return RpcError(
        grpc.StatusCode.ALREADY_EXISTS,
        description,
        error_details_pb2.ResourceInfo(
            resource_type=resource_type, resource_name=name, description=description
        ),
    )


def resource_exhausted(
    subject: str, description: str, *, retry_after: float | None = None
) -> RpcError:
    """``retry_after``: seconds after which trying again may succeed (a RetryInfo detail),
    for limits that clear by themselves, such as a busy replica."""
    violation = error_details_pb2.QuotaFailure.Violation(subject=subject, description=description)
    details: list[Message] = [error_details_pb2.QuotaFailure(violations=[violation])]
    if retry_after is not None:
        hint = error_details_pb2.RetryInfo()
        hint.retry_delay.FromMilliseconds(round(retry_after * 1000))
        details.append(hint)
    return RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, description, *details)


def received(error: grpc.aio.AioRpcError) -> RpcError:
    """A status received from another service, with its details, to pass on as it is."""
    try:
        proto = rpc_status.from_call(error)
    except ValueError:  # details that do not match the status: pass on the status alone
        proto = None
    details: list[Message] = []
    for holder in proto.details if proto is not None else ():
        for kind in (
            error_details_pb2.RetryInfo,
            error_details_pb2.QuotaFailure,
            error_details_pb2.BadRequest,
            error_details_pb2.ResourceInfo,
        ):
            if holder.Is(kind.DESCRIPTOR):
                detail = kind()
                holder.Unpack(detail)
                details.append(detail)
    return RpcError(error.code(), error.details() or "", *details)


def retry_delay(error: RpcError) -> float | None:
    """The seconds a RetryInfo detail asks the caller to wait, if it has one."""
    for detail in error.details:
        if isinstance(detail, error_details_pb2.RetryInfo):
            return float(detail.retry_delay.ToMilliseconds()) / 1000
    return None


def failed_precondition(description: str) -> RpcError:
    return RpcError(grpc.StatusCode.FAILED_PRECONDITION, description)


def unavailable(description: str) -> RpcError:
    return RpcError(grpc.StatusCode.UNAVAILABLE, description)
