"""Content-effect model: a planted effect, persistence, real Upworthy data, copy quality in the
scorer."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from copyloop.prediction.errors import InsufficientDataError
from copyloop.prediction.features.ab_tests import (
    ABVariant,
    build_pairs,
    split_by_test,
)
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.model.content_effect import (
    ContentEffectConfig,
    ContentEffectModel,
    pairwise_accuracy,
)

UPWORTHY = Path(__file__).resolve().parents[5] / "shared" / "data" / "upworthy_ab_tests_dev.csv.gz"
# dense C as before the story-safe tuning: the default (3e-5) is tuned for 384-d MiniLM vectors
# on real headlines, too strong a penalty for 32 hashed dimensions and one planted word.
HASHING = ContentEffectConfig(embedder_name="hashing-ngrams-32", min_pairs=20, dense_c=3e-4)

_SUBJECTS = [
    "the river",
    "a teacher",
    "this town",
    "my neighbour",
    "the new law",
    "a small dog",
    "the mayor",
    "our team",
]
_VERBS = ["changed", "surprised", "helped", "confused", "rebuilt", "explained", "saved", "ignored"]
_ENDINGS = ["last week", "in one day", "for everyone", "without a plan", "again", "at dawn"]


def _planted_ab_tests(n_tests: int, seed: int) -> list[ABVariant]:
    """Synthetic tests where variants saying "incredible" or asking a question truly win."""
    rng = random.Random(seed)
    variants = []
    for test in range(n_tests):
        base_ctr = rng.uniform(0.01, 0.03)
        for v in range(rng.choice((2, 3, 4))):
            text = (
                f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} {rng.choice(_ENDINGS)}"
            )
            lift = 1.0
            if rng.random() < 0.5:
                text = "Incredible: " + text
                lift *= 1.35
            if rng.random() < 0.3:
                text += "?"
                lift *= 1.15
            impressions = rng.randint(2000, 5000)
            clicks = sum(rng.random() < base_ctr * lift for _ in range(impressions))
            variants.append(
                ABVariant(f"t{test}/img", f"{text} #{v}", impressions, clicks, f"t{test}")
            )
    return variants


def test_learns_a_planted_effect_and_beats_chance() -> None:
    train = _planted_ab_tests(300, seed=1)
    test = _planted_ab_tests(200, seed=2)
    model = ContentEffectModel(HASHING, HashingEmbedder(32)).fit(train)
    report = model.evaluate(test)
    length_only = pairwise_accuracy(lambda ts: [float(len(t)) for t in ts], build_pairs(test))
    assert report.pairs > 300
    assert report.accuracy > 0.6
    assert report.significant_accuracy > 0.75
    assert report.accuracy > length_only.accuracy + 0.05
    hooked, plain = model.score(
        ["Incredible: the mayor saved our team #0", "The mayor saved our team #0"]
    )
    assert hooked > plain


def test_score_differences_read_as_win_probabilities() -> None:
    model = ContentEffectModel(HASHING, HashingEmbedder(32)).fit(_planted_ab_tests(300, seed=1))
    pairs = build_pairs(_planted_ab_tests(200, seed=2))
    texts = sorted({p.first for p in pairs} | {p.second for p in pairs})
    scores = dict(zip(texts, model.score(texts), strict=True))
    predicted = np.asarray([1 / (1 + np.exp(-(scores[p.first] - scores[p.second]))) for p in pairs])
    observed = np.asarray([p.first_wins for p in pairs], dtype=float)
    confident = predicted > 0.6
    assert confident.sum() > 50
    assert observed[confident].mean() > 0.6  # a predicted >60% winner wins more often than not


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = ContentEffectModel(HASHING, HashingEmbedder(32)).fit(_planted_ab_tests(120, seed=5))
    texts = ["Incredible: a teacher helped again #1", "The river ignored again #2", "新品上市"]
    loaded = ContentEffectModel.load(model.save(tmp_path / "ce"), HashingEmbedder(32))
    assert loaded.score(texts) == model.score(texts)


def test_too_few_pairs_is_a_domain_error() -> None:
    with pytest.raises(InsufficientDataError) as caught:
        ContentEffectModel(HASHING, HashingEmbedder(32)).fit(_planted_ab_tests(3, seed=1))
    assert caught.value.needed == 20 and caught.value.found < 20


@pytest.mark.skipif(
    not UPWORTHY.exists(), reason=f"reference data not present at {UPWORTHY} (../shared/data)"
)
def test_upworthy_real_ab_tests_beat_chance() -> None:
    """Real headlines nobody here wrote: TF-IDF part alone (no transformer: fast) must beat
    chance on held-out tests. The full model's figures come from bench/upworthy_pairwise.py."""
    from copyloop.prediction.offline.upworthy import load_upworthy

    variants = load_upworthy(UPWORTHY)
    assert len({v.test_id for v in variants}) == 3899
    train, test = split_by_test(variants, 0.5, seed=0)
    config = ContentEffectConfig(embedder_name="hashing-ngrams-32", use_dense=False)
    report = ContentEffectModel(config, HashingEmbedder(32)).fit(train).evaluate(test)
    assert report.pairs > 5000 and report.significant_pairs > 1000
    assert report.accuracy > 0.54
    assert report.significant_accuracy > 0.58


def test_scorer_reports_copy_quality_from_the_content_model(trained, market_log) -> None:  # type: ignore[no-untyped-def]
    from copyloop.prediction.serving.scorer import Scorer

    content = ContentEffectModel(HASHING, HashingEmbedder(32)).fit(_planted_ab_tests(200, seed=4))
    first = market_log.examples[0]
    candidates = [(e.item, e.copy) for e in market_log.examples[:20]]
    results = Scorer(trained, copy_quality=content).score(first.user, first.context, candidates)
    # Scored in different batches (the scorer scores each distinct text once), so equal up to
    # float rounding, not bit for bit.
    assert [r.copy_quality for r in results] == pytest.approx(
        content.score([c.text for _, c in candidates]), rel=1e-9, abs=1e-12
    )
