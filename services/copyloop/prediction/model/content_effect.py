"""Content-effect model: which copy text wins an A/B test, learned from A/B test history.

Why pairwise: absolute CTRs differ wildly between stories, images and weeks; what transfers is
the *difference* between two texts shown to the same audience at the same time. The model
learns a per-text utility u(text) such that sigmoid(u(a) - u(b)) estimates the chance that a
beats b, training only on pairs from the same group (same test and same image).

u is an ensemble of two linear utilities, each trained with a pairwise logistic loss on
feature differences (both orientations, so no position bias), pairs weighted by their
evidence min(z, 4) + 0.5 so clear wins count more than coin flips:
  - dense: standardised all-MiniLM-L6-v2 sentence embedding + headline style signals;
  - sparse: TF-IDF word uni/bi-grams (what words the winning variant added or dropped).
Each part is standardised on the training texts, mixed with a fixed weight, and the sum is
rescaled by one 1-D logistic fit so score differences read as log-odds of winning.
Choices (C values, mix weight, pair weights) were made by 4-fold cross-validation grouped by
*story* (tests sharing a lede or an image) on the training half of a story-safe split of the
dev file only (bench/upworthy_pairwise.py --cv 4); the held-out half was scored once.
Tried the same way (CV on the training halves of split seeds 0-2) and not adopted, none beating
this mix beyond fold noise (about +-0.003): a character n-gram (char_wb 2-5) TF-IDF member,
impression-weighted ridge on within-group log-odds CTR instead of the pairwise loss, a small
pairwise MLP and k-NN smoothing over the embeddings, one joint model over both feature blocks,
difference-scaled standardisation, extra craft signals, other mix weights and pair weights.

Copy quality (what PredictionService.Score returns as `copy_quality`, and ReviewCopy shows):
  q(text) = sigmoid(ctr_slope * (u(text) - reference)) = r / (1 + r),
where r is the predicted CTR of this text over the CTR of a typical training headline for the
same story and image (reference = mean utility of the training texts). 0.5 is neutral, 0.55
means about 1.22x the clicks, 0.45 about 0.82x. ctr_slope converts the utility (log-odds of
winning a pairwise test) into log CTR: the conditional-logit MLE of which headline each click
of a test came from given impressions, fitted on scores of texts from stories the model did
not see (`set_ctr_slope`, see copyloop.prediction.offline.content_effect); `fit` alone sets it
in-sample (optimistic) so a model is always usable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from copyloop.prediction.errors import InsufficientDataError, ModelFormatError
from copyloop.prediction.features.ab_tests import ABVariant, VariantPair, build_pairs
from copyloop.prediction.features.text import (
    MINILM_NAME,
    CachedEmbedder,
    make_embedder,
    style_signals,
)

CONTENT_FORMAT = 2  # 2: adds ctr_slope and reference (copy quality on the CTR scale)

_HOOK_START = re.compile(
    r"^(this|these|here|here's|why|how|what|watch|when|if|meet|you|she|he|they)\b", re.I
)
_WORDS = re.compile(r"\S+")


def headline_signals(text: str) -> NDArray[np.float32]:
    """Style signals plus headline-craft cues: starts with a hook word, quotes, colon,
    share of capitalised words, ends with a period, and a 'this/these' curiosity gap."""
    words = _WORDS.findall(text)
    lower = text.lower()
    extra = [
        1.0 if _HOOK_START.search(text) else 0.0,
        1.0 if ('"' in text or "“" in text or "'" in text) else 0.0,
        1.0 if ":" in text else 0.0,
        sum(w[:1].isupper() for w in words) / max(len(words), 1),
        1.0 if text.rstrip().endswith(".") else 0.0,
        1.0 if re.search(r"\b(this|these)\b", lower) else 0.0,
    ]
    return np.concatenate([style_signals(text), np.asarray(extra, dtype=np.float32)])


@dataclass(frozen=True)
class ContentEffectConfig:
    embedder_name: str = MINILM_NAME
    dense_c: float = 3e-5  # story-grouped CV: 3e-5 > 1e-4 > 3e-4 (was 3e-4 before)
    tfidf_c: float = 1.0
    tfidf_weight: float = 0.4
    tfidf_min_df: int = 2
    z_cap: float = 4.0
    z_floor: float = 0.5
    min_pairs: int = 50
    seed: int = 0
    use_dense: bool = True  # ablations: either part alone
    use_tfidf: bool = True


@dataclass(frozen=True)
class PairwiseReport:
    """Pairwise accuracy of a model on the pairs of some A/B variants."""

    pairs: int
    accuracy: float
    significant_pairs: int
    significant_accuracy: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _fit_pairwise(
    X: Any, first_wins: NDArray[Any], weights: NDArray[Any], c: float, seed: int
) -> NDArray[np.float64]:
    """Weights w of a no-intercept logistic model P(first wins) = sigmoid(w . (x_first - x_second)),
    fitted on both orientations of every pair."""
    stacked = sparse.vstack([X, -X]) if sparse.issparse(X) else np.vstack([X, -X])
    labels = np.r_[first_wins.astype(int), 1 - first_wins.astype(int)]
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=5000, random_state=seed)
    model.fit(stacked, labels, sample_weight=np.r_[weights, weights])
    coef: NDArray[np.float64] = model.coef_[0].astype(np.float64)
    return coef


class ContentEffectModel:
    """Pairwise-trained copy-quality scorer; `score(texts)` returns log-odds-scale utilities."""

    def __init__(
        self,
        config: ContentEffectConfig = ContentEffectConfig(),
        embedder: CachedEmbedder | None = None,
    ) -> None:
        self.config = config
        self.embedder = embedder or make_embedder(config.embedder_name)
        if not (config.use_dense or config.use_tfidf):
            raise ValueError("at least one of use_dense / use_tfidf must be set")
        if self.embedder.name != config.embedder_name:
            raise ValueError(f"embedder {self.embedder.name!r} != config {config.embedder_name!r}")
        self._mean: NDArray[np.float64] | None = None
        self._scale: NDArray[np.float64] | None = None
        self._dense_coef: NDArray[np.float64] | None = None
        self._vocabulary: dict[str, int] = {}
        self._idf: NDArray[np.float64] | None = None
        self._tfidf_coef: NDArray[np.float64] | None = None
        self._parts_stats: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)
        self._output_scale = 1.0
        self._counter: CountVectorizer | None = None
        self._reference = 0.0  # mean utility of the training texts: quality 0.5
        self._ctr_slope = 0.0  # log CTR per unit of utility (see the module docstring)

    # --- features ---------------------------------------------------------------------------
    def _dense(self, texts: Sequence[str]) -> NDArray[np.float64]:
        if not self.config.use_dense:  # ablation: no embedding work at all
            return np.zeros((len(texts), 1))
        embeddings = self.embedder.embed(list(texts)).astype(np.float64)
        signals = np.stack([headline_signals(t) for t in texts]).astype(np.float64)
        return np.hstack([embeddings, signals])

    def _tfidf(self, texts: Sequence[str]) -> sparse.csr_matrix:
        assert self._counter is not None and self._idf is not None
        counts = self._counter.transform(list(texts)).astype(np.float64)
        counts.data = 1.0 + np.log(counts.data)  # sublinear tf
        weighted = counts @ sparse.diags(self._idf)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
        return sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted

    def _make_counter(self) -> CountVectorizer:
        return CountVectorizer(ngram_range=(1, 2), vocabulary=self._vocabulary, lowercase=True)

    def _raw_parts(self, texts: Sequence[str]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        assert self._mean is not None and self._scale is not None and self._dense_coef is not None
        assert self._tfidf_coef is not None
        dense = ((self._dense(texts) - self._mean) / self._scale) @ self._dense_coef
        tfidf = np.asarray(self._tfidf(texts) @ self._tfidf_coef).ravel()
        return dense, tfidf

    # --- training ---------------------------------------------------------------------------
    def fit(self, variants: Sequence[ABVariant]) -> ContentEffectModel:
        """Learn from A/B history (and an in-sample ctr_slope); raises InsufficientDataError
        with too few usable pairs."""
        pairs = build_pairs(variants)
        if len(pairs) < self.config.min_pairs:
            raise InsufficientDataError(
                "comparable variant pairs",
                self.config.min_pairs,
                len(pairs),
                "pairs need two different texts with different CTRs in the same group",
            )
        self.fit_pairs(pairs)
        self.fit_ctr_slope(variants)  # in-sample; the training command refits it cross-fitted
        return self

    def fit_pairs(self, pairs: Sequence[VariantPair]) -> ContentEffectModel:
        cfg = self.config
        texts = sorted({p.first for p in pairs} | {p.second for p in pairs})
        index = {t: i for i, t in enumerate(texts)}
        first = np.asarray([index[p.first] for p in pairs])
        second = np.asarray([index[p.second] for p in pairs])
        wins = np.asarray([p.first_wins for p in pairs])
        weights = np.minimum(np.asarray([p.z for p in pairs]), cfg.z_cap) + cfg.z_floor

        dense = self._dense(texts)
        self._mean = dense.mean(axis=0)
        self._scale = np.maximum(dense.std(axis=0), 1e-6)
        standard = (dense - self._mean) / self._scale
        self._dense_coef = _fit_pairwise(
            standard[first] - standard[second], wins, weights, cfg.dense_c, cfg.seed
        )

        fitter = CountVectorizer(ngram_range=(1, 2), min_df=cfg.tfidf_min_df, lowercase=True)
        counts = fitter.fit_transform(texts)
        self._vocabulary = {term: int(i) for term, i in fitter.vocabulary_.items()}
        document_freq = np.bincount(counts.indices, minlength=counts.shape[1])
        self._idf = np.log((1.0 + len(texts)) / (1.0 + document_freq)) + 1.0
        self._counter = self._make_counter()
        tfidf = self._tfidf(texts)
        self._tfidf_coef = _fit_pairwise(
            tfidf[first] - tfidf[second], wins, weights, cfg.tfidf_c, cfg.seed
        )

        dense_u, tfidf_u = self._raw_parts(texts)
        self._parts_stats = (
            float(dense_u.mean()),
            float(dense_u.std() + 1e-12),
            float(tfidf_u.mean()),
            float(tfidf_u.std() + 1e-12),
        )
        self._output_scale = 1.0
        utility = self._combine(dense_u, tfidf_u)
        diff = (utility[first] - utility[second])[:, None]
        self._output_scale = float(_fit_pairwise(diff, wins, weights, 1e4, cfg.seed)[0])
        utility *= self._output_scale
        self._reference = float(utility.mean())
        self._ctr_slope = 0.0
        return self

    def fit_ctr_slope(
        self, variants: Sequence[ABVariant], scores: dict[str, float] | None = None
    ) -> float:
        """Set (and return) ctr_slope from `variants`' clicks: from `scores` (text -> utility,
        ideally from models that did not see each text's story) or, without them, from this
        model's own in-sample scores (optimistic)."""
        if scores is None:
            texts = sorted({v.text for v in variants})
            scores = dict(zip(texts, self.score(texts), strict=True))
        self._ctr_slope = ctr_slope(variants, scores)
        return self._ctr_slope

    def _combine(
        self, dense_u: NDArray[np.float64], tfidf_u: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        dm, ds, tm, ts = self._parts_stats
        mixed = np.zeros_like(dense_u)
        if self.config.use_dense:
            mixed += (dense_u - dm) / ds
        if self.config.use_tfidf:
            mixed += self.config.tfidf_weight * (tfidf_u - tm) / ts
        return self._output_scale * mixed

    # --- use --------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self._dense_coef is not None

    def score(self, texts: Sequence[str]) -> list[float]:
        """Utility per text; u(a) - u(b) is the log-odds that a out-clicks b in an A/B test."""
        if not self.is_fitted:
            raise RuntimeError("ContentEffectModel.score called before fit or load")
        if len(texts) == 0:
            return []
        scores: list[float] = self._combine(*self._raw_parts(texts)).tolist()
        return scores

    @property
    def ctr_slope(self) -> float:
        return self._ctr_slope

    def quality(self, texts: Sequence[str]) -> list[float]:
        """Copy quality in (0, 1): r / (1 + r), r = predicted CTR over a typical headline's
        (0.5 = typical). Constant 0.5 while ctr_slope is 0 (no measurable effect)."""
        utility = np.asarray(self.score(texts), dtype=np.float64)
        logit = np.clip(self._ctr_slope * (utility - self._reference), -30.0, 30.0)
        values: list[float] = (1.0 / (1.0 + np.exp(-logit))).tolist()
        return values

    def as_copy_quality(self) -> CopyQualityView:
        """This model as the scorer's copy-quality signal (its `score` is `quality`)."""
        return CopyQualityView(self)

    def evaluate(self, variants: Sequence[ABVariant]) -> PairwiseReport:
        return pairwise_accuracy(self.score, build_pairs(variants))

    # --- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        if not self.is_fitted:
            raise RuntimeError("nothing to save: the model is not fitted")
        assert self._mean is not None and self._scale is not None and self._dense_coef is not None
        assert self._idf is not None and self._tfidf_coef is not None
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        state = {
            "format": CONTENT_FORMAT,
            "config": asdict(self.config),
            "mean": self._mean.tolist(),
            "scale": self._scale.tolist(),
            "dense_coef": self._dense_coef.tolist(),
            "vocabulary": self._vocabulary,
            "idf": self._idf.tolist(),
            "tfidf_coef": self._tfidf_coef.tolist(),
            "parts_stats": list(self._parts_stats),
            "output_scale": self._output_scale,
            "reference": self._reference,
            "ctr_slope": self._ctr_slope,
        }
        (path / "content_effect.json").write_text(json.dumps(state))
        return path

    @staticmethod
    def embedder_of(directory: str | Path) -> str:
        """The embedder a saved model needs (read without loading the model)."""
        file = Path(directory) / "content_effect.json"
        if not file.exists():
            raise ModelFormatError(f"{directory} holds no content_effect.json")
        name: str = json.loads(file.read_text())["config"]["embedder_name"]
        return name

    @classmethod
    def load(
        cls, directory: str | Path, embedder: CachedEmbedder | None = None
    ) -> ContentEffectModel:
        file = Path(directory) / "content_effect.json"
        if not file.exists():
            raise ModelFormatError(f"{directory} holds no content_effect.json")
        state = json.loads(file.read_text())
        if state.get("format") != CONTENT_FORMAT:
            raise ModelFormatError(
                f"content-effect format {state.get('format')} != {CONTENT_FORMAT}: retrain it "
                "(python -m copyloop.prediction.offline.content_effect train)"
            )
        model = cls(ContentEffectConfig(**state["config"]), embedder)
        model._mean = np.asarray(state["mean"])
        model._scale = np.asarray(state["scale"])
        model._dense_coef = np.asarray(state["dense_coef"])
        model._vocabulary = {k: int(v) for k, v in state["vocabulary"].items()}
        model._idf = np.asarray(state["idf"])
        model._tfidf_coef = np.asarray(state["tfidf_coef"])
        dense_mean, dense_std, tfidf_mean, tfidf_std = (float(v) for v in state["parts_stats"])
        model._parts_stats = (dense_mean, dense_std, tfidf_mean, tfidf_std)
        model._output_scale = float(state["output_scale"])
        model._reference = float(state["reference"])
        model._ctr_slope = float(state["ctr_slope"])
        model._counter = model._make_counter()
        return model


def pairwise_accuracy(score: Any, pairs: Sequence[VariantPair]) -> PairwiseReport:
    """Share of pairs where the higher-scored text had the higher CTR (a score tie counts 1/2),
    over all pairs and over pairs whose difference is significant (z >= 1.96)."""
    if not pairs:
        return PairwiseReport(0, float("nan"), 0, float("nan"))
    texts = sorted({p.first for p in pairs} | {p.second for p in pairs})
    values = dict(zip(texts, score(texts), strict=True))
    correct = np.asarray(
        [
            0.5
            if values[p.first] == values[p.second]
            else float((values[p.first] > values[p.second]) == p.first_wins)
            for p in pairs
        ]
    )
    significant = np.asarray([p.significant for p in pairs])
    return PairwiseReport(
        pairs=len(pairs),
        accuracy=float(correct.mean()),
        significant_pairs=int(significant.sum()),
        significant_accuracy=float(correct[significant].mean())
        if significant.any()
        else float("nan"),
    )


class CopyQualityView:
    """A ContentEffectModel seen by the scorer: `score` returns copy quality in (0, 1)."""

    def __init__(self, model: ContentEffectModel) -> None:
        self.model = model

    def score(self, texts: Sequence[str]) -> list[float]:
        return self.model.quality(texts)


def ctr_slope(variants: Sequence[ABVariant], scores: dict[str, float]) -> float:
    """Slope b of log CTR on the score within a group: the conditional-logit MLE of which
    variant each click came from, P(i) = n_i exp(b s_i) / sum_j n_j exp(b s_j), over groups
    with at least two scored variants (bounded to [0, 5]: a negative slope means no usable
    effect, and is read as none)."""
    grouped: dict[str, list[ABVariant]] = {}
    for v in variants:
        if v.impressions > 0 and v.text in scores:
            grouped.setdefault(v.group_id, []).append(v)
    kept = [m for m in grouped.values() if len(m) >= 2 and sum(v.clicks for v in m) > 0]
    if not kept:
        return 0.0
    group = np.concatenate([np.full(len(m), g) for g, m in enumerate(kept)])
    s = np.asarray([scores[v.text] for m in kept for v in m], dtype=np.float64)
    s -= (np.bincount(group, s) / np.bincount(group))[group]  # centred within each group
    if not np.any(np.abs(s) > 1e-12):  # no score differs inside a group: nothing to learn
        return 0.0
    log_n = np.log(np.asarray([v.impressions for m in kept for v in m], dtype=np.float64))
    clicks = np.asarray([v.clicks for m in kept for v in m], dtype=np.float64)
    group_clicks = np.bincount(group, clicks)

    def nll(b: float) -> float:
        logits = log_n + b * s
        top = np.full(len(kept), -np.inf)
        np.maximum.at(top, group, logits)
        log_sum = top + np.log(np.bincount(group, np.exp(logits - top[group])))
        return -float(clicks @ logits - group_clicks @ log_sum)

    return float(minimize_scalar(nll, bounds=(0.0, 5.0), method="bounded").x)
