"""Training on the synthetic market: learns, beats baselines, is deterministic, refuses thin
data, selects time windows in order."""

from __future__ import annotations

import numpy as np
import pytest

from copyloop.demo.market import ImpressionLog
from copyloop.prediction.errors import InsufficientDataError
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.model.version import ModelVersion
from copyloop.prediction.training.trainer import DataRequirements, TimeWindow, train_version

from ..conftest import small_config


def test_model_learns_the_market(trained: ModelVersion) -> None:
    """Well above chance, better than both baselines, within reach of the oracle."""
    models = trained.metrics["models"]
    esmm, oracle, popularity = models["esmm"], models["oracle"], models["popularity"]
    for task in ("ctr", "ctcvr"):
        assert esmm[task]["auc"] > 0.62
        assert esmm[task]["auc"] > popularity[task]["auc"] + 0.03
        assert esmm[task]["auc"] > oracle[task]["auc"] - 0.12
    assert esmm["ctcvr"]["auc"] >= models["logistic"]["ctcvr"]["auc"] - 0.01
    assert esmm["ctr"]["ece"] < 0.02  # calibrated: mean |predicted - observed| under 2 points
    assert abs(esmm["ctr"]["mean_prediction"] - esmm["ctr"]["base_rate"]) < 0.015


def test_metrics_and_report_data_are_complete(trained: ModelVersion) -> None:
    metrics = trained.metrics
    assert set(metrics["models"]) == {
        "esmm",
        "esmm_uncalibrated",
        "logistic",
        "popularity",
        "oracle",
    }
    for tasks in metrics["models"].values():
        assert set(tasks) == {"ctr", "cvr", "ctcvr"}
    assert metrics["data"]["eval"]["impressions"] > 0
    assert metrics["loss_history"] and trained.report is not None
    assert trained.version_id.startswith("esmm-")


def test_training_is_deterministic_for_a_seed(
    market_log: ImpressionLog, windows: tuple[TimeWindow, TimeWindow]
) -> None:
    examples = market_log.examples[:6_000]
    train_window = TimeWindow(examples[0].timestamp, examples[4_500].timestamp)
    eval_window = TimeWindow(examples[4_500].timestamp, examples[-1].timestamp + 1)
    config = small_config(epochs=2, requirements=DataRequirements(min_train_impressions=100))
    first = train_version(examples, train_window, eval_window, config, embedder=HashingEmbedder(32))
    second = train_version(
        examples, train_window, eval_window, config, embedder=HashingEmbedder(32)
    )
    assert first.version_id == second.version_id  # the id embeds a digest of the weights
    batch = first.encoder.encode_examples(examples[4_500:5_000])
    assert np.array_equal(first.predict(batch).p_ctcvr, second.predict(batch).p_ctcvr)
    other_seed = train_version(
        examples,
        train_window,
        eval_window,
        small_config(epochs=2, seed=1),
        embedder=HashingEmbedder(32),
    )
    assert other_seed.version_id != first.version_id


def test_too_little_data_raises_a_domain_error(market_log: ImpressionLog) -> None:
    examples = market_log.examples[:300]
    cut = examples[200].timestamp
    with pytest.raises(InsufficientDataError) as caught:
        train_version(
            examples,
            TimeWindow(examples[0].timestamp, cut),
            TimeWindow(cut, examples[-1].timestamp + 1),
            small_config(),
            embedder=HashingEmbedder(32),
        )
    error = caught.value
    assert error.what == "training impressions" and error.needed == 1_000 and error.found == 200
    assert "need at least 1000 training impressions, found 200" in str(error)


def test_clicks_requirement_is_checked(market_log: ImpressionLog) -> None:
    unclicked = [e for e in market_log.examples if not e.clicked][:3_000]
    cut = unclicked[2_000].timestamp
    with pytest.raises(InsufficientDataError) as caught:
        train_version(
            unclicked,
            TimeWindow(unclicked[0].timestamp, cut),
            TimeWindow(cut, unclicked[-1].timestamp + 1),
            small_config(),
            embedder=HashingEmbedder(32),
        )
    assert caught.value.what == "training clicks" and caught.value.found == 0


def test_eval_window_must_follow_train_window(market_log: ImpressionLog) -> None:
    with pytest.raises(ValueError):
        train_version(market_log.examples, TimeWindow(0, 10), TimeWindow(5, 20), small_config())


def test_windows_select_in_time_order(market_log: ImpressionLog) -> None:
    examples = market_log.examples
    window = TimeWindow(examples[100].timestamp, examples[200].timestamp)
    chosen = window.select(list(reversed(examples)))
    assert len(chosen) == 100 and chosen[0] is examples[100]
