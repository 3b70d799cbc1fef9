"""Compare a candidate version with the live one on the same evaluation data: metrics of both,
a paired-bootstrap interval of the AUC delta (pCTCVR where conversions vary: the quantity the
ranking objective uses), both versions' off-policy estimates where the log allows, and the
promotion gate's decision over all of it (rules in `copyloop.prediction.training.gate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from copyloop.prediction.features.types import TrainingExample
from copyloop.prediction.model.predictions import Predictions
from copyloop.prediction.model.version import ModelVersion
from copyloop.prediction.training.evaluation import TaskMetrics, auc, evaluate
from copyloop.prediction.training.gate import (
    GateDecision,
    GateInput,
    GateThresholds,
    Snips,
    decide,
)
from copyloop.prediction.training.trainer import off_policy_estimate

DEFAULT_THRESHOLDS = GateThresholds()


@dataclass(frozen=True)
class VersionComparison:
    candidate_id: str
    live_id: str
    candidate: dict[str, TaskMetrics]
    live: dict[str, TaskMetrics]
    auc_delta: float  # ctcvr AUC, candidate - live
    auc_delta_ci: tuple[float, float]  # 90% paired-bootstrap interval
    candidate_better: bool
    reason: str
    # name -> OffPolicyEstimate.to_dict() of each version's greedy copy choice, when the
    # impressions carry propensities and alternatives (the gate's off-policy rule reads them).
    off_policy: dict[str, dict[str, Any]] = field(default_factory=dict)
    task: str = "ctcvr"
    decision: GateDecision | None = None

    def gate_input(self) -> GateInput:
        return GateInput(
            self.task,
            self.candidate[self.task],
            self.live[self.task],
            self.auc_delta,
            self.auc_delta_ci,
            Snips.from_estimate(self.off_policy.get("candidate")),
            Snips.from_estimate(self.off_policy.get("live")),
            self.live_id,
        )

    def judged(self, thresholds: GateThresholds) -> VersionComparison:
        """This comparison with the gate's decision (and its reason) filled in."""
        decision = decide(self.gate_input(), thresholds)
        return replace(
            self, candidate_better=decision.promote, reason=decision.reason, decision=decision
        )


def _bootstrap_auc_delta(
    labels: NDArray[Any], cand: NDArray[Any], live: NDArray[Any], rounds: int, seed: int
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    deltas = []
    n = labels.size
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        y = labels[idx]
        if y.min() == y.max():
            continue
        deltas.append(auc(y, cand[idx]) - auc(y, live[idx]))
    if not deltas:
        return float("nan"), float("nan")
    return float(np.quantile(deltas, 0.05)), float(np.quantile(deltas, 0.95))


def compare_predictions(
    candidate: Predictions,
    live: Predictions,
    clicked: NDArray[Any],
    converted: NDArray[Any],
    candidate_id: str = "candidate",
    live_id: str = "live",
    thresholds: GateThresholds = DEFAULT_THRESHOLDS,
    rounds: int = 200,
    seed: int = 0,
) -> VersionComparison:
    """Compare two sets of predictions on the same impressions and apply the gate."""
    clicked = np.asarray(clicked, dtype=bool)
    converted = np.asarray(converted, dtype=bool) & clicked
    cand_metrics = evaluate(candidate, clicked, converted)
    live_metrics = evaluate(live, clicked, converted)
    task = "ctcvr" if converted.any() and not converted.all() else "ctr"
    labels = converted if task == "ctcvr" else clicked
    cand_scores = candidate.p_ctcvr if task == "ctcvr" else candidate.p_ctr
    live_scores = live.p_ctcvr if task == "ctcvr" else live.p_ctr
    delta = cand_metrics[task].auc - live_metrics[task].auc
    low, high = _bootstrap_auc_delta(labels.astype(np.int8), cand_scores, live_scores, rounds, seed)
    return VersionComparison(
        candidate_id,
        live_id,
        cand_metrics,
        live_metrics,
        delta,
        (low, high),
        False,
        "",
        task=task,
    ).judged(thresholds)


def compare_versions(
    candidate: ModelVersion,
    live: ModelVersion,
    examples: Sequence[TrainingExample],
    thresholds: GateThresholds = DEFAULT_THRESHOLDS,
    rounds: int = 200,
    seed: int = 0,
) -> VersionComparison:
    """Score the same impressions with both versions and apply `compare_predictions`; where
    the impressions carry propensities and alternatives, add both versions' off-policy
    estimates to the comparison and its reason."""
    clicked = np.asarray([e.clicked for e in examples], dtype=bool)
    converted = np.asarray([e.clicked and e.converted for e in examples], dtype=bool)
    cand_preds = candidate.predict_examples(examples)
    live_preds = live.predict_examples(examples)
    comparison = compare_predictions(
        cand_preds,
        live_preds,
        clicked,
        converted,
        candidate.version_id,
        live.version_id,
        thresholds,
        rounds,
        seed,
    )
    estimates = {
        name: off_policy_estimate(version, examples, preds.p_ctr)
        for name, version, preds in (
            ("candidate", candidate, cand_preds),
            ("live", live, live_preds),
        )
    }
    if not all(e is not None and e.n for e in estimates.values()):
        return comparison
    found = {name: e.to_dict() for name, e in estimates.items() if e is not None}
    return replace(comparison, off_policy=found).judged(thresholds)
