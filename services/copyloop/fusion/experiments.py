"""Experiment assignment and the statistics behind GetExperimentReport.

Assignment hashes (experiment_id, user_id) with SHA-256 into [0, 1), so a user stays in one
arm for the experiment's life on every replica and after restarts, with no assignment table
needed on the hot path (the store may still record it for counting users).

Statistics, from per-arm counts only:
- CTR, CVR (purchases / clicks), revenue per impression;
- relative CTR lift over a baseline arm with a 95% interval by the delta method on the log of
  the CTR ratio (chosen over a bootstrap: closed form, no resampling cost, accurate at
  e-commerce sample sizes); a zero click count gets the Haldane-Anscombe +0.5 correction in
  the interval so it stays finite;
- the Bayesian probability that each arm has the best CTR, by Monte Carlo from
  Beta(1 + clicks, 1 + impressions - clicks) with a fixed seed (20,000 draws: standard error
  <= 0.0035, so within +-0.01 at ~3 sigma);
- both on *effective* counts: users, not impressions, are randomised, and shoppers differ far
  more from each other than impressions of one shopper do. Treating impressions as independent
  made a few heavy clickers in one arm look like a significant win (the walkthrough once
  reported random copy beating personalised copy with P(best) 0.97 from ~50 users per arm).
  The cluster-robust (delta-method) variance of the arm's CTR over its users, divided by the
  binomial variance, is the design effect (>= 1); impressions and clicks are divided by it;
- a sample-ratio-mismatch chi-square test of assigned users against the configured weights.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = [
    "ArmCounts",
    "ArmStats",
    "ExperimentReport",
    "LiftEstimate",
    "SrmResult",
    "assign",
    "build_report",
    "chi2_sf",
    "hash_unit",
    "probability_best",
    "relative_lift",
    "sample_ratio_test",
]

SRM_ALPHA = 0.001
DEFAULT_DRAWS = 20_000
DEFAULT_SEED = 20240601


# --- assignment ---------------------------------------------------------------------------
def hash_unit(user_id: str, experiment_id: str) -> float:
    """Stable position of a user in [0, 1) for one experiment (first 64 bits of SHA-256)."""
    digest = hashlib.sha256(f"{experiment_id}\x1f{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _normalised(weights: Sequence[float]) -> list[float]:
    if not weights:
        raise ValueError("an experiment needs at least one arm")
    if any(not (math.isfinite(w) and w > 0) for w in weights):
        raise ValueError(f"traffic weights must be finite and > 0, got {list(weights)}")
    total = float(sum(weights))
    return [w / total for w in weights]


def assign(user_id: str, experiment_id: str, arms: Sequence[tuple[str, float]]) -> str:
    """The arm this user sees, by hashing against the normalised cumulative weights.

    Arm order matters (it lays out the [0, 1) interval), so callers pass arms in their stored
    order; changing weights mid-experiment moves users, which is why weights are fixed at
    creation.
    """
    ids = [arm_id for arm_id, _ in arms]
    if len(set(ids)) != len(ids):
        raise ValueError(f"arm ids must be unique, got {ids}")
    shares = _normalised([weight for _, weight in arms])
    u = hash_unit(user_id, experiment_id)
    cumulative = 0.0
    for arm_id, share in zip(ids, shares, strict=True):
        cumulative += share
        if u < cumulative:
            return arm_id
    return ids[-1]  # u just below 1 with float rounding in the cumulative sum


# --- statistics ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ArmCounts:
    """What one arm accumulated, plus the traffic weight it was configured with."""

    arm_id: str
    users: int = 0
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0
    revenue: float = 0.0
    traffic_weight: float = 1.0
    # Per-user sums over the users with impressions (0 = unknown: impressions independent).
    shown_users: int = 0
    impressions_sq: float = 0.0  # sum of n_u^2
    clicks_sq: float = 0.0  # sum of c_u^2
    impressions_clicks: float = 0.0  # sum of n_u * c_u

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def design_effect(self) -> float:
        """Cluster-robust variance of the CTR over users / binomial variance, at least 1."""
        n, m = self.impressions, self.shown_users
        if m < 2 or n <= 0 or not 0 < self.clicks < n:
            return 1.0
        r = self.clicks / n
        spread = self.clicks_sq - 2 * r * self.impressions_clicks + r * r * self.impressions_sq
        clustered = m / (m - 1) * max(spread, 0.0) / (n * n)
        return max(1.0, clustered / (r * (1 - r) / n))

    @property
    def effective(self) -> tuple[float, float]:
        """(impressions, clicks) an arm of independent impressions with the same uncertainty
        would have."""
        d = self.design_effect
        return self.impressions / d, min(self.clicks, self.impressions) / d

    @property
    def cvr(self) -> float:
        return self.purchases / self.clicks if self.clicks else 0.0

    @property
    def revenue_per_impression(self) -> float:
        return self.revenue / self.impressions if self.impressions else 0.0


@dataclass(frozen=True)
class SliceCounts:
    """One (arm, shopper segment, copy angle) cell: which kind of copy worked for whom."""

    arm_id: str
    segment: str
    angle: str
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a rate: honest for the small cells a slice report has
    (it stays inside [0, 1] and is wide when there are few impressions)."""
    if trials <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class LiftEstimate:
    """Relative CTR lift (treatment / baseline - 1) with its 95% interval."""

    lift: float
    lower: float
    upper: float


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio-mismatch test: a tiny p-value means assignment or logging is broken."""

    chi_square: float
    p_value: float
    mismatch: bool


@dataclass(frozen=True)
class ArmStats:
    """One row of the report; `lift` is None when undefined (no baseline clicks/impressions)."""

    counts: ArmCounts
    lift: LiftEstimate | None
    probability_best: float

    @property
    def arm_id(self) -> str:
        return self.counts.arm_id


@dataclass(frozen=True)
class ExperimentReport:
    baseline_arm_id: str
    arms: list[ArmStats]
    srm: SrmResult


def relative_lift(
    treatment: ArmCounts, baseline: ArmCounts, confidence: float = 0.95
) -> LiftEstimate | None:
    """Delta-method interval on log(CTR_t / CTR_b): Var(log p) ~ (1 - p) / (n p) per arm, with
    n and clicks the arm's effective counts (see the module: users are the unit).

    None when the ratio is undefined: an arm without impressions or a baseline without clicks.
    """
    if treatment.impressions <= 0 or baseline.impressions <= 0 or baseline.clicks <= 0:
        return None
    lift = treatment.ctr / baseline.ctr - 1.0

    def corrected(arm: ArmCounts) -> tuple[float, float]:
        impressions, clicks = arm.effective
        if clicks <= 0 or clicks >= impressions:
            return clicks + 0.5, impressions + 1.0  # Haldane-Anscombe: keeps logs finite
        return clicks, impressions

    (ct, nt), (cb, nb) = corrected(treatment), corrected(baseline)
    pt, pb = ct / nt, cb / nb
    se = math.sqrt((1 - pt) / (nt * pt) + (1 - pb) / (nb * pb))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    log_ratio = math.log(pt / pb)
    return LiftEstimate(
        lift=lift,
        lower=math.exp(log_ratio - z * se) - 1.0,
        upper=math.exp(log_ratio + z * se) - 1.0,
    )


def probability_best(
    arms: Sequence[ArmCounts], draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED
) -> list[float]:
    """P(arm has the highest CTR) under independent Beta(1 + clicks, 1 + misses) posteriors
    of the arms' effective counts."""
    if not arms:
        return []
    rng = np.random.default_rng(seed)
    clicks = np.array([a.effective[1] for a in arms], dtype=np.float64)
    misses = np.array([a.effective[0] for a in arms], dtype=np.float64) - clicks
    samples = rng.beta(1.0 + clicks, 1.0 + misses, size=(draws, len(arms)))
    wins = np.bincount(samples.argmax(axis=1), minlength=len(arms))
    return [float(p) for p in wins / draws]


def _upper_gamma_q(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x): series below a + 1, continued fraction above."""
    if x <= 0:
        return 1.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    # Modified Lentz continued fraction (Numerical Recipes gcf).
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for a chi-square with `dof` degrees of freedom (no SciPy needed)."""
    if dof <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {dof}")
    return _upper_gamma_q(dof / 2.0, statistic / 2.0)


def sample_ratio_test(
    users: Sequence[int], weights: Sequence[float], alpha: float = SRM_ALPHA
) -> SrmResult:
    """Pearson chi-square of assigned users against the configured split (mismatch if p < alpha)."""
    if len(users) != len(weights):
        raise ValueError("one user count per configured weight")
    shares = _normalised(weights)
    total = sum(users)
    if total == 0 or len(users) < 2:
        return SrmResult(chi_square=0.0, p_value=1.0, mismatch=False)
    statistic = sum((n - total * s) ** 2 / (total * s) for n, s in zip(users, shares, strict=True))
    p_value = chi2_sf(statistic, len(users) - 1)
    return SrmResult(chi_square=statistic, p_value=p_value, mismatch=p_value < alpha)


def build_report(
    arms: Sequence[ArmCounts],
    baseline_arm_id: str = "",
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
) -> ExperimentReport:
    """Everything GetExperimentReport returns but the chart; the baseline defaults to arm one."""
    if not arms:
        raise ValueError("a report needs at least one arm")
    by_id = {a.arm_id: a for a in arms}
    if len(by_id) != len(arms):
        raise ValueError("arm ids must be unique")
    baseline_id = baseline_arm_id or arms[0].arm_id
    if baseline_id not in by_id:
        raise ValueError(f"baseline arm {baseline_id!r} is not one of {list(by_id)}")
    baseline = by_id[baseline_id]
    p_best = probability_best(arms, draws=draws, seed=seed)
    rows = []
    for arm, p in zip(arms, p_best, strict=True):
        if arm.arm_id == baseline_id:
            lift = LiftEstimate(0.0, 0.0, 0.0) if baseline.impressions and baseline.clicks else None
        else:
            lift = relative_lift(arm, baseline)
        rows.append(ArmStats(counts=arm, lift=lift, probability_best=p))
    srm = sample_ratio_test([a.users for a in arms], [a.traffic_weight for a in arms])
    return ExperimentReport(baseline_arm_id=baseline_id, arms=rows, srm=srm)
