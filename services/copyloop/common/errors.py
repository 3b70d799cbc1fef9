"""Domain errors and their mapping to rich google.rpc.Status replies.

Services raise these from domain logic (which knows nothing of gRPC); the shared interceptor
turns them into a status with details, so every service reports errors the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "copyloop.v1"

# Error details travel in the grpc-status-details-bin trailer (base64), and clients reject
# trailers over their metadata limit (8-16 KB) as RESOURCE_EXHAUSTED: a reply lists at most
# this many field violations, each text cut to MAX_DETAIL_CHARS, and the whole status stays
# under MAX_STATUS_BYTES serialised.
MAX_VIOLATIONS = 50
MAX_DETAIL_CHARS = 200
MAX_MESSAGE_CHARS = 1000
MAX_STATUS_BYTES = 4096


def truncate(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: `field` is a path like `events[3].event_time`."""

    field: str
    description: str


class ServiceError(Exception):
    """Base of all errors that reach the client with a chosen status code."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        """Detail messages packed into the status; subclasses add their own."""
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN)
        return [_pack(info)]

    def to_status(self, request_id: str = "") -> status_pb2.Status:
        details = self.details()
        if request_id:
            details.append(_pack(error_details_pb2.RequestInfo(request_id=request_id)))
        status = status_pb2.Status(
            code=_CODE_NUMBERS[self.code],
            message=truncate(self.message, MAX_MESSAGE_CHARS),
            details=details,
        )
        return _fit(status)


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation], message: str = "") -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one field violation")
        summary = "; ".join(
            f"{truncate(v.field, 80)}: {truncate(v.description, 80)}" for v in violations[:5]
        )
        if len(violations) > 5:
            summary += f"; and {len(violations) - 5} more"
        super().__init__(message or f"invalid request: {summary}")
        self.violations = violations

    def details(self) -> list[any_pb2.Any]:
        # The first MAX_VIOLATIONS, texts truncated: a huge bad batch must not make a trailer
        # the client refuses; the message says how many there were in all.
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=truncate(v.field), description=truncate(v.description)
                )
                for v in self.violations[:MAX_VIOLATIONS]
            ]
        )
        return [_pack(bad), *super().details()]


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_name: str, message: str = "") -> None:
        super().__init__(message or f"{resource_type} {resource_name!r} not found")
        self.resource_type = resource_type
        self.resource_name = resource_name

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ResourceInfo(
            resource_type=self.resource_type, resource_name=self.resource_name
        )
        return [_pack(info), *super().details()]


class AlreadyExists(NotFound):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"

    def __init__(self, resource_type: str, resource_name: str, message: str = "") -> None:
        super().__init__(
            resource_type, resource_name, message or f"{resource_type} {resource_name!r} exists"
        )


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"

    def __init__(self, message: str, violation_type: str = "STATE", subject: str = "") -> None:
        super().__init__(message)
        self.violation_type = violation_type
        self.subject = subject

    def details(self) -> list[any_pb2.Any]:
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=self.violation_type, subject=self.subject, description=self.message
                )
            ]
        )
        return [_pack(failure), *super().details()]


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def details(self) -> list[any_pb2.Any]:
        seconds = int(self.retry_after_s)
        delay = duration_pb2.Duration(
            seconds=seconds, nanos=int((self.retry_after_s - seconds) * 1e9)
        )
        return [_pack(error_details_pb2.RetryInfo(retry_delay=delay)), *super().details()]


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class RelayedError(ServiceError):
    """A downstream service's error passed on as it was (code, message and details), so a
    caller of the front service learns exactly what the service behind it said."""

    def __init__(self, code: grpc.StatusCode, message: str, details: list[any_pb2.Any]) -> None:
        super().__init__(message)
        self.code = code
        self.reason = code.name
        self._details = details

    def details(self) -> list[any_pb2.Any]:
        return [d for d in self._details if not d.Is(error_details_pb2.RequestInfo.DESCRIPTOR)]


@dataclass
class Violations:
    """Collects every field violation of a request so the client learns all of them at once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        self.items.append(FieldViolation(field_path, description))

    def check(self, ok: bool, field_path: str, description: str) -> bool:
        if not ok:
            self.add(field_path, description)
        return ok

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(list(self.items))

    def __bool__(self) -> bool:
        return bool(self.items)


def internal_status(request_id: str) -> status_pb2.Status:
    """The only thing a client learns of an unexpected failure: a request id to quote."""
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN)
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error; quote request id {request_id}",
        details=[_pack(info), _pack(error_details_pb2.RequestInfo(request_id=request_id))],
    )


def _fit(status: status_pb2.Status) -> status_pb2.Status:
    """Drops field violations from the end (then whole details, last first, keeping ErrorInfo
    and RequestInfo) until the serialised status fits MAX_STATUS_BYTES."""
    if status.ByteSize() <= MAX_STATUS_BYTES:
        return status
    for index, detail in enumerate(status.details):
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            while bad.field_violations and status.ByteSize() > MAX_STATUS_BYTES:
                del bad.field_violations[-1]
                status.details[index].Pack(bad)
    keep = (error_details_pb2.ErrorInfo.DESCRIPTOR, error_details_pb2.RequestInfo.DESCRIPTOR)
    for index in reversed(range(len(status.details))):
        if status.ByteSize() <= MAX_STATUS_BYTES:
            break
        if not any(status.details[index].Is(d) for d in keep):
            del status.details[index]
    return status


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


_CODE_NUMBERS: dict[grpc.StatusCode, int] = {c: c.value[0] for c in grpc.StatusCode}
