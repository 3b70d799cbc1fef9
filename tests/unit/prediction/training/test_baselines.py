"""CalibratedColdStart: the cold-start prior's ranking with numbers fit to the window, so the
first model's gate compares rankings, not the prior's guessed base rates."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from copyloop.demo.market import ImpressionLog
from copyloop.prediction.serving.cold_start import ColdStartPrior
from copyloop.prediction.training.baselines import CalibratedColdStart
from copyloop.prediction.training.evaluation import auc


def test_keeps_the_priors_ranking_and_learns_the_click_rate(market_log: ImpressionLog) -> None:
    fit, held = market_log.examples[:8000], market_log.examples[8000:12000]
    calibrated = CalibratedColdStart().fit(fit)
    raw = ColdStartPrior().predict_examples(held).p_ctr
    scored = calibrated.predict(held)
    clicked = np.array([e.clicked for e in held])
    assert calibrated.slope > 0
    assert auc(clicked, scored.p_ctr) == auc(clicked, raw)  # a monotone map
    rate = np.mean([e.clicked for e in fit])
    assert abs(np.mean(calibrated.predict(fit).p_ctr) - rate) < 0.1 * rate
    clicks = [e for e in fit if e.clicked]
    cvr = (sum(e.converted for e in clicks) + 1) / (len(clicks) + 2)
    assert np.allclose(scored.p_cvr, cvr)


def test_a_window_without_clicks_gives_the_smoothed_base_rate(market_log: ImpressionLog) -> None:
    quiet = [replace(e, clicked=False, converted=False) for e in market_log.examples[:500]]
    calibrated = CalibratedColdStart().fit(quiet)
    p = calibrated.predict(quiet).p_ctr
    assert np.allclose(p, 1 / 502)
