"""The promotion gate: should a candidate model replace the live one? A pure decision over the
two versions' metrics on the same later window (the candidate's evaluation window), so the
rule can be tested without training anything and every decision says which criterion held.

Rules (all must hold; thresholds are `GateThresholds`, set from PredictionSettings):

1. **AUC not significantly worse**: the upper bound of the 90% paired-bootstrap interval of
   the AUC delta (candidate - live, ctcvr where conversions vary, else ctr) is at least
   `-auc_tolerance`.
2. **Better somewhere**: AUC significantly better (the interval's lower bound > 0) *or* log
   loss lower by at least `min_logloss_gain` (relative) with an AUC point estimate no more
   than `RANKING_SLACK` (0.01, or the AUC tolerance if larger) below the live one's. A model
   that only ties is not worth a swap: every swap costs cached state and risks the unknown.
3. **Calibration not worse**: the candidate's ECE exceeds the live one's by at most
   `ece_tolerance` (served pCTR feeds bids and the bandit's prior, so calibration matters
   beyond ranking).
4. **Off-policy value not significantly lower** (only when both versions have a SNIPS
   estimate of their greedy copy choice on the window): the candidate's SNIPS is not below
   the live one's by more than `off_policy_z` standard errors of the difference (standard
   errors read off each 95% interval; treating them as independent is conservative, since
   both are computed on the same rows).

The first model (nothing live) is held to the same rules twice: against the cold-start prior it
would replace (scored on the same window; a model fit on a few clicks can rank worse than the
prior's category affinity) and against the popularity baseline fit on its training window (a
model that cannot beat per-item popularity has learned nothing worth serving).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from copyloop.prediction.training.evaluation import TaskMetrics

_Z95 = NormalDist().inv_cdf(0.975)
RANKING_SLACK = 0.01  # AUC points a log-loss win may cost


@dataclass(frozen=True)
class GateThresholds:
    auc_tolerance: float = 0.0  # how far the AUC interval may sit below 0 at its top
    min_logloss_gain: float = 0.001  # relative log-loss improvement that counts as better
    ece_tolerance: float = 0.005  # absolute ECE increase allowed
    off_policy_z: float = 1.96  # SNIPS shortfall, in standard errors, that refuses


@dataclass(frozen=True)
class Snips:
    """A SNIPS estimate with its 95% interval (clicks per impression)."""

    value: float
    low: float
    high: float

    @classmethod
    def from_estimate(cls, estimate: dict[str, Any] | None) -> Snips | None:
        """From OffPolicyEstimate.to_dict(); None when absent or undefined."""
        snips = (estimate or {}).get("snips") or {}
        values = [snips.get(k) for k in ("value", "low", "high")]
        if any(v is None or not math.isfinite(v) for v in values):
            return None
        return cls(*(float(v) for v in values))  # type: ignore[arg-type]

    @property
    def standard_error(self) -> float:
        # Bounds are clipped to [0, 1]: the wider side is the unclipped one.
        return max(self.value - self.low, self.high - self.value) / _Z95


@dataclass(frozen=True)
class GateInput:
    """Candidate and live (or baseline) on the same impressions."""

    task: str  # "ctcvr" or "ctr": the task the AUC delta is measured on
    candidate: TaskMetrics
    live: TaskMetrics
    auc_delta: float
    auc_delta_ci: tuple[float, float]  # 90% paired bootstrap
    candidate_snips: Snips | None = None
    live_snips: Snips | None = None
    live_name: str = "live"


@dataclass(frozen=True)
class Criterion:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    criteria: tuple[Criterion, ...]

    @property
    def reason(self) -> str:
        """Every criterion, failed ones first, on one line."""
        ordered = sorted(self.criteria, key=lambda c: c.passed)
        return "; ".join(f"{'ok' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in ordered)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.criteria if not c.passed)


def decide(evidence: GateInput, thresholds: GateThresholds | None = None) -> GateDecision:
    """Promote or refuse, with the outcome of each rule (see the module docstring)."""
    e, t = evidence, thresholds or GateThresholds()
    low, high = e.auc_delta_ci
    auc_text = f"{e.task} AUC delta {e.auc_delta:+.4f} (90% CI {low:+.4f}..{high:+.4f})"
    # An undefined interval (one class only) is neither evidence of harm nor of gain.
    not_worse = not (high < -t.auc_tolerance)
    auc_better = low > 0
    c_ll, l_ll = e.candidate.logloss, e.live.logloss
    ll_better = (
        math.isfinite(c_ll) and math.isfinite(l_ll) and c_ll <= l_ll * (1 - t.min_logloss_gain)
    )
    # Log loss alone counts only when the candidate ranks about as well on the point estimate
    # (within RANKING_SLACK, or the AUC tolerance if larger): a model with AUC 0.50 once
    # passed on a log loss 0.1% lower, because on a small window "not significantly worse"
    # was true of a model that ranked at random.
    ranks_as_well = math.isfinite(e.auc_delta) and e.auc_delta >= -max(
        t.auc_tolerance, RANKING_SLACK
    )
    criteria = [
        Criterion("auc_not_worse", not_worse, auc_text),
        Criterion(
            "better",
            auc_better or (ll_better and ranks_as_well),
            f"AUC {'significantly better' if auc_better else 'gain within noise'}"
            f"{'' if auc_better or ranks_as_well else ' and lower'}, "
            f"log loss {c_ll:.4f} vs {e.live_name} {l_ll:.4f}"
            f" ({'better' if ll_better else 'not better'} by >= {t.min_logloss_gain:.1%})",
        ),
    ]
    ece_increase = e.candidate.ece - e.live.ece
    criteria.append(
        Criterion(
            "calibration",
            not (ece_increase > t.ece_tolerance),
            f"ECE {e.candidate.ece:.4f} vs {e.live_name} {e.live.ece:.4f} "
            f"(change {ece_increase:+.4f}, tolerance {t.ece_tolerance:.4f})",
        )
    )
    if e.candidate_snips is not None and e.live_snips is not None:
        c, lv = e.candidate_snips, e.live_snips
        se = math.hypot(c.standard_error, lv.standard_error)
        z = (c.value - lv.value) / se if se > 0 else 0.0
        criteria.append(
            Criterion(
                "off_policy",
                not (z < -t.off_policy_z),
                f"off-policy SNIPS {c.value:.4f} [{c.low:.4f}, {c.high:.4f}] vs {e.live_name} "
                f"{lv.value:.4f} [{lv.low:.4f}, {lv.high:.4f}] (z {z:+.2f})",
            )
        )
    return GateDecision(all(c.passed for c in criteria), tuple(criteria))
