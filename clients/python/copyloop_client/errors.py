"""The errors every SDK call raises instead of grpc.RpcError.

The services send google.rpc.Status with typed details (BadRequest, ResourceInfo, RetryInfo,
PreconditionFailure, RequestInfo); callers should not have to unpack protobuf Any messages to
learn which field was wrong or when to come back, so each status code becomes a class with the
details as plain attributes.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "AlreadyExistsError",
    "CancelledError",
    "CopyloopError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "error_from_rpc",
]

REQUEST_ID_KEY = "x-request-id"


class CopyloopError(Exception):
    """Base of every SDK error: the status code, the server's message, the request id (quote it
    when asking the platform's operators) and the raw google.rpc.Status when one was sent."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        request_id: str = "",
        status: status_pb2.Status | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.status = status

    def __str__(self) -> str:
        text = " ".join(self.message.split())  # one line, whatever the transport sent
        return f"{self.code.name}: {text}" if text else self.code.name

    def detail(self, message_type: type[Message]) -> Any | None:
        """The first detail of this type in the status, unpacked; None if absent."""
        return _detail(self.status, message_type)


class InvalidArgumentError(CopyloopError):
    """The request was rejected; `field_violations` maps each bad field path (e.g.
    `events[3].event_time`) to what is wrong with it."""

    def __init__(self, code: grpc.StatusCode, message: str, **kw: Any) -> None:
        super().__init__(code, message, **kw)
        bad = self.detail(error_details_pb2.BadRequest)
        self.field_violations: dict[str, str] = (
            {v.field: v.description for v in bad.field_violations} if bad else {}
        )


class NotFoundError(CopyloopError):
    """`resource_type` / `resource_name` say what was missing (from ResourceInfo)."""

    def __init__(self, code: grpc.StatusCode, message: str, **kw: Any) -> None:
        super().__init__(code, message, **kw)
        info = self.detail(error_details_pb2.ResourceInfo)
        self.resource_type: str = info.resource_type if info else ""
        self.resource_name: str = info.resource_name if info else ""


class AlreadyExistsError(NotFoundError):
    """Same resource details as NotFoundError: the thing that is already there."""


class FailedPreconditionError(CopyloopError):
    """The system is not in a state to do this yet; `violations` are (type, subject,
    description) triples from PreconditionFailure."""

    def __init__(self, code: grpc.StatusCode, message: str, **kw: Any) -> None:
        super().__init__(code, message, **kw)
        failure = self.detail(error_details_pb2.PreconditionFailure)
        self.violations: list[tuple[str, str, str]] = (
            [(v.type, v.subject, v.description) for v in failure.violations] if failure else []
        )


class UnavailableError(CopyloopError):
    """Raised after the channel's retries were used up. `retry_after_s` is the server's
    RetryInfo hint, or None when the service could not be reached at all."""

    def __init__(self, code: grpc.StatusCode, message: str, **kw: Any) -> None:
        super().__init__(code, message, **kw)
        info = self.detail(error_details_pb2.RetryInfo)
        self.retry_after_s: float | None = (
            info.retry_delay.seconds + info.retry_delay.nanos / 1e9 if info else None
        )


class UnauthenticatedError(CopyloopError):
    """Missing or unknown API key."""


class PermissionDeniedError(CopyloopError):
    pass


class DeadlineExceededError(CopyloopError):
    """The call's deadline (the client default or the `timeout` passed) ran out."""


class ResourceExhaustedError(CopyloopError):
    pass


class InternalError(CopyloopError):
    """An unexpected server failure; the server logged it under `request_id`."""


class CancelledError(CopyloopError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[CopyloopError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
    grpc.StatusCode.CANCELLED: CancelledError,
}


def error_from_rpc(error: grpc.RpcError) -> CopyloopError:
    """The SDK error for a failed call (sync grpc.RpcError or grpc.aio.AioRpcError)."""
    code: grpc.StatusCode = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message: str = (error.details() if hasattr(error, "details") else "") or ""
    status: status_pb2.Status | None = None
    try:
        status = rpc_status.from_call(error)
    except (ValueError, AttributeError):
        status = None  # details that disagree with the code, or no trailers at all
    if status is not None and status.message:
        message = status.message
    request_id = ""
    info = _detail(status, error_details_pb2.RequestInfo)
    if info is not None:
        request_id = info.request_id
    else:
        request_id = _trailing(error, REQUEST_ID_KEY)
    cls = _BY_CODE.get(code, CopyloopError)
    return cls(code, message, request_id=request_id, status=status)


def _detail(status: status_pb2.Status | None, message_type: type[Message]) -> Any | None:
    if status is None:
        return None
    for packed in status.details:
        if packed.Is(message_type.DESCRIPTOR):
            out = message_type()
            packed.Unpack(out)
            return out
    return None


def _trailing(error: grpc.RpcError, key: str) -> str:
    try:
        trailers = error.trailing_metadata() or ()
    except Exception:
        return ""
    for k, v in trailers:
        if k == key:
            return v if isinstance(v, str) else v.decode()
    return ""
