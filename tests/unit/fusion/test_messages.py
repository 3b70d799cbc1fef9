"""FusionService's request checks and conversions (`copyloop.fusion.messages`): every field
violation the servicer used to raise itself is raised here, with the same field and text."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from copyloop.common import pagination
from copyloop.common.errors import InvalidArgument
from copyloop.fusion import messages
from copyloop.fusion.domain import (
    ExperimentPage,
    NewExperiment,
    RetrainOutcome,
    TrainRequest,
)
from copyloop.fusion.performance import CreativePerformance, PerformanceKey, PerformancePage
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


# ---- arms that pin a copywriter or prompt template version ----------------------------------


def experiment_request(*arms: F.Arm) -> F.CreateExperimentRequest:
    return F.CreateExperimentRequest(experiment_id="exp-v", arms=list(arms))


BANDIT = F.ARM_STRATEGY_PERSONALISED_BANDIT


def test_arm_versions_are_parsed_and_returned() -> None:
    new = messages.new_experiment_from_proto(
        experiment_request(
            F.Arm(arm_id="v1", strategy=BANDIT, traffic_weight=1, copywriter_version="1"),
            F.Arm(
                arm_id="v2",
                strategy=BANDIT,
                traffic_weight=1,
                copywriter_version="2",
                prompt_template_version="v3",
            ),
            F.Arm(arm_id="any", strategy=F.ARM_STRATEGY_GENERIC_COPY, traffic_weight=1),
        )
    )
    assert new.arms == (
        ArmSpec("v1", "ARM_STRATEGY_PERSONALISED_BANDIT", 1.0, "1", ""),
        ArmSpec("v2", "ARM_STRATEGY_PERSONALISED_BANDIT", 1.0, "2", "v3"),
        ArmSpec("any", "ARM_STRATEGY_GENERIC_COPY", 1.0, "", ""),
    )
    record = ExperimentRecord(
        "exp-v", "", new.arms, "running", datetime(2025, 6, 1, tzinfo=UTC), None
    )
    arms = messages.experiment_to_proto(record).arms
    assert [(a.copywriter_version, a.prompt_template_version) for a in arms] == [
        ("1", ""),
        ("2", "v3"),
        ("", ""),
    ]


def test_arm_versions_are_checked() -> None:
    with pytest.raises(InvalidArgument) as raised:
        messages.new_experiment_from_proto(
            experiment_request(
                F.Arm(arm_id="a", strategy=BANDIT, traffic_weight=1, copywriter_version="2 beta"),
                F.Arm(
                    arm_id="b",
                    strategy=BANDIT,
                    traffic_weight=1,
                    copywriter_version="x" * 65,
                    prompt_template_version="t" * 33,
                ),
                F.Arm(
                    arm_id="c",
                    strategy=F.ARM_STRATEGY_GENERIC_COPY,
                    traffic_weight=1,
                    prompt_template_version="v2",
                ),
            )
        )
    found = violations(raised)
    assert set(found) == {
        "arms[0].copywriter_version",
        "arms[1].copywriter_version",
        "arms[1].prompt_template_version",
        "arms[2].strategy",
    }
    assert "1-64 characters" in found["arms[0].copywriter_version"]
    assert "1-32 characters" in found["arms[1].prompt_template_version"]
    assert "GENERIC_COPY" in found["arms[2].strategy"]


def test_arm_version_limits_are_in_the_edge_scan() -> None:
    """The generic scan knows the columns too, so an over-long version is refused before any
    other check (and by the same rule the hostile-input suite relies on)."""
    request = experiment_request(
        F.Arm(arm_id="a", strategy=BANDIT, traffic_weight=1, copywriter_version="1" * 65),
        F.Arm(arm_id="b", strategy=BANDIT, traffic_weight=1, prompt_template_version="\x00"),
    )
    with pytest.raises(InvalidArgument) as raised:
        messages.validate_request(request)
    assert set(violations(raised)) == {
        "arms[0].copywriter_version",
        "arms[1].prompt_template_version",
    }


# ---- ListCreativePerformance ----------------------------------------------------------------


def test_performance_query_defaults() -> None:
    query = messages.performance_query_from_proto(F.ListCreativePerformanceRequest())
    assert (query.segment, query.min_impressions, query.size, query.after) == ("", 1, 100, None)


def test_performance_query_reports_every_bad_field_at_once() -> None:
    with pytest.raises(InvalidArgument) as raised:
        messages.performance_query_from_proto(
            F.ListCreativePerformanceRequest(
                page_size=1001, min_impressions=-1, segment="s" * 129, page_token="garbage"
            )
        )
    assert set(violations(raised)) == {"page_size", "min_impressions", "segment", "page_token"}


def _page(*lifts: float) -> PerformancePage:
    return PerformancePage(
        [
            CreativePerformance(f"cr_{n}", "sku", "deal", "value", 100, 5, 4.0, lift)
            for n, lift in enumerate(lifts)
        ],
        more=True,
    )


def test_performance_token_continues_after_the_last_row_and_is_bound_to_the_filters() -> None:
    query = messages.performance_query_from_proto(
        F.ListCreativePerformanceRequest(page_size=2, segment="deal", min_impressions=50)
    )
    reply = messages.performance_page_to_proto(_page(1.5, 1.25), query)
    assert [c.creative_id for c in reply.creatives] == ["cr_0", "cr_1"]
    assert reply.creatives[0].lift_interval.lower < 1.5 < reply.creatives[0].lift_interval.upper
    token = reply.next_page_token
    following = messages.performance_query_from_proto(
        F.ListCreativePerformanceRequest(
            page_size=2, segment="deal", min_impressions=50, page_token=token
        )
    )
    assert following.after == PerformanceKey(1.25, "cr_1", "deal")
    # The same token with other filters would page another listing: refused.
    for other in (
        F.ListCreativePerformanceRequest(segment="other", min_impressions=50, page_token=token),
        F.ListCreativePerformanceRequest(segment="deal", min_impressions=10, page_token=token),
    ):
        with pytest.raises(InvalidArgument) as raised:
            messages.performance_query_from_proto(other)
        assert violations(raised) == {"page_token": "was issued for a different filter"}


def test_performance_last_page_has_no_token() -> None:
    query = messages.performance_query_from_proto(F.ListCreativePerformanceRequest())
    page = _page(1.1)
    last = PerformancePage(page.creatives, more=False)
    assert messages.performance_page_to_proto(last, query).next_page_token == ""


def test_a_token_whose_key_is_not_a_performance_key_is_refused() -> None:
    forged = pagination.next_token(
        "exp-1", messages._performance_filters("", 1)
    )  # a well-formed token of this listing's filters, with another listing's key
    with pytest.raises(InvalidArgument) as raised:
        messages.performance_query_from_proto(F.ListCreativePerformanceRequest(page_token=forged))
    assert violations(raised) == {"page_token": "is not a token this service issued"}
