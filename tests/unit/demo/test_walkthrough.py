"""The walkthrough says plainly whether an experiment's differences are significant yet."""

from __future__ import annotations

from copyloop.demo.walkthrough import verdicts
from copyloop.v1 import fusion_pb2

F = fusion_pb2


def arm(arm_id: str, lift: float, low: float, high: float) -> F.ArmReport:
    return F.ArmReport(
        arm_id=arm_id, ctr_lift=lift, ctr_lift_interval=F.Interval(lower=low, upper=high)
    )


def test_an_interval_spanning_zero_is_not_significant_yet() -> None:
    report = F.GetExperimentReportResponse(
        baseline_arm_id="personalised",
        arms=[
            arm("personalised", 0.0, 0.0, 0.0),
            arm("random-copy", -0.027, -0.33, 0.42),
            arm("generic-copy", -0.40, -0.60, -0.10),
        ],
    )
    lines = verdicts(report)
    assert len(lines) == 2
    assert "random-copy vs personalised: not significant yet" in lines[0]
    assert "generic-copy is significantly worse than personalised" in lines[1]
