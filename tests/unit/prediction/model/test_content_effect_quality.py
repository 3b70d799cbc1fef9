"""Copy quality from the content-effect model: on the CTR scale, calibrated by the CTR slope,
persisted, and what the scorer gets through `as_copy_quality`."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from copyloop.prediction.errors import ModelFormatError
from copyloop.prediction.features.ab_tests import ABVariant
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.model.content_effect import (
    ContentEffectConfig,
    ContentEffectModel,
    ctr_slope,
)

HASHING = ContentEffectConfig(embedder_name="hashing-ngrams-32", min_pairs=20)


def _planted(n_tests: int, seed: int, lift: float = 1.4) -> list[ABVariant]:
    """Tests where a variant starting "Incredible:" gets `lift` times the clicks."""
    rng = random.Random(seed)
    words = ["river", "teacher", "town", "law", "dog", "mayor", "team", "garden", "bridge"]
    out = []
    for test in range(n_tests):
        base = rng.uniform(0.01, 0.03)
        for v in range(3):
            text = f"The {rng.choice(words)} and the {rng.choice(words)} #{v}"
            effect = 1.0
            if rng.random() < 0.5:
                text, effect = "Incredible: " + text, lift
            impressions = 4000
            clicks = int(
                np.random.default_rng(seed * 100_000 + test * 10 + v).binomial(
                    impressions, base * effect
                )
            )
            out.append(ABVariant(f"t{test}/img", text, impressions, clicks, f"t{test}"))
    return out


def test_ctr_slope_recovers_a_planted_log_ctr_effect() -> None:
    variants = _planted(400, seed=1, lift=1.5)
    # a perfect score: 1 for the lifted texts, 0 otherwise -> slope = log(1.5)
    scores = {v.text: float(v.text.startswith("Incredible")) for v in variants}
    assert ctr_slope(variants, scores) == pytest.approx(math.log(1.5), abs=0.05)
    # an uninformative or reversed score gives no (negative slopes read as none) effect
    assert ctr_slope(variants, {t: 0.0 for t in scores}) == pytest.approx(0.0, abs=1e-3)
    assert ctr_slope(variants, {t: -s for t, s in scores.items()}) == pytest.approx(0, abs=1e-3)
    assert ctr_slope([], {}) == 0.0


def test_quality_is_a_ctr_ratio_share_centred_on_a_typical_text() -> None:
    model = ContentEffectModel(HASHING, HashingEmbedder(32)).fit(_planted(300, seed=2))
    texts = ["Incredible: the dog and the town #1", "The dog and the town #1", "新品上市"]
    quality = model.quality(texts)
    assert all(0.0 < q < 1.0 for q in quality)
    assert quality[0] > 0.5 > quality[1]  # the planted hook helps, its absence hurts
    assert model.ctr_slope > 0
    scores = model.score(texts)
    # logit(q) = slope * (u - reference): the same order as the utility, on the log-CTR scale
    logits = [math.log(q / (1 - q)) for q in quality]
    ratio = (logits[0] - logits[1]) / (scores[0] - scores[1])
    assert ratio == pytest.approx(model.ctr_slope, rel=1e-6)
    assert model.as_copy_quality().score(texts) == quality


def test_a_zero_slope_means_a_neutral_quality() -> None:
    model = ContentEffectModel(HASHING, HashingEmbedder(32)).fit(_planted(200, seed=3))
    model.fit_ctr_slope(_planted(50, seed=4), {})  # no scores: nothing to fit
    assert model.ctr_slope == 0.0
    assert model.quality(["Incredible: x", "y"]) == [0.5, 0.5]


def test_fitting_is_deterministic_and_save_load_keeps_quality(tmp_path: Path) -> None:
    variants = _planted(200, seed=5)
    first = ContentEffectModel(HASHING, HashingEmbedder(32)).fit(variants)
    second = ContentEffectModel(HASHING, HashingEmbedder(32)).fit(variants)
    texts = ["Incredible: the law and the team #2", "The law #0", "Save 20% today"]
    assert first.score(texts) == second.score(texts)
    first.fit_ctr_slope(variants, {v.text: float("Incredible" in v.text) for v in variants})
    loaded = ContentEffectModel.load(first.save(tmp_path / "ce"), HashingEmbedder(32))
    assert loaded.ctr_slope == first.ctr_slope
    assert loaded.quality(texts) == first.quality(texts)
    assert ContentEffectModel.embedder_of(tmp_path / "ce") == "hashing-ngrams-32"


def test_an_old_format_is_refused_with_a_retrain_hint(tmp_path: Path) -> None:
    model = ContentEffectModel(HASHING, HashingEmbedder(32)).fit(_planted(120, seed=6))
    path = model.save(tmp_path / "ce") / "content_effect.json"
    state = json.loads(path.read_text())
    state["format"] = 1
    path.write_text(json.dumps(state))
    with pytest.raises(ModelFormatError, match="retrain"):
        ContentEffectModel.load(tmp_path / "ce", HashingEmbedder(32))
