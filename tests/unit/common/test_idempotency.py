"""copyloop.common.idempotency: a write runs once per key; a reused key with another request
is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData, create_engine
from sqlalchemy.orm import Session

from copyloop.common import idempotency
from copyloop.common.errors import InvalidArgument


def test_idempotent_write_runs_once_per_key() -> None:
    metadata = MetaData()
    table = idempotency.idempotency_table(metadata)
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    calls: list[int] = []

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
