"""Off-policy estimates on synthetic logs whose true policy values are known."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from copyloop.demo.market import ImpressionLog, SyntheticMarket
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.features.types import TrainingExample
from copyloop.prediction.model.version import ModelVersion
from copyloop.prediction.training.compare import compare_versions
from copyloop.prediction.training.off_policy import (
    estimate,
    evaluate_greedy,
    flatten,
    greedy_probabilities,
)
from copyloop.prediction.training.trainer import split_by_time, train_version

from ..conftest import small_config


def synthetic_log(
    n: int, seed: int, k: int = 4
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Rows with k copies each: true CTRs, a non-uniform logging policy (softmax of noise), the
    logged choice and click. Returns (true ctr [n, k], logging probs [n, k], choice, click)."""
    rng = np.random.default_rng(seed)
    ctr = rng.uniform(0.01, 0.3, size=(n, k))
    logits = rng.normal(0.0, 1.0, size=(n, k))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    choice = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    click = (rng.random(n) < ctr[np.arange(n), choice]).astype(np.float64)
    return ctr, probs, choice.astype(np.float64), click


def greedy_inputs(
    scores: NDArray[np.float64], choice: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """(chosen score, flat alternative scores, counts) as a caller would assemble them."""
    n, k = scores.shape
    rows = np.arange(n)
    chosen = choice.astype(np.int64)
    others = np.array([[j for j in range(k) if j != c] for c in chosen])
    return scores[rows, chosen], scores[rows[:, None], others].ravel(), np.full(n, k - 1)


def test_greedy_probabilities_pick_the_best_and_split_ties() -> None:
    flat, counts = flatten([[0.4, 0.2], [0.3], [0.3, 0.3], [0.1, 0.0]])
    pi = greedy_probabilities([0.5, 0.1, 0.3, 0.2], flat, counts)
    # row 0 best; row 1 loses to 0.3; row 2 ties three ways; row 3 best
    assert pi.tolist() == pytest.approx([1.0, 0.0, 1 / 3, 1.0])
    with pytest.raises(ValueError):
        greedy_probabilities([0.1], [0.2, 0.3], [1])


def test_interval_covers_the_known_value_of_a_greedy_policy() -> None:
    ctr, probs, choice, click = synthetic_log(40_000, seed=1)
    n = ctr.shape[0]
    rows = np.arange(n)
    # The candidate scores copies by a noisy view of the truth; its true value is the mean
    # true CTR of the copy it would pick.
    scores = ctr + np.random.default_rng(2).normal(0.0, 0.05, size=ctr.shape)
    true_value = float(ctr[rows, scores.argmax(axis=1)].mean())
    propensity = probs[rows, choice.astype(np.int64)]
    chosen, flat, counts = greedy_inputs(scores, choice)

    result = evaluate_greedy(click, propensity, chosen, flat, counts)

    assert result.n == n and result.n_excluded == 0
    for interval in (result.ips, result.snips):
        assert interval.low <= true_value <= interval.high
        assert interval.high - interval.low < 0.03  # informative, not vacuous
    # The candidate beats the logging policy, and the estimate says so.
    logging_value = float((probs * ctr).sum(axis=1).mean())
    assert result.logging.low <= logging_value <= result.logging.high
    assert result.snips.low > result.logging.high
    assert 0 < result.effective_sample_size < n


def test_intervals_have_about_their_nominal_coverage() -> None:
    """Over many independent logs the 95% intervals cover the true value about 95% of the
    time; an estimator that forgot the propensity (or the target policy) would not."""
    covered = {"ips": 0, "snips": 0}
    rounds = 200
    for seed in range(rounds):
        ctr, probs, choice, click = synthetic_log(2_000, seed=100 + seed, k=3)
        rows = np.arange(ctr.shape[0])
        scores = ctr  # the candidate knows the truth: the best policy
        true_value = float(ctr.max(axis=1).mean())
        chosen, flat, counts = greedy_inputs(scores, choice)
        propensity = probs[rows, choice.astype(np.int64)]
        result = evaluate_greedy(click, propensity, chosen, flat, counts)
        covered["ips"] += result.ips.low <= true_value <= result.ips.high
        covered["snips"] += result.snips.low <= true_value <= result.snips.high
    assert covered["ips"] / rounds > 0.9
    assert covered["snips"] / rounds > 0.9


def test_snips_equals_the_logging_value_when_the_candidate_repeats_the_logged_choice() -> None:
    rng = np.random.default_rng(5)
    n = 500
    click = (rng.random(n) < 0.1).astype(np.float64)
    # The candidate scores the logged copy highest, and the log chose it with probability 1.
    alternatives = [list(rng.uniform(0.0, 0.4, size=rng.integers(1, 4))) for _ in range(n)]
    flat, counts = flatten(alternatives)
    result = evaluate_greedy(click, np.ones(n), np.full(n, 0.5), flat, counts)
    assert result.snips.value == pytest.approx(click.mean())
    assert result.ips.value == pytest.approx(click.mean())
    assert result.logging.value == pytest.approx(click.mean())
    assert result.agreement == 1.0 and result.effective_sample_size == pytest.approx(n)


def test_rows_without_propensity_or_alternatives_are_excluded() -> None:
    click = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    propensity = np.array([0.5, 0.5, 0.0, 0.5, 0.5])  # row 2: unknown
    flat, counts = flatten([[0.1], [0.1], [0.1], [], [0.1]])  # row 3: no alternatives
    chosen = np.array([0.9, 0.9, 0.9, 0.9, 0.9])
    result = evaluate_greedy(click, propensity, chosen, flat, counts)
    assert (result.n, result.n_excluded) == (3, 2)
    # Rows 0, 1 and 4: pi = 1, p = 0.5, clicks 1, 0, 0.
    assert result.ips.value == pytest.approx(2.0 / 3.0)
    assert result.snips.value == pytest.approx(1.0 / 3.0)
    assert result.logging.value == pytest.approx(1.0 / 3.0)


def test_nothing_eligible_gives_undefined_values_that_serialise() -> None:
    result = estimate([1.0, 0.0], [0.0, 0.0], [1.0, 1.0])
    assert result.n == 0 and result.n_excluded == 2 and math.isnan(result.ips.value)
    data = result.to_dict()
    assert data["ips"]["value"] is None and data["n"] == 0
    # A candidate that never agrees with the log: IPS is 0, SNIPS undefined.
    never = estimate([1.0, 0.0, 1.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0])
    assert never.ips.value == 0.0 and math.isnan(never.snips.value)
    assert never.effective_sample_size == 0.0


# ---- in training: the market's log served each item's copy uniformly among its variants ----


def with_policy(market: SyntheticMarket, examples: list[TrainingExample]) -> list[TrainingExample]:
    """The market picks each impression's copy uniformly among the item's variants: that is
    the logging policy, so the propensity is 1/variants and the rest are the alternatives."""
    logged = []
    for e in examples:
        variants = market.copy_variants(e.item.item_id)
        others = tuple(v for v in variants if v != e.copy.text)
        logged.append(dataclasses.replace(e, propensity=1.0 / len(variants), alternatives=others))
    return logged


def test_training_reports_an_off_policy_estimate_that_covers_the_true_value(
    market: SyntheticMarket,
    market_log: ImpressionLog,
    embedder: HashingEmbedder,
    tmp_path: Path,
) -> None:
    # The whole log: on a few thousand rows the greedy policy agrees with the logged choice on
    # ~250 of them, too few clicks for a normal-approximation interval to be trusted.
    examples = with_policy(market, market_log.examples)
    # A third of the log predates propensity logging: it trains but is not estimated on.
    examples = [
        dataclasses.replace(e, propensity=0.0, alternatives=()) if n % 3 == 0 else e
        for n, e in enumerate(examples)
    ]
    train_window, eval_window = split_by_time(examples, eval_fraction=0.4)
    version = train_version(
        examples, train_window, eval_window, small_config(epochs=2), embedder=embedder
    )
    found = version.metrics["off_policy"]
    evaluation = eval_window.select(examples)
    eligible = [e for e in evaluation if e.propensity > 0]
    assert found["n"] == len(eligible) and found["n_excluded"] == len(evaluation) - len(eligible)

    # The true value of the version's greedy choice, from the market's hidden response model.
    options = [[e.copy.text, *e.alternatives] for e in eligible]
    swapped = [
        dataclasses.replace(e, copy=dataclasses.replace(e.copy, text=text))
        for e, texts in zip(eligible, options, strict=True)
        for text in texts
    ]
    p_ctr = version.predict_examples(swapped).p_ctr
    p_click, _ = market.truth_for(swapped)
    start, values = 0, []
    for texts in options:
        scores, truth = p_ctr[start : start + len(texts)], p_click[start : start + len(texts)]
        best = np.isclose(scores, scores.max(), rtol=1e-9, atol=1e-12)
        values.append(float(truth[best].mean()))
        start += len(texts)
    true_value = float(np.mean(values))
    snips = found["snips"]
    assert snips["low"] <= true_value <= snips["high"]
    assert found["ips"]["low"] <= true_value <= found["ips"]["high"]

    version.save_version(tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "## Off-policy estimate" in report and "| this model, greedy: SNIPS |" in report
    assert json.loads((tmp_path / "metrics.json").read_text())["off_policy"]["n"] == found["n"]


def test_no_off_policy_estimate_without_logged_propensities(trained: ModelVersion) -> None:
    assert "off_policy" not in trained.metrics


def test_comparison_with_the_live_version_reports_both_estimates(
    trained: ModelVersion, market: SyntheticMarket, market_log: ImpressionLog
) -> None:
    examples = with_policy(market, market_log.examples[-3000:])
    verdict = compare_versions(trained, trained, examples, rounds=20)
    assert set(verdict.off_policy) == {"candidate", "live"}
    assert verdict.off_policy["candidate"] == verdict.off_policy["live"]
    assert verdict.off_policy["live"]["n"] == 3000
    assert "off-policy SNIPS" in verdict.reason and "within noise" in verdict.reason
    plain = compare_versions(trained, trained, market_log.examples[-3000:], rounds=20)
    assert plain.off_policy == {} and "off-policy" not in plain.reason
