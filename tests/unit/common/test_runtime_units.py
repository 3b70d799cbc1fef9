"""Shared runtime pieces without a server: errors, config, pagination, idempotency."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from sqlalchemy import MetaData, create_engine
from sqlalchemy.orm import Session

from copyloop.common import idempotency, pagination
from copyloop.common.config import ServiceSettings, SettingsError, parse_api_keys
from copyloop.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    Violations,
)


def unpack(status, kind):
    for d in status.details:
        if d.Is(kind.DESCRIPTOR):
            out = kind()
            d.Unpack(out)
            return out
    return None


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


def test_settings_validate_with_clear_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_api_keys("k1:a, k2:b") == {"k1": "a", "k2": "b"}
    monkeypatch.setenv("COPYLOOP_API_KEYS", "broken")
    monkeypatch.setenv("COPYLOOP_PORT", "99999")
    with pytest.raises(SettingsError) as err:
        ServiceSettings.from_env()
    text = str(err.value)
    assert "COPYLOOP_API_KEYS" in text and "key:tenant" in text and "COPYLOOP_PORT" in text


def test_page_tokens_round_trip_and_bind_to_query() -> None:
    token = pagination.next_token("item-7", {"cat": "Toys"})
    page = pagination.parse_page(10, token, {"cat": "Toys"})
    assert (page.size, page.after) == (10, "item-7")
    assert pagination.parse_page(0, "", {}).size == pagination.DEFAULT_PAGE_SIZE
    with pytest.raises(InvalidArgument):
        pagination.parse_page(10, token, {"cat": "Books"})
    with pytest.raises(InvalidArgument):
        pagination.parse_page(-1, "", {})


def test_idempotent_write_runs_once_per_key() -> None:
    metadata = MetaData()
    table = idempotency.idempotency_table(metadata)
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    calls = []

    def write() -> list[int]:
        calls.append(1)
        return [len(calls)]

    def run(key: str, request: object) -> list[int]:
        with Session(engine) as session, session.begin():
            return idempotency.run_idempotent(
                session,
                table,
                "t",
                "M",
                key,
                idempotency.fingerprint(request),
                write,
                encode=lambda r: bytes(r),
                decode=lambda raw: list(raw),
            )

    assert run("k", {"a": 1}) == [1]
    assert run("k", {"a": 1}) == [1] and len(calls) == 1
    assert run("", {"a": 1}) == [2]
    with pytest.raises(InvalidArgument):
        run("k", {"a": 2})
