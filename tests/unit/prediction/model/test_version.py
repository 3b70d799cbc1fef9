"""Model version folders: round trip, report files, format errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from copyloop.demo.market import ImpressionLog
from copyloop.prediction.errors import ModelFormatError
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.model.version import ModelVersion, load_version
from copyloop.prediction.serving.scorer import Scorer


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
