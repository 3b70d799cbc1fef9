"""Off-policy value of a candidate model's greedy copy choice, from the logged choices.

Why: AUC says how well a model ranks impressions that were shown; it does not say how many
clicks the copy that model would *choose* would get. When serving logs the probability of each
choice (the propensity) and the copies it did not choose, inverse propensity scoring answers
that from the log alone (Horvitz-Thompson; Dudik et al. 2011, "Doubly Robust Policy
Evaluation"; Swaminathan & Joachims 2015 for the self-normalised form):

    IPS   = mean_i( click_i * pi(chosen_i) / p_i )
    SNIPS = sum_i( click_i * pi(chosen_i) / p_i ) / sum_i( pi(chosen_i) / p_i )

where pi is the candidate policy's probability of choosing the logged copy (greedy on pCTR,
ties split evenly) and p_i the logging propensity. IPS is unbiased when every copy the
candidate picks had a positive logging probability; SNIPS trades a small bias for much lower
variance. 95% intervals use the normal approximation (the delta method for SNIPS's ratio),
their bounds clipped to [0, 1], where a click rate lies; with few clicks among the rows the
candidate agrees on (see `effective_sample_size`) they are rough.
Pure numpy: callers score the copies, this module only combines the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Scores this close count as a tie (batched inference is not bit-stable across batch shapes).
TIE_RTOL = 1e-9
TIE_ATOL = 1e-12


@dataclass(frozen=True)
class Interval:
    """A point estimate with its (1 - alpha) confidence interval; NaN when undefined."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class OffPolicyEstimate:
    """What a candidate greedy policy would earn (clicks per impression) on the logged rows."""

    ips: Interval
    snips: Interval
    logging: Interval  # the logging policy's own value (mean click) on the same rows
    n: int  # rows used: propensity > 0 and at least one alternative
    n_excluded: int  # rows without a propensity or without alternatives
    effective_sample_size: float  # Kish: (sum w)^2 / sum w^2 with w = pi / p
    agreement: float  # mean pi(chosen): how often the candidate would pick the logged copy
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN -> None: PostgreSQL's JSON rejects NaN)."""
        return _json_safe(asdict(self))


def greedy_probabilities(
    chosen_scores: ArrayLike, alternative_scores: ArrayLike, alternative_counts: ArrayLike
) -> NDArray[np.float64]:
    """pi(chosen) per row for the policy that picks the highest score, ties split evenly.

    `alternative_scores` is flat: row i's alternatives are the next `alternative_counts[i]`
    entries (rows in order), so callers can score every alternative in one batch.
    """
    chosen = np.asarray(chosen_scores, dtype=np.float64)
    flat = np.asarray(alternative_scores, dtype=np.float64)
    counts = np.asarray(alternative_counts, dtype=np.int64)
    if chosen.shape != counts.shape or int(counts.sum()) != flat.size or (counts < 0).any():
        raise ValueError("alternative_counts must sum to the number of alternative scores")
    width = 1 + int(counts.max(initial=0))
    scores = np.full((chosen.size, width), -np.inf)
    scores[:, 0] = chosen
    rows = np.repeat(np.arange(chosen.size), counts)
    starts = np.cumsum(counts) - counts
    cols = 1 + np.arange(flat.size) - np.repeat(starts, counts)
    scores[rows, cols] = flat
    best = scores.max(axis=1, keepdims=True)
    top = np.isclose(scores, best, rtol=TIE_RTOL, atol=TIE_ATOL) & np.isfinite(scores)
    ties = top.sum(axis=1)
    return np.where(top[:, 0], 1.0 / np.maximum(ties, 1), 0.0)


def estimate(
    clicks: ArrayLike,
    propensities: ArrayLike,
    target_probabilities: ArrayLike,
    eligible: ArrayLike | None = None,
    confidence: float = 0.95,
) -> OffPolicyEstimate:
    """IPS and SNIPS of a target policy with pi(chosen) = `target_probabilities`.

    Rows take part when their propensity is in (0, 1] and `eligible` (default: all) is true;
    the rest are counted in `n_excluded`.
    """
    y = np.asarray(clicks, dtype=np.float64)
    p = np.asarray(propensities, dtype=np.float64)
    pi = np.asarray(target_probabilities, dtype=np.float64)
    if not (y.shape == p.shape == pi.shape):
        raise ValueError("clicks, propensities and target probabilities must have one shape")
    use = np.isfinite(p) & (p > 0) & (p <= 1)
    if eligible is not None:
        use &= np.asarray(eligible, dtype=bool)
    y, p, pi = y[use], p[use], pi[use]
    n = int(y.size)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    w = pi / p
    x = y * w
    nan = Interval(math.nan, math.nan, math.nan)
    if n == 0:
        return OffPolicyEstimate(nan, nan, nan, 0, int(use.size), 0.0, math.nan, confidence)
    ips = _mean_interval(x, z)
    logging = _mean_interval(y, z)
    total = float(w.sum())
    if total > 0:
        value = float(x.sum() / total)
        # Delta method for a ratio of means: Var ~ sum w^2 (y - V)^2 / (sum w)^2.
        se = float(math.sqrt(float(np.sum((x - value * w) ** 2))) / total)
        se *= math.sqrt(n / (n - 1)) if n > 1 else math.nan
        snips = _interval(value, se, z)
        ess = total**2 / float(np.sum(w**2))
    else:
        snips, ess = nan, 0.0
    return OffPolicyEstimate(
        ips=ips,
        snips=snips,
        logging=logging,
        n=n,
        n_excluded=int(use.size - n),
        effective_sample_size=float(ess),
        agreement=float(pi.mean()),
        confidence=confidence,
    )


def evaluate_greedy(
    clicks: ArrayLike,
    propensities: ArrayLike,
    chosen_scores: ArrayLike,
    alternative_scores: ArrayLike,
    alternative_counts: ArrayLike,
    confidence: float = 0.95,
) -> OffPolicyEstimate:
    """The candidate's greedy policy (highest score among the chosen copy and its
    alternatives) evaluated on the logged rows; rows without alternatives are excluded."""
    counts = np.asarray(alternative_counts, dtype=np.int64)
    pi = greedy_probabilities(chosen_scores, alternative_scores, counts)
    return estimate(clicks, propensities, pi, eligible=counts > 0, confidence=confidence)


def flatten(alternatives: Sequence[Sequence[float]]) -> tuple[NDArray[np.float64], NDArray[Any]]:
    """Ragged per-row alternative scores -> (flat scores, counts) for `greedy_probabilities`."""
    counts = np.asarray([len(a) for a in alternatives], dtype=np.int64)
    flat = [float(s) for a in alternatives for s in a]
    return np.asarray(flat, dtype=np.float64), counts


def _mean_interval(values: NDArray[np.float64], z: float) -> Interval:
    mean = float(values.mean())
    if values.size < 2:
        return Interval(mean, math.nan, math.nan)
    se = float(values.std(ddof=1) / math.sqrt(values.size))
    return _interval(mean, se, z)


def _interval(value: float, se: float, z: float) -> Interval:
    if not math.isfinite(se):
        return Interval(value, math.nan, math.nan)
    return Interval(value, max(0.0, value - z * se), min(1.0, value + z * se))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
