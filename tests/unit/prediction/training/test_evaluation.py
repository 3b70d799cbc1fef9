"""Offline metrics: known AUC / log loss / ECE values, CVR judged on clicked impressions only."""

from __future__ import annotations

import numpy as np
import pytest

from copyloop.prediction.model.predictions import Predictions
from copyloop.prediction.training.evaluation import (
    auc,
    ece,
    evaluate,
    logloss,
    reliability_table,
)


def test_metric_values() -> None:
    labels = np.array([0, 0, 1, 1])
    assert auc(labels, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert auc(labels, np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert np.isnan(auc(np.array([1, 1]), np.array([0.2, 0.3])))
    assert logloss(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(np.log(2))
    # constant prediction 0.3 against a 50% rate: ECE is exactly the gap
    assert ece(np.array([0, 1] * 50), np.full(100, 0.3)) == pytest.approx(0.2)
    table = reliability_table(np.array([0, 1] * 50), np.linspace(0, 1, 100), n_bins=4)
    assert [b.count for b in table] == [25, 25, 25, 25]


def test_evaluate_scores_cvr_on_clicked_only() -> None:
    clicked = np.array([1, 1, 0, 0], dtype=bool)
    converted = np.array([1, 0, 1, 0], dtype=bool)  # the unclicked "conversion" must not count
    metrics = evaluate(
        Predictions(np.array([0.9, 0.8, 0.1, 0.2]), np.array([0.7, 0.2, 0.9, 0.9])),
        clicked,
        converted,
    )
    assert metrics["cvr"].n == 2 and metrics["cvr"].positives == 1 and metrics["cvr"].auc == 1.0
    assert metrics["ctcvr"].positives == 1 and metrics["ctcvr"].n == 4
