"""Comparing versions: the better model wins, both are scored on the same impressions."""

from __future__ import annotations

import numpy as np

from copyloop.demo.market import ImpressionLog, SyntheticMarket
from copyloop.prediction.model.predictions import Predictions
from copyloop.prediction.model.version import ModelVersion
from copyloop.prediction.training.compare import compare_predictions, compare_versions


def test_compare_prefers_the_better_model(
    market: SyntheticMarket, market_log: ImpressionLog
) -> None:
    examples = market_log.examples[-4_000:]
    clicked = np.asarray([e.clicked for e in examples])
    converted = np.asarray([e.clicked and e.converted for e in examples])
    p_click, p_convert = market.truth_for(examples)
    oracle = Predictions(p_click, p_convert)
    flat = Predictions(
        np.full(len(examples), clicked.mean()) + np.linspace(0, 1e-6, len(examples)),
        np.full(len(examples), 0.2),
    )
    verdict = compare_predictions(oracle, flat, clicked, converted, "oracle", "flat", rounds=60)
    assert verdict.candidate_better and verdict.auc_delta > 0.1 and verdict.auc_delta_ci[0] > 0
    reverse = compare_predictions(flat, oracle, clicked, converted, rounds=60)
    assert not reverse.candidate_better
    same = compare_predictions(oracle, oracle, clicked, converted, rounds=60)
    assert not same.candidate_better and "within noise" in same.reason


def test_compare_versions_scores_both_on_the_same_data(
    trained: ModelVersion, market_log: ImpressionLog
) -> None:
    verdict = compare_versions(trained, trained, market_log.examples[-3_000:], rounds=50)
    assert verdict.candidate_id == verdict.live_id == trained.version_id
    assert verdict.auc_delta == 0.0 and not verdict.candidate_better
