"""FusionStore on both databases: what Recommend logs fits the columns on PostgreSQL too
(fallback, generic and generated copy, the longest creative ids an item id allows), and the
bandit, exposure and experiment sums outcomes update. Each test runs on the store as Recommend
uses it too: serve log queued in a write-behind (an interval long enough that nothing is written
unless a read asks for it) and the per-call reads cached, which must answer the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text

from copyloop.common import tenancy
from copyloop.common.db import BlockingRunner, make_engine, migrate
from copyloop.common.errors import AlreadyExists
from copyloop.fusion import schema
from copyloop.fusion.bandit import LiftStats
from copyloop.fusion.feedback import Feedback
from copyloop.fusion.main import MIGRATIONS
from copyloop.fusion.store import ArmSpec, FusionStore, OutcomeIn, ServedRow
from copyloop.v1 import fusion_pb2


@pytest.fixture(params=["direct", "write-behind+cache"])
def store(database_url: str, request: pytest.FixtureRequest) -> Iterator[FusionStore]:
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS, "alembic_version_fusion")
    if request.param == "direct":
        store = FusionStore(engine)
    else:
        store = FusionStore(engine, write_behind_s=3600.0, cache_ttl_s=3600.0)
    yield store
    store.close()


@pytest.mark.parametrize("source", list(fusion_pb2.CopySource.keys())[1:])
def test_every_copy_source_and_the_longest_creative_id_are_logged(
    store: FusionStore, source: str
) -> None:
    item_id = "i" * 128  # the longest item id the catalog accepts
    creative_id = f"fallback:{item_id}"
    row = ServedRow(
        impression_id=f"im_{source.lower()}",
        request_id="rq_1",
        user_id="u1",
        item_id=item_id,
        creative_id=creative_id,
        segment="bargain_hunter",
        experiment_id="",
        arm_id="",
        p_ctr=0.03,
        p_cvr=0.05,
        price=9.99,
        copy_source=source,
        model_version="prior:fusion",
        serve_time=1_700_000_000.0,
        features={},
    )
    store.log_served("tenant-a", [row])
    assert store.bandit_stats("tenant-a", [creative_id], "bargain_hunter") == {}


def served_rows() -> list[ServedRow]:
    """Three serves each of u1 (creative cr-1) and u2 (cr-2), for bargain hunters, angle value."""
    return [
        ServedRow(
            impression_id=f"im_{user}_{n}",
            request_id=f"rq_{user}_{n}",
            user_id=user,
            item_id="sku-1",
            creative_id=creative,
            segment="bargain_hunter",
            experiment_id="exp",
            arm_id="a",
            p_ctr=0.04,
            p_cvr=0.05,
            price=9.99,
            copy_source="COPY_SOURCE_POOL",
            model_version="v1",
            serve_time=1_700_000_000.0 + n,
            features={},
            angle="value",
        )
        for user, creative in (("u1", "cr-1"), ("u2", "cr-2"))
        for n in range(3)
    ]


def test_outcomes_feed_the_bandit_lift_the_angle_groups_and_per_user_report_sums(
    store: FusionStore,
) -> None:
    """One transaction per ReportOutcome: the creative's and its (segment, angle)'s observed
    and expected clicks, and the experiment's per-user sums its clustered intervals need."""
    rows = served_rows()
    # Read first, so a cache that outcomes and serves failed to update would answer stale.
    assert store.bandit_stats("tenant-a", ["cr-1", "cr-2"], "bargain_hunter") == {}
    assert store.bandit_groups("tenant-a", "bargain_hunter", ["value"]) == {}
    assert store.recent_exposures("tenant-a", "u1", ["sku-1"], 0.0) == {}
    store.log_served("tenant-a", rows)
    assert store.recent_exposures("tenant-a", "u1", ["sku-1", "sku-2"], 0.0) == {"sku-1": 3}
    events = [
        OutcomeIn(i, f"ev-{r.impression_id}-{kind}", r.request_id, r.impression_id, kind, 0.0, 0.0)
        for i, (r, kind) in enumerate(
            [(r, "impression") for r in rows] + [(rows[0], "click"), (rows[1], "click")]
        )
    ]
    applied, duplicate, rejected = store.apply_outcomes("tenant-a", events)
    assert (len(applied), duplicate, rejected) == (8, 0, [])
    stats = store.bandit_stats("tenant-a", ["cr-1", "cr-2"], "bargain_hunter")
    assert stats["cr-1"] == LiftStats(3, 2, pytest.approx(0.12))
    assert stats["cr-2"] == LiftStats(3, 0, pytest.approx(0.12))
    assert store.bandit_groups("tenant-a", "bargain_hunter", ["value", "gift"]) == {
        "value": LiftStats(6, 2, pytest.approx(0.24))
    }
    assert store.recent_exposures("tenant-a", "u1", ["sku-1", "sku-2"], 0.0) == {"sku-1": 3}
    arm = store.arm_counts("tenant-a", "exp")["a"]
    assert (arm.impressions, arm.clicks, arm.shown_users) == (6, 2, 2)
    assert (arm.impressions_sq, arm.clicks_sq, arm.impressions_clicks) == (18, 4, 6)


def test_what_the_write_behind_holds_is_written_on_close(database_url: str) -> None:
    """SIGTERM -> the service's stop -> close(): queued serve rows and assignments reach the
    database though the interval never came."""
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS, "alembic_version_fusion")
    queued = FusionStore(engine, write_behind_s=3600.0)
    row = replace(
        served_rows()[0],
        impression_id="im_close",
        request_id="rq_close",
        user_id="u-close",
        experiment_id="exp-close",
        features={"profile": {"user_id": "u-close"}, "candidate": {"creative_id": "cr-1"}},
    )
    queued.log_served("tenant-c", [row])
    queued.remember_assignment("tenant-c", "exp-close", "u-close", "a", 1_700_000_000.0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.served)).scalar() == 0
    queued.close()
    engine = make_engine(database_url)
    reader = FusionStore(engine)
    try:
        event = OutcomeIn(0, "ev-close", "rq_close", "im_close", "impression", 0.0, 0.0)
        applied, _, rejected = reader.apply_outcomes("tenant-c", [event])
        assert rejected == [] and applied[0].served.features["profile"] == {"user_id": "u-close"}
        assert reader.arm_counts("tenant-c", "exp-close")["a"].users == 1
    finally:
        reader.close()


async def test_an_outcome_waits_briefly_for_a_serve_another_replica_still_holds(
    database_url: str,
) -> None:
    """Two fusion replicas on one database: the outcome reaches B while A's write-behind still
    holds the serve. B's ReportOutcome (Feedback) gives it a few flush intervals, waited off the
    store's threads, instead of rejecting it; an impression never served is still rejected."""
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS, "alembic_version_fusion")
    a = FusionStore(engine, write_behind_s=0.05)
    b = FusionStore(make_engine(database_url), write_behind_s=0.2)  # grace: 1 s
    runner = BlockingRunner(workers=1)
    tokens = tenancy.bind("tenant-r", "rq_test")
    try:
        row = served_rows()[0]
        a.log_served("tenant-r", [row])
        event = OutcomeIn(0, "ev-r", row.request_id, row.impression_id, "impression", 0.0, 0.0)
        unknown = OutcomeIn(1, "ev-x", "", "im_never_served", "impression", 0.0, 0.0)
        applied, duplicate, rejected = await Feedback(b, runner).report([event, unknown])
        assert (applied, duplicate) == (1, 0)
        assert [(e.event_id, why) for e, why in rejected] == [
            ("ev-x", "impression_id: unknown impression 'im_never_served'")
        ]
    finally:
        tenancy.unbind(tokens)
        runner.close()
        a.close()
        b.close()


def test_bandit_rows_record_the_creatives_item_and_angle(store: FusionStore) -> None:
    """What ListCreativePerformance reports of a creative comes from its bandit row alone."""
    rows = served_rows()
    store.log_served("tenant-a", rows)
    store.apply_outcomes(
        "tenant-a",
        [
            OutcomeIn(i, f"ev-{r.impression_id}", r.request_id, r.impression_id, "impression", 0, 0)
            for i, r in enumerate(rows)
        ],
    )
    b = schema.bandit_stats
    with store.engine.connect() as conn:
        found = conn.execute(
            select(b.c.creative_id, b.c.item_id, b.c.angle).order_by(b.c.creative_id)
        ).all()
    assert [tuple(r) for r in found] == [("cr-1", "sku-1", "value"), ("cr-2", "sku-1", "value")]


def _alembic(engine: Any, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["version_table"] = "alembic_version_fusion"
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def test_migration_0007_fills_item_and_angle_from_the_serve_log(database_url: str) -> None:
    """Bandit rows counted before 0007 learn their creative's item and angle from the serve
    log; a creative the serve log no longer has keeps "" (and its counts)."""
    engine = make_engine(database_url)
    try:
        _alembic(engine, "0006")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO served (tenant_id, impression_id, request_id, user_id, item_id,"
                    " creative_id, segment, angle, experiment_id, arm_id, p_ctr, p_cvr, price,"
                    " copy_source, model_version, serve_time, features) VALUES"
                    " ('t', 'im1', 'rq1', 'u1', 'sku-7', 'cr-7', 'deal', 'value', '', '', 0.1,"
                    " 0.1, 1, 'COPY_SOURCE_POOL', 'v1', 1, '{}')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO bandit_stats (tenant_id, creative_id, segment, impressions,"
                    " clicks, expected_clicks) VALUES ('t', 'cr-7', 'deal', 5, 1, 0.5),"
                    " ('t', 'cr-gone', 'deal', 9, 2, 0.9), ('other', 'cr-7', 'deal', 1, 0, 0.1)"
                )
            )
        _alembic(engine, "head")
        b = schema.bandit_stats
        with engine.connect() as conn:
            found = {
                (r.tenant_id, r.creative_id): (r.item_id, r.angle, r.impressions)
                for r in conn.execute(select(b))
            }
        assert found == {
            ("t", "cr-7"): ("sku-7", "value", 5),
            ("t", "cr-gone"): ("", "", 9),
            ("other", "cr-7"): ("", "", 1),  # another tenant's creative of the same id
        }
    finally:
        engine.dispose()


def test_experiments_written_before_arm_versions_read_as_unpinned(database_url: str) -> None:
    """An experiment created before 0006 (no arm_versions) reads with no versions, and
    creating it again with the same arms is still the same experiment."""
    engine = make_engine(database_url)
    try:
        _alembic(engine, "0005")
        arms = [{"arm_id": "a", "strategy": "ARM_STRATEGY_GENERIC_COPY", "traffic_weight": 1.0}]
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO experiments (tenant_id, experiment_id, display_name, arms, state,"
                    " create_time) VALUES ('t', 'old', '', :arms, 'running', :now)"
                ),
                {"arms": json.dumps(arms), "now": datetime.now(UTC)},
            )
        _alembic(engine, "head")
        store = FusionStore(engine)
        (arm,) = store.get_experiment("t", "old").arms
        assert (arm.copywriter_version, arm.prompt_template_version) == ("", "")
        again = store.create_experiment(
            "t", "old", "", [ArmSpec("a", "ARM_STRATEGY_GENERIC_COPY", 1.0)]
        )
        assert again.arms == (arm,)
        pinned = store.create_experiment(
            "t",
            "new",
            "",
            [ArmSpec("a", "ARM_STRATEGY_PERSONALISED_BANDIT", 1.0, "2", "v2")],
        )
        assert store.get_experiment("t", "new").arms == pinned.arms
        with pytest.raises(AlreadyExists):
            store.create_experiment(
                "t", "new", "", [ArmSpec("a", "ARM_STRATEGY_PERSONALISED_BANDIT", 1.0, "3", "v2")]
            )
    finally:
        engine.dispose()
