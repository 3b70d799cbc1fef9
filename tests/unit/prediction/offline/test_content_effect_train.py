"""Training the production content-effect model: the Upworthy story reader, the cross-fitted
CTR slope, determinism, and a clear error without the data."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import pytest

from copyloop.prediction.features.ab_tests import ABVariant
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.model.content_effect import ContentEffectConfig
from copyloop.prediction.offline.content_effect import (
    cross_fitted_scores,
    data_file,
    main,
    train_command,
    train_content_model,
)
from copyloop.prediction.offline.upworthy import load_upworthy, load_upworthy_stories

CONFIG = ContentEffectConfig(embedder_name="hashing-ngrams-32", min_pairs=20, dense_c=3e-4)


def _archive(n_tests: int, seed: int) -> tuple[list[ABVariant], dict[str, set[tuple[str, str]]]]:
    """Tests in stories of two re-runs (same lede): "Incredible:" variants draw 1.5x clicks."""
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    words = ["river", "teacher", "town", "law", "dog", "mayor", "team", "garden", "bridge"]
    variants, stories = [], {}
    for test in range(n_tests):
        story = test // 2
        stories[f"t{test}"] = {(f"lede of story {story}", f"img{test}")}
        base = rng.uniform(0.01, 0.03)
        for v in range(3):
            text = f"The {rng.choice(words)} and the {rng.choice(words)} {story}.{v}"
            lift = 1.0
            if rng.random() < 0.5:
                text, lift = "Incredible: " + text, 1.5
            clicks = int(noise.binomial(4000, base * lift))
            variants.append(ABVariant(f"t{test}/img{test}", text, 4000, clicks, f"t{test}"))
    return variants, stories


def test_cross_fitted_scores_come_from_models_that_did_not_see_the_story() -> None:
    variants, stories = _archive(120, seed=1)
    scores = cross_fitted_scores(variants, stories, CONFIG, HashingEmbedder(32), folds=3)
    assert set(scores) == {v.text for v in variants}
    hooked = [s for t, s in scores.items() if t.startswith("Incredible")]
    plain = [s for t, s in scores.items() if not t.startswith("Incredible")]
    assert np.mean(hooked) > np.mean(plain)


def test_training_sets_a_cross_fitted_slope_and_is_deterministic() -> None:
    variants, stories = _archive(160, seed=2)
    lines: list[str] = []
    model, figures = train_content_model(
        variants, stories, HashingEmbedder(32), CONFIG, folds=3, progress=lines.append
    )
    again, _ = train_content_model(
        variants, stories, HashingEmbedder(32), CONFIG, folds=3, progress=lambda _: None
    )
    assert 0 < model.ctr_slope == figures["ctr_slope"] == figures["ctr_slope_cross_fitted"]
    # the in-sample slope is the optimistic one: fitted on texts the model was trained on
    assert figures["ctr_slope_in_sample"] >= model.ctr_slope
    assert any("CTR slope" in line for line in lines)
    texts = ["Incredible: the dog and the law 3.1", "The dog and the law 3.1"]
    assert model.quality(texts) == again.quality(texts)
    hooked, plain = model.quality(texts)
    assert hooked > 0.5 > plain


def test_one_fold_keeps_the_in_sample_slope() -> None:
    variants, stories = _archive(80, seed=3)
    model, figures = train_content_model(
        variants, stories, HashingEmbedder(32), CONFIG, folds=1, progress=lambda _: None
    )
    assert model.ctr_slope == figures["ctr_slope_in_sample"] > 0
    assert "ctr_slope_cross_fitted" not in figures


def test_upworthy_reader_gives_each_test_its_ledes_and_images(tmp_path: Path) -> None:
    rows = [
        "clickability_test_id,eyecatcher_id,headline,lede,impressions,clicks",
        't1,imgA,"First, a headline",Lede one,1000,20',
        "t1,imgA,Second headline,Lede one,1000,25",
        "t2,,Third headline,,500,5",
        "t3,imgB,No impressions,Lede three,0,0",
    ]
    path = tmp_path / "upworthy.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(rows) + "\n")
    stories = load_upworthy_stories(path)
    assert stories == {
        "t1": {("Lede one", "imgA")},
        "t2": {("", "")},
        "t3": {("Lede three", "imgB")},
    }
    variants = load_upworthy(path)
    assert [v.text for v in variants] == ["First, a headline", "Second headline", "Third headline"]
    assert variants[2].group_id == "t2/none"


def test_train_command_without_the_data_says_where_it_looked(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match=r"upworthy_ab_tests_dev\.csv\.gz"):
        train_command(tmp_path, tmp_path / "out", progress=lambda _: None)
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert data_file(tmp_path) == tmp_path / "upworthy_ab_tests_dev.csv.gz"
