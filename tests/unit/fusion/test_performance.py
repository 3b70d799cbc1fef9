"""The creative-performance maths: the lift shrunk toward 1 by a Gamma(a, a) prior, its 95%
interval (Gamma posterior quantiles, checked against scipy.stats and by simulation), and the
page keys that carry the lift exactly from one page to the next."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from copyloop.fusion.performance import (
    LIFT_PRIOR_CLICKS,
    CreativePerformance,
    PerformanceKey,
    lift_interval,
    shrunk_lift,
)


def test_no_evidence_means_the_model_was_right() -> None:
    assert shrunk_lift(0, 0.0) == 1.0
    lower, upper = lift_interval(0, 0.0)
    assert lower < 1.0 < upper


def test_the_lift_is_the_posterior_mean_clicks_plus_a_over_expected_plus_a() -> None:
    a = LIFT_PRIOR_CLICKS
    assert shrunk_lift(30, 20.0) == pytest.approx((30 + a) / (20 + a))
    assert shrunk_lift(3, 1.0, prior=1.0) == pytest.approx(2.0)


def test_a_few_lucky_clicks_rank_below_a_steady_winner() -> None:
    lucky = shrunk_lift(3, 0.3)  # raw lift 10
    steady = shrunk_lift(60, 40.0)  # raw lift 1.5
    assert lucky < steady
    assert lucky == pytest.approx(13 / 10.3)


def test_plenty_of_evidence_approaches_the_raw_ratio() -> None:
    assert shrunk_lift(20_000, 10_000.0) == pytest.approx(2.0, rel=1e-3)


@pytest.mark.parametrize(("clicks", "expected"), [(0, 0.5), (3, 1.2), (40, 25.0), (900, 1000.0)])
def test_interval_is_the_gamma_posteriors_central_95_percent(clicks: int, expected: float) -> None:
    a = LIFT_PRIOR_CLICKS
    posterior = stats.gamma(a + clicks, scale=1.0 / (a + expected))
    lower, upper = lift_interval(clicks, expected)
    assert lower == pytest.approx(posterior.ppf(0.025), rel=1e-9)
    assert upper == pytest.approx(posterior.ppf(0.975), rel=1e-9)
    assert lower < shrunk_lift(clicks, expected) < upper


def test_interval_covers_the_true_lift_about_95_percent_of_the_time() -> None:
    """Simulated creatives whose true lift is drawn from the prior: the Bayesian interval
    must cover it in about 95% of them."""
    rng = np.random.default_rng(7)
    a = LIFT_PRIOR_CLICKS
    trials, covered = 4000, 0
    for _ in range(trials):
        true_lift = rng.gamma(a, 1.0 / a)
        expected = float(rng.uniform(0.5, 60.0))
        clicks = int(rng.poisson(true_lift * expected))
        lower, upper = lift_interval(clicks, expected)
        covered += lower <= true_lift <= upper
    assert 0.93 <= covered / trials <= 0.97


def test_the_interval_narrows_with_evidence() -> None:
    small = lift_interval(6, 4.0)
    large = lift_interval(600, 400.0)
    assert large[1] - large[0] < (small[1] - small[0]) / 3


def test_page_key_round_trips_the_lift_exactly() -> None:
    lift = (7 + LIFT_PRIOR_CLICKS) / (3.3 + LIFT_PRIOR_CLICKS)
    key = PerformanceKey(lift, "cr_0123", "bargain_hunter")
    assert PerformanceKey.decode(key.encode()) == key
    odd = PerformanceKey(1.0, 'cr "quoted" | id', "")
    assert PerformanceKey.decode(odd.encode()) == odd


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        json.dumps([1.0, "cr"]),
        json.dumps(["1.0", "cr", "s"]),
        json.dumps([True, "cr", "s"]),
        json.dumps([1.0, 5, "s"]),
        json.dumps([1.0, "cr", None]),
        json.dumps({"lift": 1.0}),
        '[NaN, "cr", "s"]',
        '[Infinity, "cr", "s"]',
    ],
)
def test_a_forged_page_key_decodes_to_none(text: str) -> None:
    assert PerformanceKey.decode(text) is None


def test_a_rows_key_and_interval_come_from_its_counts() -> None:
    row = CreativePerformance("cr_1", "sku-1", "deal_seeker", "value", 500, 30, 20.0, 1.3)
    assert row.key == PerformanceKey(1.3, "cr_1", "deal_seeker")
    assert row.interval == lift_interval(30, 20.0)
