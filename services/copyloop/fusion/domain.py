"""FusionService's experiment and retraining use cases, independent of gRPC: the servicer
converts messages and calls these; tests can call them directly with a real store.

Recommend and ReportOutcome live in `recommend` and `feedback`; the prediction service is
reached through a small callable (`TrainModel`), so nothing here builds a protobuf message.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from copyloop.common.db import BlockingRunner
from copyloop.common.errors import FailedPrecondition
from copyloop.common.tenancy import current_tenant
from copyloop.fusion.experiments import ArmCounts, ExperimentReport, SliceCounts, build_report
from copyloop.fusion.performance import PerformancePage, PerformanceQuery
from copyloop.fusion.report_chart import MetricBucket, experiment_chart
from copyloop.fusion.store import ArmSpec, ExperimentRecord, FusionStore

CHART_BUCKETS = 24
DEFAULT_WINDOW_DAYS = 7
DAY_S = 86_400
TRAIN_SHARE = 0.8  # the newest fifth of the window (by time) evaluates, the rest trains


@dataclass(frozen=True)
class NewExperiment:
    experiment_id: str
    display_name: str
    arms: tuple[ArmSpec, ...]


@dataclass(frozen=True)
class ExperimentPage:
    experiments: list[ExperimentRecord]
    more: bool  # another page follows the last experiment of this one


@dataclass(frozen=True)
class ExperimentReportResult:
    experiment: ExperimentRecord
    report: ExperimentReport
    chart_png: bytes  # b"" unless a chart was asked for
    slices: list[SliceCounts] = dataclasses.field(default_factory=list)  # by segment and angle


@dataclass(frozen=True)
class TrainRequest:
    """What the prediction service is asked to train on (epoch seconds)."""

    train_start: float
    train_end: float
    eval_start: float
    eval_end: float
    idempotency_key: str


@dataclass(frozen=True)
class TrainResult:
    model_version: str
    promoted: bool
    ctr_auc: float
    reason: str = ""  # the promotion gate's verdict, when the prediction service gives one


@dataclass(frozen=True)
class RetrainOutcome:
    model_version: str
    promoted: bool
    reason: str


TrainModel = Callable[[TrainRequest], Awaitable[TrainResult]]
"""The prediction service's TrainModel (promote if better), behind a proto-free call."""


class FusionDomain:
    def __init__(
        self,
        store: FusionStore,
        runner: BlockingRunner,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.runner = runner
        self.clock = clock

    # ---- experiments ---------------------------------------------------------------------

    async def create_experiment(self, new: NewExperiment) -> ExperimentRecord:
        return await self.runner.run(
            self.store.create_experiment,
            current_tenant(),
            new.experiment_id,
            new.display_name,
            list(new.arms),
        )

    async def get_experiment(self, experiment_id: str) -> ExperimentRecord:
        return await self.runner.run(self.store.get_experiment, current_tenant(), experiment_id)

    async def list_experiments(self, after: str, size: int) -> ExperimentPage:
        found = await self.runner.run(
            self.store.list_experiments, current_tenant(), after, size + 1
        )
        return ExperimentPage(found[:size], more=len(found) > size)

    async def stop_experiment(self, experiment_id: str) -> ExperimentRecord:
        return await self.runner.run(self.store.stop_experiment, current_tenant(), experiment_id)

    async def experiment_report(
        self, experiment: ExperimentRecord, baseline_arm_id: str, include_chart: bool
    ) -> ExperimentReportResult:
        """The report of an experiment already read (and its baseline checked) by the caller."""
        tenant = current_tenant()
        counts = await self.runner.run(self.store.arm_counts, tenant, experiment.experiment_id)
        report = build_report(arm_counts(experiment, counts), baseline_arm_id)
        slices = await self.runner.run(self.store.slice_counts, tenant, experiment.experiment_id)
        chart = b""
        if include_chart:
            timeline = await self.runner.run(self.store.timeline, tenant, experiment.experiment_id)
            chart = experiment_chart(
                chart_buckets(timeline), title=experiment.display_name or experiment.experiment_id
            )
        return ExperimentReportResult(experiment, report, chart, slices)

    # ---- creative performance ------------------------------------------------------------

    async def list_creative_performance(self, query: PerformanceQuery) -> PerformancePage:
        """One page of the caller's pool creatives by shrunk lift, best first (`performance`)."""
        found = await self.runner.run(
            self.store.creative_performance, current_tenant(), query, query.size + 1
        )
        return PerformancePage(found[: query.size], more=len(found) > query.size)

    # ---- retraining ----------------------------------------------------------------------

    async def retrain(
        self, window_days: int, idempotency_key: str, train_model: TrainModel
    ) -> RetrainOutcome:
        """Trains on the window's impressions (0 days = the default week) and promotes the
        candidate only if it beats the live version on the newest part of the window."""
        now = self.clock()
        since = now - (window_days or DEFAULT_WINDOW_DAYS) * DAY_S
        start = await self.runner.run(self.store.first_impression_time, current_tenant(), since)
        if start is None:
            raise FailedPrecondition(
                "no impressions have been reported in the window yet", "DATA", "outcomes"
            )
        result = await train_model(train_request(start, now, idempotency_key))
        return RetrainOutcome(result.model_version, result.promoted, retrain_reason(result))


def arm_counts(experiment: ExperimentRecord, counts: dict[str, ArmCounts]) -> list[ArmCounts]:
    """One row per configured arm, in the experiment's order, with its traffic weight; arms
    nobody was assigned to yet count zero."""
    return [
        dataclasses.replace(counts[a.arm_id], traffic_weight=a.traffic_weight)
        if a.arm_id in counts
        else ArmCounts(a.arm_id, traffic_weight=a.traffic_weight)
        for a in experiment.arms
    ]


def chart_buckets(timeline: Sequence[tuple[float, str, str]]) -> list[MetricBucket]:
    """(time, arm, type) events into CHART_BUCKETS equal time slices per arm."""
    if not timeline:
        return []
    first, last = timeline[0][0], timeline[-1][0]
    width = max((last - first) / CHART_BUCKETS, 1e-6)
    counts: dict[tuple[int, str], list[int]] = {}
    for t, arm, kind in timeline:
        key = (min(CHART_BUCKETS - 1, math.floor((t - first) / width)), arm)
        c = counts.setdefault(key, [0, 0])
        c[0 if kind == "impression" else 1] += 1
    return [
        MetricBucket(first + (b + 1) * width, arm, imps, clicks)
        for (b, arm), (imps, clicks) in sorted(counts.items())
    ]


def train_request(start: float, now: float, idempotency_key: str) -> TrainRequest:
    """The newest fifth of [start, now] (by time) evaluates, the rest trains, so the candidate
    is judged on impressions it never saw; the evaluation window ends just after now."""
    split = start + TRAIN_SHARE * (now - start)
    return TrainRequest(start, split, split, now + 1, idempotency_key)


def retrain_reason(result: TrainResult) -> str:
    if result.reason:
        return result.reason
    if result.promoted:
        return f"promoted: ctr auc {result.ctr_auc:.3f} on the evaluation window"
    return f"not promoted: ctr auc {result.ctr_auc:.3f} did not beat the live version"
