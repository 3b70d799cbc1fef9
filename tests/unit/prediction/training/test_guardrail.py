"""The live guardrail's decision: roll back only when served pCTR is off by more than the band
and by more than chance, and never before enough impressions."""

from __future__ import annotations

import numpy as np
import pytest

from copyloop.prediction.training.guardrail import GuardrailThresholds, check_calibration


def served(n: int, p: float, observed_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """n impressions served at pCTR p, of which exactly round(n * observed_rate) clicked."""
    clicked = np.zeros(n, dtype=bool)
    clicked[: round(n * observed_rate)] = True
    return clicked, np.full(n, p)


@pytest.mark.parametrize(
    ("n", "p", "rate", "rollback", "judged", "verdict"),
    [
        (2000, 0.05, 0.05, False, True, "within the band"),
        (2000, 0.05, 0.08, False, True, "within the band"),  # 1.6x: inside [0.5, 2]
        (2000, 0.05, 0.20, True, True, "miscalibrated"),  # 4x over-clicked: under-predicts
        (2000, 0.20, 0.05, True, True, "miscalibrated"),  # predicts 4x too many clicks
        (1000, 0.004, 0.009, False, True, "outside the band but within noise"),  # 9 vs 4
        (500, 0.05, 0.20, False, False, "waiting"),  # too few impressions to judge
    ],
)
def test_guardrail_decision(
    n: int, p: float, rate: float, rollback: bool, judged: bool, verdict: str
) -> None:
    clicked, probs = served(n, p, rate)
    decision = check_calibration(clicked, probs, GuardrailThresholds(min_impressions=1000))
    assert (decision.rollback, decision.judged) == (rollback, judged)
    assert decision.reason.startswith(verdict)
    assert decision.impressions == n and decision.observed_clicks == clicked.sum()
    assert decision.expected_clicks == pytest.approx(n * p)


def test_thresholds_move_the_band_and_the_significance() -> None:
    clicked, probs = served(2000, 0.05, 0.08)
    assert not check_calibration(clicked, probs).rollback
    narrow = GuardrailThresholds(ratio_low=0.8, ratio_high=1.25, z=2.0)
    decision = check_calibration(clicked, probs, narrow)
    assert decision.rollback and decision.ratio == pytest.approx(1.6) and decision.z > 2
    off = GuardrailThresholds(min_impressions=0)
    assert not check_calibration(np.zeros(0, dtype=bool), np.zeros(0), off).rollback
