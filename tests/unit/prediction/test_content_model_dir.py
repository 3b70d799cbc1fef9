"""Which content-effect model PredictionService loads: the default folder when it holds a
model for the service's embedder, an explicit folder always, none for "" / "off"."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from copyloop.prediction.errors import ModelFormatError
from copyloop.prediction.features.ab_tests import ABVariant
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.main import content_model_path, load_copy_quality
from copyloop.prediction.model.content_effect import ContentEffectConfig, ContentEffectModel
from copyloop.prediction.settings import DEFAULT_CONTENT_MODEL_DIR, PredictionSettings


def _saved(directory: Path, dim: int = 64) -> Path:
    rng = random.Random(0)
    variants = []
    for test in range(60):
        for v in range(3):
            hooked = rng.random() < 0.5
            text = ("Incredible: " if hooked else "") + f"story {test} take {v}"
            clicks = rng.randint(60, 90) if hooked else rng.randint(30, 60)
            variants.append(ABVariant(f"t{test}/i", text, 3000, clicks, f"t{test}"))
    config = ContentEffectConfig(embedder_name=f"hashing-ngrams-{dim}", min_pairs=20)
    ContentEffectModel(config, HashingEmbedder(dim)).fit(variants).save(directory)
    return directory


def test_the_setting_defaults_to_the_var_folder_and_the_environment_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COPYLOOP_PREDICTION_CONTENT_MODEL_DIR", raising=False)
    assert PredictionSettings().content_model_dir == DEFAULT_CONTENT_MODEL_DIR
    assert DEFAULT_CONTENT_MODEL_DIR == "var/models/content_effect"
    monkeypatch.setenv("COPYLOOP_PREDICTION_CONTENT_MODEL_DIR", "off")
    assert PredictionSettings().content_model_dir == "off"


def test_off_empty_and_a_missing_default_mean_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no var/models/content_effect here
    for setting in ("", "off", "OFF", " none "):
        assert content_model_path(setting) is None
    assert content_model_path(DEFAULT_CONTENT_MODEL_DIR) is None
    assert load_copy_quality(DEFAULT_CONTENT_MODEL_DIR, HashingEmbedder(64)) is None


def test_an_explicit_folder_without_a_model_fails_the_start(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match=r"content_effect\.json"):
        content_model_path(str(tmp_path / "nowhere"))


def test_the_default_folder_is_used_when_it_holds_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _saved(tmp_path / DEFAULT_CONTENT_MODEL_DIR)
    assert content_model_path(DEFAULT_CONTENT_MODEL_DIR) == Path(DEFAULT_CONTENT_MODEL_DIR)
    quality = load_copy_quality(DEFAULT_CONTENT_MODEL_DIR, HashingEmbedder(64))
    assert quality is not None
    hooked, plain = quality.score(["Incredible: story 1 take 0", "story 1 take 0"])
    assert 0 < plain < 0.5 < hooked < 1
    # a service on another embedder skips the default folder's model rather than load a
    # second text model behind its back
    assert load_copy_quality(DEFAULT_CONTENT_MODEL_DIR, HashingEmbedder(32)) is None


def test_an_explicit_folder_over_another_embedder_gets_its_own(tmp_path: Path) -> None:
    folder = _saved(tmp_path / "ce", dim=32)
    quality = load_copy_quality(str(folder), HashingEmbedder(64))
    assert quality is not None
    assert len(set(quality.score(["Incredible: a", "b", "c d e"]))) == 3
