"""The promotion gate, rule by rule: for each criterion a case that promotes and one that is
refused by that criterion alone, plus the whole path from predictions to a decision."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from copyloop.prediction.model.predictions import Predictions
from copyloop.prediction.training.compare import compare_predictions
from copyloop.prediction.training.evaluation import TaskMetrics
from copyloop.prediction.training.gate import (
    GateInput,
    GateThresholds,
    Snips,
    decide,
)


def metrics(logloss: float = 0.30, ece: float = 0.010, auc: float = 0.70) -> TaskMetrics:
    return TaskMetrics(
        n=5000,
        positives=400,
        base_rate=0.08,
        mean_prediction=0.08,
        auc=auc,
        logloss=logloss,
        ece=ece,
    )


# A candidate that passes everything: AUC significantly better, log loss better, ECE equal,
# SNIPS equal. Each case below changes one thing.
BASE = GateInput(
    task="ctcvr",
    candidate=metrics(logloss=0.29),
    live=metrics(),
    auc_delta=0.03,
    auc_delta_ci=(0.01, 0.05),
    candidate_snips=Snips(0.10, 0.09, 0.11),
    live_snips=Snips(0.10, 0.09, 0.11),
)

CASES: list[tuple[str, GateInput, bool, tuple[str, ...]]] = [
    ("all better", BASE, True, ()),
    # auc_not_worse
    (
        "auc slightly lower, within noise, log loss better",
        replace(BASE, auc_delta=-0.005, auc_delta_ci=(-0.02, 0.01)),
        True,
        (),
    ),
    (
        "auc significantly worse",
        replace(BASE, auc_delta=-0.03, auc_delta_ci=(-0.05, -0.01)),
        False,
        ("auc_not_worse", "better"),  # and the log-loss gain does not pay for 0.03 of AUC
    ),
    # better: AUC or log loss
    (
        "auc better, log loss equal",
        replace(BASE, candidate=metrics()),
        True,
        (),
    ),
    (
        "auc within noise, log loss better",
        replace(BASE, auc_delta=0.002, auc_delta_ci=(-0.01, 0.015)),
        True,
        (),
    ),
    (
        "auc lower within noise, log loss better: a model that ranks at random is refused",
        replace(BASE, auc_delta=-0.16, auc_delta_ci=(-0.40, 0.09)),
        False,
        ("better",),
    ),
    (
        "auc within noise, log loss equal",
        replace(BASE, candidate=metrics(), auc_delta=0.002, auc_delta_ci=(-0.01, 0.015)),
        False,
        ("better",),
    ),
    (
        "auc within noise, log loss better by less than the minimum gain",
        replace(BASE, candidate=metrics(logloss=0.2999), auc_delta=0.0, auc_delta_ci=(-0.01, 0.01)),
        False,
        ("better",),
    ),
    # calibration
    (
        "ece worse within tolerance",
        replace(BASE, candidate=metrics(logloss=0.29, ece=0.014)),
        True,
        (),
    ),
    (
        "ece worse beyond tolerance",
        replace(BASE, candidate=metrics(logloss=0.29, ece=0.030)),
        False,
        ("calibration",),
    ),
    # off-policy
    (
        "snips lower within noise",
        replace(BASE, candidate_snips=Snips(0.095, 0.085, 0.105)),
        True,
        (),
    ),
    (
        "snips significantly lower",
        replace(BASE, candidate_snips=Snips(0.06, 0.05, 0.07)),
        False,
        ("off_policy",),
    ),
    (
        "no off-policy estimate for live: rule not applied",
        replace(BASE, candidate_snips=Snips(0.06, 0.05, 0.07), live_snips=None),
        True,
        (),
    ),
    # several at once: every failure is named
    (
        "worse on everything",
        replace(
            BASE,
            candidate=metrics(logloss=0.40, ece=0.05),
            auc_delta=-0.1,
            auc_delta_ci=(-0.12, -0.08),
            candidate_snips=Snips(0.05, 0.04, 0.06),
        ),
        False,
        ("auc_not_worse", "better", "calibration", "off_policy"),
    ),
]


@pytest.mark.parametrize(
    ("evidence", "promote", "failed"),
    [pytest.param(e, p, f, id=name) for name, e, p, f in CASES],
)
def test_gate_decides_each_criterion(
    evidence: GateInput, promote: bool, failed: tuple[str, ...]
) -> None:
    decision = decide(evidence)
    assert decision.promote is promote
    assert decision.failed == failed
    names = {c.name for c in decision.criteria}
    assert {"auc_not_worse", "better", "calibration"} <= names
    assert ("off_policy" in names) == (
        evidence.candidate_snips is not None and evidence.live_snips is not None
    )
    # The reason lists every criterion, failed ones first.
    assert decision.reason.count("; ") == len(decision.criteria) - 1
    if failed:
        assert decision.reason.startswith(f"FAIL {failed[0]}:")


def test_thresholds_are_settings_not_constants() -> None:
    lenient = GateThresholds(ece_tolerance=0.05, auc_tolerance=0.02)
    ece = replace(BASE, candidate=metrics(logloss=0.29, ece=0.030))
    assert not decide(ece).promote and decide(ece, lenient).promote
    auc = replace(BASE, auc_delta=-0.02, auc_delta_ci=(-0.03, -0.01))
    assert not decide(auc).promote and decide(auc, lenient).promote
    strict = GateThresholds(min_logloss_gain=0.1)
    ll = replace(BASE, auc_delta=0.0, auc_delta_ci=(-0.01, 0.01))
    assert decide(ll).promote and not decide(ll, strict).promote


def test_snips_from_an_estimate_dict() -> None:
    assert Snips.from_estimate({"snips": {"value": 0.1, "low": 0.05, "high": 0.15}}) == Snips(
        0.1, 0.05, 0.15
    )
    assert Snips.from_estimate({"snips": {"value": 0.1, "low": None, "high": None}}) is None
    assert Snips.from_estimate(None) is None


def test_predictions_that_rank_better_promote_and_the_reverse_is_refused() -> None:
    """From raw predictions: a calibrated model that knows the click probability against one
    that predicts the base rate everywhere."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.3, 4000)
    clicked = rng.random(4000) < p
    converted = clicked & (rng.random(4000) < 0.3)
    good = Predictions(p, np.full(4000, 0.3))
    flat = Predictions(np.full(4000, clicked.mean()), np.full(4000, 0.3))
    better = compare_predictions(good, flat, clicked, converted, "good", "flat", rounds=60)
    assert better.candidate_better and better.decision is not None and better.decision.promote
    assert better.reason.startswith("ok ")
    worse = compare_predictions(flat, good, clicked, converted, "flat", "good", rounds=60)
    assert not worse.candidate_better
    assert worse.decision is not None and "auc_not_worse" in worse.decision.failed
