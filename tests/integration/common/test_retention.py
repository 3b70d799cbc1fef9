"""Retention on real databases (SQLite and PostgreSQL): fusion's serve log and prediction's
training log lose the rows older than the window, in batches, with the outcomes that hang off
them; recent rows, experiment assignments and bandit statistics stay; 0 days keeps all; the
service's background task prunes on its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Float,
    Integer,
    Numeric,
    Table,
    func,
    insert,
    select,
)

from copyloop.common.db import make_engine, migrate
from copyloop.common.retention import RetentionTask
from copyloop.fusion import schema as fusion_schema
from copyloop.fusion.main import MIGRATIONS as FUSION_MIGRATIONS
from copyloop.fusion.retention import prune_serve_log
from copyloop.fusion.retention import retention_task as fusion_retention
from copyloop.fusion.settings import FusionSettings
from copyloop.prediction import schema as prediction_schema
from copyloop.prediction.main import MIGRATIONS as PREDICTION_MIGRATIONS
from copyloop.prediction.retention import prune_training_log

DAY = 86_400.0
NOW = time.time()
OLD, RECENT = NOW - 40 * DAY, NOW - 2 * DAY


def row(table: Table, **values: Any) -> dict[str, Any]:
    """`values` plus a plain value for every other required column, so the test keeps working
    when a column with a default is added."""
    out = dict(values)
    for col in table.columns:
        if col.name in out or col.nullable or col.default is not None or col.autoincrement is True:
            continue
        kind = type(col.type)
        if issubclass(kind, JSON):
            out[col.name] = {}
        elif issubclass(kind, Float | Integer | Numeric):
            out[col.name] = 0
        elif issubclass(kind, Boolean):
            out[col.name] = False
        elif issubclass(kind, DateTime):
            out[col.name] = None
        else:
            out[col.name] = "x"
    return out


def count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def fusion_db(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine, FUSION_MIGRATIONS, "alembic_version_fusion")
    yield engine
    engine.dispose()


@pytest.fixture
def prediction_db(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine, PREDICTION_MIGRATIONS, "alembic_version_prediction")
    yield engine
    engine.dispose()


def fill_serve_log(engine: Engine, old: int, recent: int) -> None:
    s = fusion_schema
    with engine.begin() as conn:
        for n in range(old + recent):
            t, tenant = (OLD if n < old else RECENT), ("tenant-a" if n % 2 else "tenant-b")
            imp, req = f"im_{n}", f"rq_{n}"
            conn.execute(
                insert(s.served),
                [
                    row(
                        s.served,
                        tenant_id=tenant,
                        impression_id=imp,
                        request_id=req,
                        user_id=f"u{n}",
                        item_id="i1",
                        creative_id="c1",
                        segment="new_user",
                        p_ctr=0.1,
                        p_cvr=0.1,
                        price=1.0,
                        copy_source="COPY_SOURCE_POOL",
                        serve_time=t,
                        features={"item": {"x": 1}},
                    )
                ],
            )
            conn.execute(
                insert(s.served_requests),
                [
                    row(
                        s.served_requests,
                        tenant_id=tenant,
                        request_id=req,
                        user_id=f"u{n}",
                        serve_time=t,
                        features={"profile": {}},
                    )
                ],
            )
            conn.execute(
                insert(s.outcomes),
                [
                    row(
                        s.outcomes,
                        tenant_id=tenant,
                        event_id=f"ev_{n}",
                        impression_id=imp,
                        type="CLICK",
                        event_time=t + 5,
                    )
                ],
            )
        conn.execute(
            insert(s.assignments),
            [
                row(
                    s.assignments,
                    tenant_id="tenant-a",
                    experiment_id="e",
                    user_id="u1",
                    arm_id="a",
                    assign_time=OLD,
                )
            ],
        )
        conn.execute(
            insert(s.bandit_stats),
            [
                row(
                    s.bandit_stats,
                    tenant_id="tenant-a",
                    creative_id="c1",
                    segment="new_user",
                    impressions=5,
                    clicks=1,
                )
            ],
        )


def test_serve_log_keeps_the_window_only(fusion_db: Engine) -> None:
    s = fusion_schema
    fill_serve_log(fusion_db, old=7, recent=4)
    # A batch of 3 rows: the 7 old ones go in several transactions.
    pruned = prune_serve_log(fusion_db, NOW - 30 * DAY, batch_size=3)
    assert pruned == {"served": 7, "outcomes": 7, "served_requests": 7}
    assert (count(fusion_db, s.served), count(fusion_db, s.outcomes)) == (4, 4)
    assert count(fusion_db, s.served_requests) == 4
    with fusion_db.connect() as conn:
        kept = {r.serve_time for r in conn.execute(select(s.served.c.serve_time))}
    assert kept == {RECENT}
    # What later requests need is not a log: assignments and bandit totals stay.
    assert count(fusion_db, s.assignments) == 1 and count(fusion_db, s.bandit_stats) == 1
    assert prune_serve_log(fusion_db, NOW - 30 * DAY, batch_size=3) == {}  # nothing left


def test_orphan_outcomes_older_than_the_window_go_too(fusion_db: Engine) -> None:
    s = fusion_schema
    with fusion_db.begin() as conn:
        for n, t in enumerate((OLD, RECENT)):
            conn.execute(
                insert(s.outcomes),
                [
                    row(
                        s.outcomes,
                        tenant_id="tenant-a",
                        event_id=f"lonely-{n}",
                        impression_id=f"gone-{n}",
                        type="CLICK",
                        event_time=t,
                    )
                ],
            )
    assert prune_serve_log(fusion_db, NOW - 30 * DAY, batch_size=100) == {"outcomes": 1}
    assert count(fusion_db, s.outcomes) == 1


def test_training_log_keeps_the_window_only(prediction_db: Engine) -> None:
    s = prediction_schema
    with prediction_db.begin() as conn:
        for n in range(9):
            t = OLD if n < 5 else RECENT
            conn.execute(
                insert(s.impressions),
                [
                    row(
                        s.impressions,
                        tenant_id="tenant-a",
                        impression_id=f"im_{n}",
                        user_id=f"u{n}",
                        item_id="i1",
                        features={"user": {}},
                        impression_time=t,
                    )
                ],
            )
            conn.execute(
                insert(s.outcomes),
                [
                    row(
                        s.outcomes,
                        tenant_id="tenant-a",
                        outcome_id=f"o_{n}",
                        impression_id=f"im_{n}",
                        type="CLICK",
                        outcome_time=t + 5,
                    )
                ],
            )
    pruned = prune_training_log(prediction_db, NOW - 30 * DAY, batch_size=2)
    assert pruned == {"impressions": 5, "outcomes": 5}
    assert count(prediction_db, s.impressions) == 4 and count(prediction_db, s.outcomes) == 4


def test_the_window_comes_from_the_settings(fusion_db: Engine) -> None:
    fill_serve_log(fusion_db, old=2, recent=2)
    keep_all = fusion_retention(fusion_db, FusionSettings(retention_days=0))
    assert keep_all.run_once() == {}
    assert count(fusion_db, fusion_schema.served) == 4
    wide = fusion_retention(fusion_db, FusionSettings(retention_days=60))
    assert wide.run_once() == {}  # 40 days old is inside a 60-day window
    narrow = fusion_retention(fusion_db, FusionSettings(retention_days=1))
    assert narrow.run_once()["served"] == 4


async def test_the_background_task_prunes_on_its_own(fusion_db: Engine) -> None:
    fill_serve_log(fusion_db, old=3, recent=1)
    task: RetentionTask = fusion_retention(
        fusion_db, FusionSettings(retention_days=30, retention_interval_s=1)
    )
    task.start()
    try:
        deadline = time.monotonic() + 30
        while count(fusion_db, fusion_schema.served) != 1:
            assert time.monotonic() < deadline, "the task never pruned"
            await asyncio.sleep(0.2)
    finally:
        await task.stop()
    assert count(fusion_db, fusion_schema.outcomes) == 1
