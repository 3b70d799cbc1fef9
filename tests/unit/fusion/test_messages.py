"""FusionService's request checks and conversions (`copyloop.fusion.messages`): every field
violation the servicer used to raise itself is raised here, with the same field and text."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from copyloop.common.errors import InvalidArgument
from copyloop.fusion import messages
from copyloop.fusion.domain import (
    ExperimentPage,
    NewExperiment,
    RetrainOutcome,
    TrainRequest,
)
from copyloop.fusion.store import ArmSpec, ExperimentRecord
from copyloop.v1 import common_pb2, fusion_pb2, prediction_pb2

F = fusion_pb2
RECORD = ExperimentRecord(
    "exp-1",
    "Copy test",
    (
        ArmSpec("control", "ARM_STRATEGY_GENERIC_COPY", 1.0),
        ArmSpec("bandit", "ARM_STRATEGY_PERSONALISED_BANDIT", 2.0),
    ),
    "running",
    datetime(2025, 6, 1, tzinfo=UTC),
    None,
)


def violations(error: pytest.ExceptionInfo[InvalidArgument]) -> dict[str, str]:
    return {v.field: v.description for v in error.value.violations}


def test_recommend_needs_a_known_locale() -> None:
    request = F.RecommendRequest(
        user_id="u-1", context=common_pb2.Context(channel=common_pb2.CHANNEL_PUSH, locale="fr-FR")
    )
    with pytest.raises(InvalidArgument) as raised:
        messages.validate_recommend(request)
    assert violations(raised) == {"context.locale": "required: en-US or zh-CN"}
    request.context.locale = "zh-CN"
    messages.validate_recommend(request)


@pytest.mark.parametrize("experiment_id", ["", "Exp", "-lead", "x" * 65])
def test_experiment_id_is_checked(experiment_id: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        messages.experiment_id_from_proto(experiment_id)
    assert violations(raised) == {"experiment_id": "required: 1-64 characters of [a-z0-9-]"}


def test_valid_experiment_id_passes_through() -> None:
    assert messages.experiment_id_from_proto("exp-1") == "exp-1"


def test_new_experiment_checks_arms_then_the_idempotency_key() -> None:
    request = F.CreateExperimentRequest(
        experiment_id="exp-1",
        display_name="Copy test",
        arms=[
            F.Arm(arm_id="control", strategy=F.ARM_STRATEGY_GENERIC_COPY, traffic_weight=1),
            F.Arm(arm_id="bandit", strategy=F.ARM_STRATEGY_PERSONALISED_BANDIT, traffic_weight=2),
        ],
        idempotency_key="k" * 200,
    )
    with pytest.raises(InvalidArgument) as raised:
        messages.new_experiment_from_proto(request)
    assert list(violations(raised)) == ["idempotency_key"]
    request.idempotency_key = "key-1"
    assert messages.new_experiment_from_proto(request) == NewExperiment(
        "exp-1", "Copy test", RECORD.arms
    )
    del request.arms[1]
    with pytest.raises(InvalidArgument) as raised:
        messages.new_experiment_from_proto(request)
    assert violations(raised) == {"arms": "2 to 10 arms required"}


def test_baseline_must_be_an_arm_of_the_experiment() -> None:
    messages.check_baseline("", RECORD)
    messages.check_baseline("bandit", RECORD)
    with pytest.raises(InvalidArgument) as raised:
        messages.check_baseline("greedy", RECORD)
    assert violations(raised) == {
        "baseline_arm_id": "not an arm of this experiment: control, bandit"
    }


@pytest.mark.parametrize("window_days", [-1, 366])
def test_retrain_window_days_is_bounded(window_days: int) -> None:
    with pytest.raises(InvalidArgument) as raised:
        messages.retrain_from_proto(F.RetrainModelRequest(window_days=window_days))
    assert violations(raised) == {"window_days": "must be between 0 and 365"}


def test_retrain_request_and_reply() -> None:
    assert messages.retrain_from_proto(
        F.RetrainModelRequest(window_days=30, idempotency_key="key-1")
    ) == (30, "key-1")
    reply = messages.retrain_to_proto(RetrainOutcome("v3", True, "promoted: ..."))
    assert reply == F.RetrainModelResponse(
        model_version="v3", promoted=True, reason="promoted: ..."
    )


def test_train_model_request_and_result() -> None:
    request = messages.train_model_request(TrainRequest(100.0, 180.0, 180.0, 201.0, "key-1"))
    assert request.train_window.start_time.seconds == 100
    assert request.train_window.end_time.seconds == 180
    assert request.eval_window.start_time.seconds == 180
    assert request.eval_window.end_time.seconds == 201
    assert request.promote_if_better and request.idempotency_key == "key-1"
    reply = prediction_pb2.TrainModelResponse(promoted=True)
    reply.model_version.version = "v4"
    reply.model_version.metrics.ctr.auc = 0.75
    result = messages.train_result_from_proto(reply)
    assert (result.model_version, result.promoted, result.ctr_auc) == ("v4", True, 0.75)


def test_experiments_page_carries_a_token_only_when_more_follow() -> None:
    last = messages.experiments_page_to_proto(ExperimentPage([RECORD], more=False))
    assert last.next_page_token == ""
    assert [e.experiment_id for e in last.experiments] == ["exp-1"]
    more = messages.experiments_page_to_proto(ExperimentPage([RECORD], more=True))
    page = messages.page_from_proto(F.ListExperimentsRequest(page_token=more.next_page_token))
    assert page.after == "exp-1"


def test_outcomes_reply_lists_rejections() -> None:
    from copyloop.fusion.store import OutcomeIn

    event = OutcomeIn(2, "ev-2", "rq_1", "im_1", "click", 0.0, 0.0)
    reply = messages.outcomes_to_proto(3, 1, [(event, "impression_id: unknown")])
    assert (reply.accepted, reply.duplicate, reply.rejected) == (3, 1, 1)
    assert list(reply.rejection_reasons) == ["events[2] (ev-2): impression_id: unknown"]


def test_undefined_lift_is_nan_in_the_report() -> None:
    from copyloop.fusion.domain import ExperimentReportResult
    from copyloop.fusion.experiments import ArmCounts, build_report

    report = build_report([ArmCounts("control"), ArmCounts("bandit")])
    reply = messages.report_to_proto(ExperimentReportResult(RECORD, report, b"png"))
    assert reply.chart_png == b"png" and reply.baseline_arm_id == "control"
    assert all(math.isnan(a.ctr_lift) for a in reply.arms)


def test_report_slices_carry_segment_angle_and_a_wilson_interval() -> None:
    from copyloop.fusion.domain import ExperimentReportResult
    from copyloop.fusion.experiments import ArmCounts, SliceCounts, build_report

    report = build_report([ArmCounts("control"), ArmCounts("bandit")])
    cell = SliceCounts("bandit", "deal_seeker", "value", impressions=40, clicks=4, purchases=1)
    reply = messages.report_to_proto(ExperimentReportResult(RECORD, report, b"", [cell]))
    (out,) = reply.slices
    assert (out.arm_id, out.segment, out.angle) == ("bandit", "deal_seeker", "value")
    assert (out.impressions, out.clicks, out.purchases) == (40, 4, 1)
    assert out.ctr == 0.1
    assert 0.0 < out.ctr_interval.lower < 0.1 < out.ctr_interval.upper < 0.3
