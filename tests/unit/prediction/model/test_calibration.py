"""Calibration: ECE reduction on a miscalibrated predictor, ranking kept, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from copyloop.demo.market import ImpressionLog
from copyloop.prediction.model.calibration import (
    IdentityCalibrator,
    IsotonicCalibrator,
    TaskCalibration,
    TemperatureCalibrator,
    calibrator_from_dict,
    fit_calibrator,
)
from copyloop.prediction.model.predictions import Predictions
from copyloop.prediction.training.evaluation import (
    auc,
    ece,
)


def _distorted(log: ImpressionLog) -> tuple[np.ndarray, np.ndarray]:
    """True click probabilities pushed through a monotone distortion (overconfident, biased)."""
    p = log.p_click
    distorted = np.clip(p**0.6 * 0.9, 1e-4, 0.999)
    clicked = np.asarray([e.clicked for e in log.examples], dtype=float)
    return distorted, clicked


@pytest.mark.parametrize("method", ["isotonic", "temperature"])
def test_calibration_lowers_ece_on_later_data(market_log: ImpressionLog, method: str) -> None:
    distorted, clicked = _distorted(market_log)
    fit_part, eval_part = slice(0, 15_000), slice(15_000, None)
    calibrator = fit_calibrator(method, distorted[fit_part], clicked[fit_part])
    before = ece(clicked[eval_part], distorted[eval_part])
    after = ece(clicked[eval_part], calibrator.apply(distorted[eval_part]))
    assert before > 0.05
    assert after < before / 3
    assert after < 0.015


def test_isotonic_is_strictly_increasing_so_ranking_is_kept(market_log: ImpressionLog) -> None:
    distorted, clicked = _distorted(market_log)
    calibrator = IsotonicCalibrator.fit(distorted[:15_000], clicked[:15_000])
    grid = np.linspace(0.0005, 0.999, 2000)
    assert np.all(np.diff(calibrator.apply(grid)) > 0)  # no ties: candidates stay ordered
    eval_scores = distorted[15_000:]
    assert auc(clicked[15_000:], calibrator.apply(eval_scores)) == pytest.approx(
        auc(clicked[15_000:], eval_scores)
    )


def test_temperature_recovers_a_known_distortion() -> None:
    rng = np.random.default_rng(0)
    true_logit = rng.normal(-2.0, 1.0, 50_000)
    labels = rng.random(50_000) < 1 / (1 + np.exp(-true_logit))
    reported = 1 / (1 + np.exp(-(2.0 * true_logit)))  # overconfident by a factor 2
    calibrator = TemperatureCalibrator.fit(reported, labels)
    assert calibrator.temperature == pytest.approx(2.0, rel=0.08)
    assert calibrator.bias == pytest.approx(0.0, abs=0.08)


def test_too_few_positives_leaves_predictions_alone() -> None:
    labels = np.zeros(1000)
    labels[:5] = 1
    assert isinstance(fit_calibrator("auto", np.full(1000, 0.1), labels), IdentityCalibrator)


def test_task_calibration_keeps_ctcvr_a_product_and_round_trips() -> None:
    rng = np.random.default_rng(1)
    raw = Predictions(rng.uniform(0.01, 0.3, 4000), rng.uniform(0.05, 0.5, 4000))
    clicked = rng.random(4000) < raw.p_ctr * 0.5
    converted = clicked & (rng.random(4000) < 0.3)
    calibration = TaskCalibration.fit("temperature", raw, clicked, converted)
    applied = calibration.apply(raw)
    assert np.allclose(applied.p_ctcvr, applied.p_ctr * applied.p_cvr)
    again = TaskCalibration.from_dict(calibration.to_dict())
    assert np.array_equal(again.apply(raw).p_ctr, applied.p_ctr)
    iso = IsotonicCalibrator.fit(raw.p_ctr, clicked)
    assert np.array_equal(
        calibrator_from_dict(iso.to_dict()).apply(raw.p_ctr), iso.apply(raw.p_ctr)
    )
