"""Model version folders: round trip, report files, format errors; comparing versions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from copyloop.demo.market import ImpressionLog, SyntheticMarket
from copyloop.prediction.compare import compare_predictions, compare_versions
from copyloop.prediction.errors import ModelFormatError
from copyloop.prediction.evaluation import Predictions
from copyloop.prediction.scorer import Scorer
from copyloop.prediction.text_features import HashingEmbedder
from copyloop.prediction.training import TimeWindow
from copyloop.prediction.version import ModelVersion, load_version


def test_save_load_round_trip_gives_identical_scores(
    trained: ModelVersion, market_log: ImpressionLog, tmp_path: Path
) -> None:
    folder = trained.save_version(tmp_path / "v1")
    for name in (
        "model.json",
        "model.pt",
        "encoder.json",
        "calibrator.json",
        "metrics.json",
        "report.md",
        "roc.png",
        "reliability.png",
        "loss.png",
    ):
        assert (folder / name).stat().st_size > 0, name
    assert (folder / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loaded = load_version(folder, HashingEmbedder(32))
    assert loaded.version_id == trained.version_id
    assert (
        loaded.metrics["models"]["esmm"]["ctr"]["auc"]
        == trained.metrics["models"]["esmm"]["ctr"]["auc"]
    )
    examples = market_log.examples[-400:]
    assert np.array_equal(
        loaded.predict_examples(examples).p_ctcvr, trained.predict_examples(examples).p_ctcvr
    )
    first = examples[0]
    candidates = [(e.item, e.copy) for e in examples[:50]]
    a = Scorer(trained).score(first.user, first.context, candidates)
    b = Scorer(loaded).score(first.user, first.context, candidates)
    assert a == b


def test_loading_a_broken_folder_fails_clearly(trained: ModelVersion, tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="missing"):
        load_version(tmp_path)
    folder = replace(trained, report=None).save_version(tmp_path / "v")  # skip the plots: faster
    (folder / "encoder.json").write_text(
        (folder / "encoder.json").read_text().replace('"format": 1', '"format": 99')
    )
    with pytest.raises(ModelFormatError):
        load_version(folder, HashingEmbedder(32))


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


def test_windows_select_in_time_order(market_log: ImpressionLog) -> None:
    examples = market_log.examples
    window = TimeWindow(examples[100].timestamp, examples[200].timestamp)
    chosen = window.select(list(reversed(examples)))
    assert len(chosen) == 100 and chosen[0] is examples[100]
