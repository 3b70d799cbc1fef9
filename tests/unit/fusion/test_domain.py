"""FusionDomain's experiment and retrain use cases, on a real SQLite FusionStore."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from copyloop.common import tenancy
from copyloop.common.db import BlockingRunner
from copyloop.common.errors import AlreadyExists, FailedPrecondition, NotFound
from copyloop.fusion.domain import (
    CHART_BUCKETS,
    FusionDomain,
    NewExperiment,
    TrainRequest,
    TrainResult,
    arm_counts,
    chart_buckets,
    retrain_reason,
    train_request,
)
from copyloop.fusion.experiments import ArmCounts
from copyloop.fusion.store import ArmSpec, FusionStore, OutcomeIn, ServedRow

NOW = 1_750_000_000.0
DAY = 86_400.0
ARMS = (
    ArmSpec("control", "ARM_STRATEGY_GENERIC_COPY", 1.0),
    ArmSpec("bandit", "ARM_STRATEGY_PERSONALISED_BANDIT", 3.0),
)


@contextmanager
def as_tenant(name: str = "acme") -> Iterator[None]:
    tokens = tenancy.bind(name, "rq_test")
    try:
        yield
    finally:
        tenancy.unbind(tokens)


@pytest.fixture
def domain(fusion_store: FusionStore, runner: BlockingRunner) -> FusionDomain:
    return FusionDomain(fusion_store, runner, clock=lambda: NOW)


def served(impression_id: str, experiment_id: str, arm_id: str, t: float) -> ServedRow:
    return ServedRow(
        impression_id=impression_id,
        request_id=f"rq_{impression_id}",
        user_id=f"u-{impression_id}",
        item_id="sku-1",
        creative_id="cr-1",
        segment="",
        experiment_id=experiment_id,
        arm_id=arm_id,
        p_ctr=0.05,
        p_cvr=0.1,
        price=20.0,
        copy_source="COPY_SOURCE_POOL",
        model_version="v1",
        serve_time=t,
        features={},
    )


def outcome(n: int, impression_id: str, kind: str, t: float, value: float = 0.0) -> OutcomeIn:
    return OutcomeIn(n, f"ev-{n}", f"rq_{impression_id}", impression_id, kind, value, t)


# ---- experiments ---------------------------------------------------------------------------


async def test_create_get_stop_experiment(domain: FusionDomain) -> None:
    with as_tenant():
        created = await domain.create_experiment(NewExperiment("exp-1", "First", ARMS))
        assert (created.experiment_id, created.state, created.arms) == ("exp-1", "running", ARMS)
        assert created.stop_time is None
        # The same request again is answered with the stored experiment; other arms conflict.
        again = await domain.create_experiment(NewExperiment("exp-1", "First", ARMS))
        # (SQLite hands datetimes back without their zone.)
        assert again.create_time.replace(tzinfo=None) == created.create_time.replace(tzinfo=None)
        with pytest.raises(AlreadyExists):
            await domain.create_experiment(NewExperiment("exp-1", "First", ARMS[:1]))

        assert (await domain.get_experiment("exp-1")).display_name == "First"
        stopped = await domain.stop_experiment("exp-1")
        assert stopped.state == "stopped" and stopped.stop_time is not None
        assert (await domain.stop_experiment("exp-1")).stop_time == stopped.stop_time
        with pytest.raises(NotFound):
            await domain.get_experiment("nope")
        with pytest.raises(NotFound):
            await domain.stop_experiment("nope")


async def test_experiments_are_per_tenant(domain: FusionDomain) -> None:
    with as_tenant("acme"):
        await domain.create_experiment(NewExperiment("exp-1", "", ARMS))
    with as_tenant("globex"), pytest.raises(NotFound):
        await domain.get_experiment("exp-1")


async def test_list_experiments_pages_in_id_order(domain: FusionDomain) -> None:
    with as_tenant():
        for experiment_id in ("exp-c", "exp-a", "exp-b"):
            await domain.create_experiment(NewExperiment(experiment_id, "", ARMS))
        first = await domain.list_experiments("", 2)
        assert [e.experiment_id for e in first.experiments] == ["exp-a", "exp-b"]
        assert first.more
        rest = await domain.list_experiments("exp-b", 2)
        assert [e.experiment_id for e in rest.experiments] == ["exp-c"]
        assert not rest.more
        exact = await domain.list_experiments("", 3)
        assert len(exact.experiments) == 3 and not exact.more


# ---- the report ----------------------------------------------------------------------------


async def test_experiment_report_counts_each_configured_arm(
    domain: FusionDomain, fusion_store: FusionStore
) -> None:
    with as_tenant():
        experiment = await domain.create_experiment(NewExperiment("exp-1", "Copy test", ARMS))
        for user in ("u1", "u2"):
            fusion_store.remember_assignment("acme", "exp-1", user, "bandit", NOW)
        fusion_store.log_served(
            "acme", [served("im-1", "exp-1", "bandit", NOW), served("im-2", "exp-1", "bandit", NOW)]
        )
        _, _, rejected = fusion_store.apply_outcomes(
            "acme",
            [
                outcome(0, "im-1", "impression", NOW),
                outcome(1, "im-2", "impression", NOW + 60),
                outcome(2, "im-1", "click", NOW + 120),
                outcome(3, "im-1", "purchase", NOW + 180, value=25.0),
            ],
        )
        assert not rejected

        result = await domain.experiment_report(experiment, "", include_chart=False)

    assert result.experiment == experiment
    assert result.chart_png == b""
    report = result.report
    assert report.baseline_arm_id == "control"  # the first arm when none is named
    assert [a.arm_id for a in report.arms] == ["control", "bandit"]  # configured order
    control, bandit = (a.counts for a in report.arms)
    # An arm nobody was assigned to yet counts zero, with its configured weight.
    assert control == ArmCounts("control", traffic_weight=1.0)
    assert (bandit.users, bandit.impressions, bandit.clicks) == (2, 2, 1)
    assert (bandit.purchases, bandit.revenue, bandit.traffic_weight) == (1, 25.0, 3.0)
    assert report.arms[0].lift is None  # a baseline without impressions has no lift


async def test_experiment_report_breaks_results_down_by_segment_and_angle(
    domain: FusionDomain, fusion_store: FusionStore
) -> None:
    def cell(imp: str, arm: str, segment: str, angle: str) -> ServedRow:
        return dataclasses.replace(served(imp, "exp-1", arm, NOW), segment=segment, angle=angle)

    with as_tenant():
        experiment = await domain.create_experiment(NewExperiment("exp-1", "", ARMS))
        fusion_store.log_served(
            "acme",
            [
                cell("im-1", "bandit", "deal_seeker", "value"),
                cell("im-2", "bandit", "deal_seeker", "value"),
                cell("im-3", "bandit", "deal_seeker", "quality"),
                cell("im-4", "control", "", ""),
            ],
        )
        events = [outcome(i, f"im-{i}", "impression", NOW) for i in range(1, 5)]
        events += [outcome(10, "im-1", "click", NOW + 1), outcome(11, "im-3", "click", NOW + 1)]
        events += [outcome(12, "im-3", "purchase", NOW + 2, value=9.0)]
        fusion_store.apply_outcomes("acme", events)
        result = await domain.experiment_report(experiment, "", include_chart=False)

    cells = {(c.arm_id, c.segment, c.angle): c for c in result.slices}
    assert set(cells) == {
        ("bandit", "deal_seeker", "value"),
        ("bandit", "deal_seeker", "quality"),
        ("control", "", ""),
    }
    value = cells["bandit", "deal_seeker", "value"]
    assert (value.impressions, value.clicks, value.purchases, value.ctr) == (2, 1, 0, 0.5)
    quality = cells["bandit", "deal_seeker", "quality"]
    assert (quality.impressions, quality.clicks, quality.purchases) == (1, 1, 1)
    assert cells["control", "", ""].clicks == 0


async def test_experiment_report_with_baseline_and_chart(
    domain: FusionDomain, fusion_store: FusionStore
) -> None:
    with as_tenant():
        experiment = await domain.create_experiment(NewExperiment("exp-1", "", ARMS))
        fusion_store.log_served("acme", [served("im-1", "exp-1", "control", NOW)])
        fusion_store.apply_outcomes("acme", [outcome(0, "im-1", "impression", NOW)])
        result = await domain.experiment_report(experiment, "bandit", include_chart=True)
    assert result.report.baseline_arm_id == "bandit"
    assert result.chart_png.startswith(b"\x89PNG")


def test_arm_counts_merges_stored_counts_with_configured_weights() -> None:
    from datetime import UTC, datetime

    from copyloop.fusion.store import ExperimentRecord

    experiment = ExperimentRecord("e", "", ARMS, "running", datetime.now(UTC), None)
    stored = {
        "bandit": ArmCounts("bandit", users=3, impressions=10, clicks=2),
        "retired": ArmCounts("retired", users=9),  # not configured: left out
    }
    assert arm_counts(experiment, stored) == [
        ArmCounts("control", traffic_weight=1.0),
        ArmCounts("bandit", users=3, impressions=10, clicks=2, traffic_weight=3.0),
    ]


def test_chart_buckets_split_the_timeline_into_equal_slices() -> None:
    assert chart_buckets([]) == []
    start = NOW
    span = CHART_BUCKETS * 100.0
    timeline = [
        (start, "a", "impression"),
        (start + 10, "a", "click"),
        (start + 10, "b", "impression"),
        (start + 150, "a", "impression"),
        (start + span, "a", "impression"),  # the last event falls in the last bucket
    ]
    buckets = chart_buckets(timeline)
    assert [(b.arm_id, b.impressions, b.clicks) for b in buckets] == [
        ("a", 1, 1),
        ("b", 1, 0),
        ("a", 1, 0),
        ("a", 1, 0),
    ]
    ends = [b.time for b in buckets]
    assert ends[0] == ends[1] == pytest.approx(start + 100)
    assert ends[2] == pytest.approx(start + 200)
    assert ends[3] == pytest.approx(start + span)


def test_chart_buckets_of_a_single_instant() -> None:
    buckets = chart_buckets([(NOW, "a", "impression"), (NOW, "a", "click")])
    assert [(b.arm_id, b.impressions, b.clicks) for b in buckets] == [("a", 1, 1)]


# ---- retraining ----------------------------------------------------------------------------


def test_train_request_evaluates_on_the_newest_fifth() -> None:
    request = train_request(NOW - 10 * DAY, NOW, "key-1")
    assert request == TrainRequest(NOW - 10 * DAY, NOW - 2 * DAY, NOW - 2 * DAY, NOW + 1, "key-1")


def test_retrain_reason() -> None:
    assert retrain_reason(TrainResult("v2", True, 0.71234)) == (
        "promoted: ctr auc 0.712 on the evaluation window"
    )
    assert retrain_reason(TrainResult("v2", False, 0.5)) == (
        "not promoted: ctr auc 0.500 did not beat the live version"
    )
    # The prediction service's gate says why, criterion by criterion: that is passed on.
    gate = "not better than live v1: FAIL better: ..."
    assert retrain_reason(TrainResult("v2", False, 0.5, gate)) == gate


async def test_retrain_trains_from_the_first_impression_in_the_window(
    domain: FusionDomain, fusion_store: FusionStore
) -> None:
    first = NOW - 5 * DAY
    fusion_store.log_served("acme", [served("im-1", "", "", first), served("im-2", "", "", NOW)])
    fusion_store.apply_outcomes(
        "acme",
        [
            outcome(0, "im-1", "impression", first),
            outcome(1, "im-2", "impression", NOW - DAY),
            outcome(2, "im-2", "click", first - DAY),  # clicks do not start the window
        ],
    )
    asked: list[TrainRequest] = []

    async def train_model(request: TrainRequest) -> TrainResult:
        asked.append(request)
        return TrainResult("v9", True, 0.8)

    with as_tenant():
        outcome_ = await domain.retrain(0, "key-1", train_model)
    assert asked == [train_request(first, NOW, "key-1")]
    assert (outcome_.model_version, outcome_.promoted) == ("v9", True)
    assert outcome_.reason == "promoted: ctr auc 0.800 on the evaluation window"


async def test_retrain_window_days_bounds_the_window(
    domain: FusionDomain, fusion_store: FusionStore
) -> None:
    old = NOW - 8 * DAY
    fusion_store.log_served("acme", [served("im-1", "", "", old)])
    fusion_store.apply_outcomes("acme", [outcome(0, "im-1", "impression", old)])
    asked: list[TrainRequest] = []

    async def train_model(request: TrainRequest) -> TrainResult:
        asked.append(request)
        return TrainResult("v3", False, 0.4)

    with as_tenant():
        # 0 days is the default week, which misses an 8-day-old impression.
        with pytest.raises(FailedPrecondition, match="no impressions"):
            await domain.retrain(0, "", train_model)
        result = await domain.retrain(10, "", train_model)
    assert asked == [train_request(old, NOW, "")]
    assert not result.promoted
    assert result.reason == "not promoted: ctr auc 0.400 did not beat the live version"


async def test_retrain_without_impressions_is_a_failed_precondition(
    domain: FusionDomain,
) -> None:
    async def train_model(request: TrainRequest) -> TrainResult:
        raise AssertionError("must not train without data")

    with as_tenant(), pytest.raises(FailedPrecondition, match="no impressions"):
        await domain.retrain(7, "", train_model)
