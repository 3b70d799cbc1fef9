"""Scorer: batched, deterministic, consistent with the version, honest about cold start."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from copyloop.demo.market import ImpressionLog
from copyloop.prediction.features.encoder import CAT_FIELDS, FeatureEncoder
from copyloop.prediction.features.types import (
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    UserFeatures,
)
from copyloop.prediction.model.version import ModelVersion
from copyloop.prediction.serving.cold_start import COLD_START_VERSION
from copyloop.prediction.serving.scorer import Scorer


def _request(
    log: ImpressionLog, n: int = 200
) -> tuple[UserFeatures, ContextFeatures, list[tuple[ItemFeatures, CopyFeatures]]]:
    first = log.examples[0]
    return first.user, first.context, [(e.item, e.copy) for e in log.examples[:n]]


def test_scores_are_deterministic_and_in_order(
    trained: ModelVersion, market_log: ImpressionLog
) -> None:
    user, context, candidates = _request(market_log)
    scorer = Scorer(trained)
    first = scorer.score(user, context, candidates)
    second = Scorer(trained).score(user, context, list(candidates))
    assert first == second
    assert len(first) == len(candidates)
    # a candidate's score does not depend on its batch-mates (up to float summation order)
    subset = scorer.score(user, context, candidates[10:20])
    assert np.allclose([r.p_ctcvr for r in subset], [r.p_ctcvr for r in first[10:20]], rtol=1e-5)
    assert scorer.score(user, context, []) == []


def test_scores_match_the_version_and_esmm_identity(
    trained: ModelVersion, market_log: ImpressionLog
) -> None:
    user, context, candidates = _request(market_log)
    results = Scorer(trained, top_k=0).score(user, context, candidates)
    expected = trained.predict(trained.encoder.encode_candidates(user, context, candidates))
    assert np.allclose([r.p_ctr for r in results], expected.p_ctr, atol=1e-6)
    assert np.allclose([r.p_cvr for r in results], expected.p_cvr, atol=1e-6)
    for r in results:
        assert r.p_ctcvr == r.p_ctr * r.p_cvr
        assert 0 < r.p_ctr < 1 and 0 < r.p_cvr < 1
        assert (
            r.model_version == trained.version_id
            and r.copy_quality is None
            and r.top_features == []
        )


def test_top_features_name_real_feature_groups(
    trained: ModelVersion, market_log: ImpressionLog
) -> None:
    user, context, candidates = _request(market_log, 50)
    results = Scorer(trained, top_k=4).score(user, context, candidates)
    known = set(CAT_FIELDS) | {g for g, _ in FeatureEncoder.dense_groups()}
    known |= {"user_segments", "x_segments_style", "copy_ngrams", "copy_embedding"}
    for r in results:
        assert len(r.top_features) == 4
        names = [n for n, _ in r.top_features]
        assert set(names) <= known
        magnitudes = [abs(v) for _, v in r.top_features]
        assert magnitudes == sorted(magnitudes, reverse=True)
    # with attribution on, the probabilities are the same as without
    plain = Scorer(trained, top_k=0).score(user, context, candidates)
    assert [r.p_ctcvr for r in plain] == [r.p_ctcvr for r in results]
    # a per-call override: fewer explanations, or none at all
    two = Scorer(trained, top_k=4).score(user, context, candidates, top_k=2)
    assert [r.top_features for r in two] == [r.top_features[:2] for r in results]
    assert all(
        r.top_features == []
        for r in Scorer(trained, top_k=4).score(user, context, candidates, top_k=0)
    )


def test_attribution_reflects_a_change_in_the_input(
    trained: ModelVersion, market_log: ImpressionLog
) -> None:
    """Gradient x input of a zero input is zero: a shopper without affinities gets no
    category-affinity contribution, one with a strong affinity does."""
    _user, context, candidates = _request(market_log, 30)
    blank = UserFeatures(user_id="nobody", cold_start=True)
    results = Scorer(trained, top_k=60).score(blank, context, candidates)
    for r in results:
        assert dict(r.top_features)["category_affinity"] == 0.0


class _LengthQuality:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def score(self, texts: Sequence[str]) -> list[float]:
        self.calls.append(list(texts))
        return [float(len(t)) for t in texts]


def test_copy_quality_comes_from_the_content_model_and_is_cached(
    trained: ModelVersion, market_log: ImpressionLog
) -> None:
    user, context, candidates = _request(market_log, 100)
    quality = _LengthQuality()
    scorer = Scorer(trained, copy_quality=quality)
    results = scorer.score(user, context, candidates)
    assert [r.copy_quality for r in results] == [float(len(c.text)) for _, c in candidates]
    assert len(quality.calls[0]) == len({c.text for _, c in candidates})  # unique texts only
    scorer.score(user, context, candidates)
    assert len(quality.calls) == 1


def test_cold_start_prior_says_so(market_log: ImpressionLog) -> None:
    user, context, candidates = _request(market_log, 20)
    scorer = Scorer(None)
    assert scorer.is_prior and scorer.model_version == COLD_START_VERSION
    results = scorer.score(user, context, candidates)
    assert all(r.model_version == COLD_START_VERSION for r in results)
    assert all(r.top_features == [("cold_start_prior", 0.0)] for r in results)
    assert all(0 < r.p_ctr < 0.2 and r.p_ctcvr == r.p_ctr * r.p_cvr for r in results)
    popular = ItemFeatures("hot", ("toys",), "x", 10.0, 0.0, popularity=5000)
    obscure = ItemFeatures("cold", ("toys",), "x", 10.0, 0.0, popularity=0)
    copy = CopyFeatures("c", "A toy.")
    hot, cold = scorer.score(user, context, [(popular, copy), (obscure, copy)])
    assert hot.p_ctr > cold.p_ctr
