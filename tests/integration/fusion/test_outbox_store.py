"""The outbox table on both databases: sequence numbers are never reused (the relay
acknowledges rows by seq, so a reused one would delete a newer row undelivered), and a user's
queued rows are dropped by their deletion."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from copyloop.common.db import make_engine, migrate
from copyloop.fusion.main import MIGRATIONS
from copyloop.fusion.outbox import (
    EVENT,
    PROFILE,
    OutboxMessage,
    OutboxStore,
    drop_for_user,
    enqueue,
)


@pytest.fixture
def engine(database_url: str) -> Iterator[object]:
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS, "alembic_version_fusion")
    yield engine
    engine.dispose()


def _message(user: str, n: int) -> OutboxMessage:
    return OutboxMessage(PROFILE, EVENT, f"fusion:{user}-{n}", user, {"event_id": f"{user}-{n}"})


def test_a_sequence_number_is_never_reused(engine) -> None:
    store = OutboxStore(engine)
    with Session(engine) as session, session.begin():
        enqueue(session, "t", [_message("u1", 1), _message("u1", 2)])
    first = store.due(PROFILE, 10)
    store.ack([r.seq for r in first])
    assert store.pending() == 0
    with Session(engine) as session, session.begin():
        enqueue(session, "t", [_message("u1", 3)])
    (later,) = store.due(PROFILE, 10)
    assert later.seq > max(r.seq for r in first)


def test_deleting_a_user_drops_only_their_queued_rows(engine) -> None:
    store = OutboxStore(engine)
    with Session(engine) as session, session.begin():
        enqueue(session, "t", [_message("u1", 1), _message("u2", 1), _message("u1", 2)])
        enqueue(session, "other", [_message("u1", 1)])
    with Session(engine) as session, session.begin():
        assert drop_for_user(session, "t", "u1") == 2
    assert [r.key for r in store.due(PROFILE, 10)] == ["fusion:u2-1", "fusion:u1-1"]
    assert store.pending("other") == 1
