"""The live guardrail: after a promotion, is the live model's served pCTR still telling the
truth? Offline gates judge a model on the past; traffic after the swap can differ (a new
catalog, a model that learned a logging artefact). The check compares the clicks observed on
impressions the live version scored with the clicks its served pCTR predicted:

    ratio = observed clicks / sum(served pCTR)
    z     = (observed - expected) / sqrt(sum p (1 - p))   (Poisson-binomial variance)

and rolls back when the ratio leaves [ratio_low, ratio_high] *and* |z| >= z, over at least
`min_impressions` impressions: the band says the error matters, the z-score says it is not
chance (a handful of lucky clicks on few impressions can double an observed CTR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class GuardrailThresholds:
    min_impressions: int = 1000
    ratio_low: float = 0.5
    ratio_high: float = 2.0
    z: float = 3.0


@dataclass(frozen=True)
class GuardrailDecision:
    rollback: bool
    judged: bool  # false while there are too few impressions to say anything
    impressions: int
    observed_clicks: int
    expected_clicks: float
    ratio: float
    z: float
    reason: str


def check_calibration(
    clicked: ArrayLike,
    served_p_ctr: ArrayLike,
    thresholds: GuardrailThresholds | None = None,
) -> GuardrailDecision:
    """Roll back or not, from the live version's served impressions (see the module rule)."""
    thresholds = thresholds or GuardrailThresholds()
    y = np.asarray(clicked, dtype=bool)
    p = np.clip(np.asarray(served_p_ctr, dtype=np.float64), 0.0, 1.0)
    n, observed = int(y.size), int(y.sum())
    expected = float(p.sum())
    variance = float(np.sum(p * (1 - p)))
    ratio = observed / expected if expected > 0 else math.inf if observed else math.nan
    z = (observed - expected) / math.sqrt(variance) if variance > 0 else 0.0
    text = (
        f"observed {observed} clicks vs {expected:.1f} predicted over {n} served impressions "
        f"(ratio {ratio:.2f}, z {z:+.2f}; band [{thresholds.ratio_low}, "
        f"{thresholds.ratio_high}], |z| >= {thresholds.z})"
    )
    if n < thresholds.min_impressions or n == 0:
        return GuardrailDecision(
            False,
            False,
            n,
            observed,
            expected,
            ratio,
            z,
            f"waiting: {n} of {thresholds.min_impressions} impressions",
        )
    outside = not (thresholds.ratio_low <= ratio <= thresholds.ratio_high)
    significant = abs(z) >= thresholds.z
    rollback = outside and significant
    verdict = (
        "miscalibrated"
        if rollback
        else ("outside the band but within noise" if outside else "within the band")
    )
    return GuardrailDecision(rollback, True, n, observed, expected, ratio, z, f"{verdict}: {text}")
