"""copyloop.common.errors: domain errors become google.rpc.Status with their details."""

from __future__ import annotations

from typing import TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from copyloop.common.errors import (
    MAX_DETAIL_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_STATUS_BYTES,
    MAX_VIOLATIONS,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    RelayedError,
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


def test_a_thousand_bad_items_make_a_small_status() -> None:
    """Every bad value echoed made a 183 KB trailer that clients reject as RESOURCE_EXHAUSTED:
    the status lists the first violations with their texts cut, and stays small."""
    v = Violations()
    for n in range(1000):
        v.add(f"events[{n}].user_id", "must be at most 128 characters, got " + "x" * 1000)
    with pytest.raises(InvalidArgument) as err:
        v.raise_if_any()
    status = err.value.to_status("rid-" + "r" * 100)
    assert status.ByteSize() <= MAX_STATUS_BYTES
    bad = unpack(status, error_details_pb2.BadRequest)
    assert 0 < len(bad.field_violations) <= MAX_VIOLATIONS
    assert bad.field_violations[0].field == "events[0].user_id"
    assert all(len(f.description) <= MAX_DETAIL_CHARS for f in bad.field_violations)
    assert bad.field_violations[0].description.endswith("\u2026")
    assert "and 995 more" in status.message and len(status.message) <= MAX_MESSAGE_CHARS
    # What the client needs to quote the failure survives the trimming.
    assert unpack(status, error_details_pb2.RequestInfo).request_id.startswith("rid-")
    assert unpack(status, error_details_pb2.ErrorInfo).reason == "INVALID_ARGUMENT"


def test_huge_field_paths_and_relayed_details_are_trimmed_too() -> None:
    status = InvalidArgument([FieldViolation("f" * 100_000, "d" * 100_000)]).to_status()
    bad = unpack(status, error_details_pb2.BadRequest)
    assert len(bad.field_violations[0].field) == MAX_DETAIL_CHARS
    assert status.ByteSize() <= MAX_STATUS_BYTES
    # A downstream service's oversized reply passed on is trimmed the same way.
    huge = InvalidArgument([FieldViolation(f"f{n}", "v" * 150) for n in range(40)]).to_status()
    relayed = RelayedError(grpc.StatusCode.INVALID_ARGUMENT, "x" * 50_000, list(huge.details))
    out = relayed.to_status("rid-2")
    assert out.ByteSize() <= MAX_STATUS_BYTES and len(out.message) <= MAX_MESSAGE_CHARS
    assert unpack(out, error_details_pb2.RequestInfo).request_id == "rid-2"


def test_short_statuses_are_untouched() -> None:
    v = [FieldViolation(f"f{n}", "bad") for n in range(MAX_VIOLATIONS)]
    status = InvalidArgument(v).to_status()
    assert [f.field for f in unpack(status, error_details_pb2.BadRequest).field_violations] == [
        f"f{n}" for n in range(MAX_VIOLATIONS)
    ]
