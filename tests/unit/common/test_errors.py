"""copyloop.common.errors: domain errors become google.rpc.Status with their details."""

from __future__ import annotations

from typing import TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from copyloop.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    Violations,
)

M = TypeVar("M", bound=Message)


def unpack(status: status_pb2.Status, kind: type[M]) -> M:
    for d in status.details:
        if d.Is(kind.DESCRIPTOR):
            out = kind()
            d.Unpack(out)
            return out
    raise AssertionError(f"no {kind.DESCRIPTOR.full_name} in the status details")


def test_invalid_argument_lists_every_violation() -> None:
    v = Violations()
    v.check(False, "a", "bad a")
    v.check(True, "b", "fine")
    v.add("c.d", "bad c")
    with pytest.raises(InvalidArgument) as err:
        v.raise_if_any()
    status = err.value.to_status("rid-1")
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = unpack(status, error_details_pb2.BadRequest)
    assert [(f.field, f.description) for f in bad.field_violations] == [
        ("a", "bad a"),
        ("c.d", "bad c"),
    ]
    assert unpack(status, error_details_pb2.RequestInfo).request_id == "rid-1"


def test_other_errors_carry_their_details() -> None:
    nf = NotFound("creative", "c9").to_status()
    assert nf.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert unpack(nf, error_details_pb2.ResourceInfo).resource_name == "c9"
    fp = FailedPrecondition("too little data", "DATA", "training_log").to_status()
    assert unpack(fp, error_details_pb2.PreconditionFailure).violations[0].subject == "training_log"
    un = Unavailable("llm down", retry_after_s=2.5).to_status()
    retry = unpack(un, error_details_pb2.RetryInfo)
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (2, 500_000_000)
