"""Conversion and validation between copyloop.v1 fusion messages and domain types: every
request check lives here, so the servicer only parses, calls and replies."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence

from google.protobuf.message import Message

from copyloop.common import pagination, validation
from copyloop.common.errors import InvalidArgument, Violations
from copyloop.common.idempotency import validate_key
from copyloop.common.protoconv import dt_to_ts, epoch_to_ts, ts_to_epoch
from copyloop.common.vocabulary import LOCALES, describe
from copyloop.fusion.domain import (
    ExperimentPage,
    ExperimentReportResult,
    NewExperiment,
    RetrainOutcome,
    TrainRequest,
    TrainResult,
)
from copyloop.fusion.experiments import wilson_interval
from copyloop.fusion.performance import PerformanceKey, PerformancePage, PerformanceQuery
from copyloop.fusion.store import ArmSpec, ExperimentRecord, OutcomeIn, UserDeletion
from copyloop.v1 import common_pb2, fusion_pb2, prediction_pb2

F = fusion_pb2
EXPERIMENTS_QUERY = "experiments"  # what ListExperiments page tokens are bound to
EXPERIMENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# A copywriter model version ("2", "copywriter-demo@3") or prompt template version ("v2"):
# printable, no spaces, no longer than GenerationService's columns.
COPYWRITER_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}$")
TEMPLATE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,31}$")
PERFORMANCE_QUERY = "creative-performance"  # with the filters: what its page tokens bind
FEEDBACK = {
    F.FEEDBACK_TYPE_IMPRESSION: "impression",
    F.FEEDBACK_TYPE_CLICK: "click",
    F.FEEDBACK_TYPE_ADD_TO_CART: "add_to_cart",
    F.FEEDBACK_TYPE_PURCHASE: "purchase",
}
STATES = {"running": F.EXPERIMENT_STATE_RUNNING, "stopped": F.EXPERIMENT_STATE_STOPPED}
MAX_OUTCOMES = 1000
# A budget below one round trip to the services behind Recommend cannot be met; it would only
# turn every dependency into a reported outage.
MIN_BUDGET_MS = 50
# Where each request string lands (fusion/schema.py); the rest of common.proto is shared.
LIMITS = validation.limits(
    {
        "copyloop.v1.RecommendRequest.user_id": 128,
        "copyloop.v1.RecommendRequest.experiment_id": 64,
        "copyloop.v1.RecommendRequest.candidate_item_ids": 128,
        "copyloop.v1.OutcomeEvent.event_id": 128,
        "copyloop.v1.OutcomeEvent.request_id": 64,
        "copyloop.v1.OutcomeEvent.impression_id": 64,
        "copyloop.v1.Arm.arm_id": 64,
        "copyloop.v1.Arm.copywriter_version": 64,
        "copyloop.v1.Arm.prompt_template_version": 32,
        "copyloop.v1.ListCreativePerformanceRequest.segment": 128,
        "copyloop.v1.CreateExperimentRequest.experiment_id": 64,
        "copyloop.v1.CreateExperimentRequest.display_name": 256,
        "copyloop.v1.CreateExperimentRequest.idempotency_key": 128,
        "copyloop.v1.GetExperimentRequest.experiment_id": 64,
        "copyloop.v1.StopExperimentRequest.experiment_id": 64,
        "copyloop.v1.GetExperimentReportRequest.experiment_id": 64,
        "copyloop.v1.GetExperimentReportRequest.baseline_arm_id": 64,
        "copyloop.v1.RetrainModelRequest.idempotency_key": 128,
        "copyloop.v1.FusionServiceDeleteUserRequest.user_id": 128,
    }
)


def validate_request(request: Message) -> None:
    """The edge checks every FusionService RPC runs first (see copyloop.common.validation)."""
    v = Violations()
    validation.scan(request, v, LIMITS)
    v.raise_if_any()


def validate_recommend(req: F.RecommendRequest) -> None:
    v = Violations()
    v.check(
        bool(req.user_id) and len(req.user_id) <= 128, "user_id", "required, at most 128 characters"
    )
    v.check(
        req.context.channel in common_pb2.Channel.values() and req.context.channel != 0,
        "context.channel",
        "required: a known channel",
    )
    v.check(req.context.locale in LOCALES, "context.locale", f"required: {describe(LOCALES)}")
    v.check(0 <= req.n <= 100, "n", "must be between 0 and 100")
    v.check(len(req.candidate_item_ids) <= 500, "candidate_item_ids", "at most 500 ids")
    v.check(
        len(set(req.candidate_item_ids)) == len(req.candidate_item_ids),
        "candidate_item_ids",
        "must not repeat ids",
    )
    v.check(
        req.latency_budget_ms == 0 or MIN_BUDGET_MS <= req.latency_budget_ms <= 60_000,
        "latency_budget_ms",
        f"0 (the default) or between {MIN_BUDGET_MS} and 60000",
    )
    # The filter goes to ProfileService as it is: checked by the same rules here, so a bad
    # filter is the caller's INVALID_ARGUMENT and not a dependency failure.
    validation.check_item_filter(v, req.filter, "filter")
    v.raise_if_any()


def outcomes_from_proto(req: F.ReportOutcomeRequest) -> list[OutcomeIn]:
    v = Violations()
    v.check(1 <= len(req.events) <= MAX_OUTCOMES, "events", f"1 to {MAX_OUTCOMES} events required")
    now = time.time()
    parsed = []
    for n, e in enumerate(req.events):
        p = f"events[{n}]"
        v.check(
            bool(e.event_id) and len(e.event_id) <= 128,
            f"{p}.event_id",
            "required, at most 128 characters",
        )
        v.check(bool(e.impression_id), f"{p}.impression_id", "required")
        v.check(bool(e.request_id), f"{p}.request_id", "required")
        v.check(
            e.type in FEEDBACK, f"{p}.type", "required: impression, click, add_to_cart or purchase"
        )
        v.check(math.isfinite(e.value) and e.value >= 0, f"{p}.value", "must be >= 0")
        t = ts_to_epoch(e.event_time) if e.HasField("event_time") else now
        v.check(t <= now + 86_400, f"{p}.event_time", "more than 1 day in the future")
        if e.type in FEEDBACK:
            parsed.append(
                OutcomeIn(
                    n, e.event_id, e.request_id, e.impression_id, FEEDBACK[e.type], e.value, t
                )
            )
    v.raise_if_any()
    return parsed


def outcomes_to_proto(
    accepted: int, duplicate: int, rejected: Sequence[tuple[OutcomeIn, str]]
) -> F.ReportOutcomeResponse:
    return F.ReportOutcomeResponse(
        accepted=accepted,
        duplicate=duplicate,
        rejected=len(rejected),
        rejection_reasons=[f"events[{e.index}] ({e.event_id}): {why}" for e, why in rejected],
    )


def arms_from_proto(req: F.CreateExperimentRequest) -> list[ArmSpec]:
    v = Violations()
    _check_experiment_id(v, req.experiment_id)
    v.check(2 <= len(req.arms) <= 10, "arms", "2 to 10 arms required")
    v.check(len(req.display_name) <= 256, "display_name", "at most 256 characters")
    seen: set[str] = set()
    for n, arm in enumerate(req.arms):
        v.check(
            bool(EXPERIMENT_ID.match(arm.arm_id)),
            f"arms[{n}].arm_id",
            "required: 1-64 characters of [a-z0-9-]",
        )
        v.check(arm.arm_id not in seen, f"arms[{n}].arm_id", "duplicated")
        seen.add(arm.arm_id)
        v.check(
            arm.strategy != F.ARM_STRATEGY_UNSPECIFIED and arm.strategy in F.ArmStrategy.values(),
            f"arms[{n}].strategy",
            "required",
        )
        v.check(
            math.isfinite(arm.traffic_weight) and arm.traffic_weight > 0,
            f"arms[{n}].traffic_weight",
            "must be > 0",
        )
        _check_arm_versions(v, arm, f"arms[{n}]")
    v.raise_if_any()
    return [
        ArmSpec(
            a.arm_id,
            F.ArmStrategy.Name(a.strategy),
            a.traffic_weight,
            a.copywriter_version,
            a.prompt_template_version,
        )
        for a in req.arms
    ]


def _check_arm_versions(v: Violations, arm: F.Arm, prefix: str) -> None:
    """Pinned versions are optional; when set they must be a version GenerationService could
    have recorded, on an arm that serves pool copy (the generic arm writes its own line)."""
    for name, pattern, most in (
        ("copywriter_version", COPYWRITER_VERSION, 64),
        ("prompt_template_version", TEMPLATE_VERSION, 32),
    ):
        value = getattr(arm, name)
        v.check(
            not value or bool(pattern.match(value)),
            f"{prefix}.{name}",
            f"1-{most} characters of letters, digits and . _ : @ + - (empty = any version)",
        )
    v.check(
        arm.strategy != F.ARM_STRATEGY_GENERIC_COPY
        or not (arm.copywriter_version or arm.prompt_template_version),
        f"{prefix}.strategy",
        "a GENERIC_COPY arm serves no copywriter's copy: it cannot pin a version",
    )


def new_experiment_from_proto(req: F.CreateExperimentRequest) -> NewExperiment:
    arms = arms_from_proto(req)
    validate_key(req.idempotency_key)
    return NewExperiment(req.experiment_id, req.display_name, tuple(arms))


def experiment_id_from_proto(experiment_id: str) -> str:
    """The experiment id of a Get/Stop/Report request, checked."""
    v = Violations()
    _check_experiment_id(v, experiment_id)
    v.raise_if_any()
    return experiment_id


def _check_experiment_id(v: Violations, experiment_id: str) -> None:
    v.check(
        bool(EXPERIMENT_ID.match(experiment_id)),
        "experiment_id",
        "required: 1-64 characters of [a-z0-9-]",
    )


def page_from_proto(req: F.ListExperimentsRequest) -> pagination.PageRequest:
    return pagination.parse_page(req.page_size, req.page_token, EXPERIMENTS_QUERY)


def experiments_page_to_proto(page: ExperimentPage) -> F.ListExperimentsResponse:
    found = page.experiments
    return F.ListExperimentsResponse(
        experiments=[experiment_to_proto(e) for e in found],
        next_page_token=pagination.next_token(found[-1].experiment_id, EXPERIMENTS_QUERY)
        if page.more
        else "",
    )


def check_baseline(baseline_arm_id: str, experiment: ExperimentRecord) -> None:
    """A report's baseline, when given, must be one of the experiment's arms."""
    arm_ids = [a.arm_id for a in experiment.arms]
    if baseline_arm_id and baseline_arm_id not in arm_ids:
        v = Violations()
        v.add("baseline_arm_id", f"not an arm of this experiment: {', '.join(arm_ids)}")
        v.raise_if_any()


def experiment_to_proto(r: ExperimentRecord) -> F.Experiment:
    msg = F.Experiment(
        experiment_id=r.experiment_id,
        display_name=r.display_name,
        state=STATES[r.state],
        arms=[
            F.Arm(
                arm_id=a.arm_id,
                strategy=F.ArmStrategy.Value(a.strategy),
                traffic_weight=a.traffic_weight,
                copywriter_version=a.copywriter_version,
                prompt_template_version=a.prompt_template_version,
            )
            for a in r.arms
        ],
        create_time=dt_to_ts(r.create_time),
    )
    if r.stop_time:
        msg.stop_time.CopyFrom(dt_to_ts(r.stop_time))
    return msg


def report_to_proto(result: ExperimentReportResult) -> F.GetExperimentReportResponse:
    report = result.report
    reply = F.GetExperimentReportResponse(
        experiment=experiment_to_proto(result.experiment),
        baseline_arm_id=report.baseline_arm_id,
        sample_ratio_p_value=report.srm.p_value,
        sample_ratio_mismatch=report.srm.mismatch,
        chart_png=result.chart_png,
    )
    for arm in report.arms:
        c = arm.counts
        lift = arm.lift
        reply.arms.add(
            arm_id=c.arm_id,
            user_count=c.users,
            impressions=c.impressions,
            clicks=c.clicks,
            purchases=c.purchases,
            revenue=c.revenue,
            ctr=c.ctr,
            cvr=c.cvr,
            revenue_per_impression=c.revenue_per_impression,
            # An undefined lift (no impressions, or a baseline without clicks) is reported as NaN.
            ctr_lift=lift.lift if lift else math.nan,
            ctr_lift_interval=F.Interval(
                lower=lift.lower if lift else math.nan, upper=lift.upper if lift else math.nan
            ),
            probability_best=arm.probability_best,
        )
    for cell in result.slices:
        lower, upper = wilson_interval(cell.clicks, cell.impressions)
        reply.slices.add(
            arm_id=cell.arm_id,
            segment=cell.segment,
            angle=cell.angle,
            impressions=cell.impressions,
            clicks=cell.clicks,
            purchases=cell.purchases,
            ctr=cell.ctr,
            ctr_interval=F.Interval(lower=lower, upper=upper),
        )
    return reply


def performance_query_from_proto(req: F.ListCreativePerformanceRequest) -> PerformanceQuery:
    """The page asked for, checked: page size and token (bound to the filters), the
    minimum impressions (1 when 0) and the segment."""
    v = Violations()
    v.check(req.min_impressions >= 0, "min_impressions", "must be >= 0 (0 = at least 1)")
    validation.check_text(v, "segment", req.segment, 128)
    min_impressions = max(1, req.min_impressions)
    page = pagination.PageRequest(0, "")
    try:
        page = pagination.parse_page(
            req.page_size, req.page_token, _performance_filters(req.segment, min_impressions)
        )
    except InvalidArgument as bad:  # reported with the other fields' problems
        v.items.extend(bad.violations)
    after = PerformanceKey.decode(page.after) if page.after else None
    v.check(not page.after or after is not None, "page_token", "is not a token this service issued")
    v.raise_if_any()
    return PerformanceQuery(req.segment, min_impressions, page.size, after)


def _performance_filters(segment: str, min_impressions: int) -> list[object]:
    return [PERFORMANCE_QUERY, segment, min_impressions]


def performance_page_to_proto(
    page: PerformancePage, query: PerformanceQuery
) -> F.ListCreativePerformanceResponse:
    reply = F.ListCreativePerformanceResponse()
    for c in page.creatives:
        lower, upper = c.interval
        reply.creatives.add(
            creative_id=c.creative_id,
            item_id=c.item_id,
            segment=c.segment,
            angle=c.angle,
            impressions=c.impressions,
            clicks=c.clicks,
            expected_clicks=c.expected_clicks,
            lift=c.lift,
            lift_interval=F.Interval(lower=lower, upper=upper),
        )
    if page.more and page.creatives:
        reply.next_page_token = pagination.next_token(
            page.creatives[-1].key.encode(),
            _performance_filters(query.segment, query.min_impressions),
        )
    return reply


def retrain_from_proto(req: F.RetrainModelRequest) -> tuple[int, str]:
    """(window_days, idempotency_key), checked."""
    v = Violations()
    v.check(0 <= req.window_days <= 365, "window_days", "must be between 0 and 365")
    v.raise_if_any()
    validate_key(req.idempotency_key)
    return req.window_days, req.idempotency_key


def train_model_request(r: TrainRequest) -> prediction_pb2.TrainModelRequest:
    return prediction_pb2.TrainModelRequest(
        train_window=prediction_pb2.TimeWindow(
            start_time=epoch_to_ts(r.train_start), end_time=epoch_to_ts(r.train_end)
        ),
        eval_window=prediction_pb2.TimeWindow(
            start_time=epoch_to_ts(r.eval_start), end_time=epoch_to_ts(r.eval_end)
        ),
        promote_if_better=True,
        idempotency_key=r.idempotency_key,
    )


def train_result_from_proto(reply: prediction_pb2.TrainModelResponse) -> TrainResult:
    version = reply.model_version
    return TrainResult(version.version, reply.promoted, version.metrics.ctr.auc, reply.reason)


def retrain_to_proto(outcome: RetrainOutcome) -> F.RetrainModelResponse:
    return F.RetrainModelResponse(
        model_version=outcome.model_version, promoted=outcome.promoted, reason=outcome.reason
    )


def delete_user_from_proto(req: F.FusionServiceDeleteUserRequest) -> str:
    v = Violations()
    v.check(
        bool(req.user_id) and len(req.user_id) <= 128 and "\x00" not in req.user_id,
        "user_id",
        "required, at most 128 characters",
    )
    v.raise_if_any()
    return req.user_id


def delete_user_to_proto(d: UserDeletion) -> F.FusionServiceDeleteUserResponse:
    return F.FusionServiceDeleteUserResponse(
        deleted_impression_count=d.impressions,
        deleted_outcome_count=d.outcomes,
        deleted_assignment_count=d.assignments,
        dropped_pending_count=d.dropped_pending,
        queued_deletion_count=d.queued,
    )
