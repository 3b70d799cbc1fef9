"""FusionStore on both databases: what Recommend logs fits the columns on PostgreSQL too
(fallback, generic and generated copy, the longest creative ids an item id allows), and the
bandit, exposure and experiment sums outcomes update."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from copyloop.common.db import make_engine, migrate
from copyloop.fusion.bandit import LiftStats
from copyloop.fusion.main import MIGRATIONS
from copyloop.fusion.store import FusionStore, OutcomeIn, ServedRow
from copyloop.v1 import fusion_pb2


@pytest.fixture
def store(database_url: str) -> Iterator[FusionStore]:
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS, "alembic_version_fusion")
    yield FusionStore(engine)
    engine.dispose()


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


def test_outcomes_feed_the_bandit_lift_the_angle_groups_and_per_user_report_sums(
    store: FusionStore,
) -> None:
    """One transaction per ReportOutcome: the creative's and its (segment, angle)'s observed
    and expected clicks, and the experiment's per-user sums its clustered intervals need."""
    rows = [
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
    store.log_served("tenant-a", rows)
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
