"""Score (item, copy) candidates for one shopper in one context, in one batched forward pass.

Attribution (why it is done this way): each candidate's top features are gradient x input of
log(pCTCVR) on the model's first-layer feature groups (each categorical field, each bag, the
copy embedding, named groups of dense features), from one backward pass over the batch sum.
It explains the model actually serving, not a proxy, for about the cost of a second forward
pass; the numbers are local sensitivities on the log-probability scale (before calibration),
useful to rank reasons, not additive shares. Set `top_k=0` to skip it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from numpy.typing import NDArray

from copyloop.prediction.features.encoder import CAT_FIELDS, FeatureEncoder
from copyloop.prediction.features.types import (
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    ScoreResult,
    UserFeatures,
)
from copyloop.prediction.model.esmm import attribute_groups
from copyloop.prediction.model.runtime import torch_threads
from copyloop.prediction.model.version import ModelVersion
from copyloop.prediction.serving.cold_start import COLD_START_VERSION, ColdStartPrior


def _result(
    p_ctr: float,
    p_cvr: float,
    p_ctcvr: float,
    copy_quality: float | None,
    top_features: list[tuple[str, float]],
    model_version: str,
) -> ScoreResult:
    """Build a frozen ScoreResult without its generated __init__ (object.__setattr__ per
    field), which was a measurable share of a 1,000-candidate call; same fields, same value."""
    result = object.__new__(ScoreResult)
    result.__dict__.update(
        p_ctr=p_ctr,
        p_cvr=p_cvr,
        p_ctcvr=p_ctcvr,
        copy_quality=copy_quality,
        top_features=top_features,
        model_version=model_version,
    )
    return result


@dataclass(frozen=True)
class ScoreArrays:
    """One call's scores, row i for candidate i: probabilities, copy quality (None when no
    model rates copy) and the top features as indices into `names` with their values."""

    p_ctr: NDArray[np.float64]
    p_cvr: NDArray[np.float64]
    p_ctcvr: NDArray[np.float64]
    copy_quality: list[float | None]
    top_index: NDArray[np.int64]  # [n, k]
    top_value: NDArray[np.float64]  # [n, k]
    names: list[str]
    model_version: str
    is_prior: bool

    @classmethod
    def empty(cls, model_version: str, is_prior: bool = False) -> ScoreArrays:
        nothing = np.zeros(0)
        return cls(
            nothing,
            nothing,
            nothing,
            [],
            np.zeros((0, 0), np.int64),
            np.zeros((0, 0)),
            [],
            model_version,
            is_prior,
        )

    def __len__(self) -> int:
        return int(self.p_ctr.shape[0])

    def results(self) -> list[ScoreResult]:
        """One ScoreResult per row."""
        group_names = np.asarray(self.names, dtype=object)[self.top_index].tolist()
        tops = [
            list(zip(row_names, row_values, strict=True))
            for row_names, row_values in zip(group_names, self.top_value.tolist(), strict=True)
        ]
        version = self.model_version
        return [
            _result(ctr, cvr, ctcvr, q, features, version)
            for ctr, cvr, ctcvr, q, features in zip(
                self.p_ctr.tolist(),
                self.p_cvr.tolist(),
                self.p_ctcvr.tolist(),
                self.copy_quality,
                tops,
                strict=True,
            )
        ]


class CopyQualityModel(Protocol):
    """Anything that rates copy texts (e.g. `ContentEffectModel`); higher is better."""

    def score(self, texts: Sequence[str]) -> list[float]: ...


class Scorer:
    """Batched, deterministic scoring with a trained version, or the cold-start prior."""

    def __init__(
        self,
        version: ModelVersion | None,
        copy_quality: CopyQualityModel | None = None,
        top_k: int = 3,
        num_threads: int | None = 1,
    ) -> None:
        self.version = version
        self.copy_quality = copy_quality
        self.top_k = top_k
        self.num_threads = num_threads
        self._prior = ColdStartPrior()
        self._dense_groups = FeatureEncoder.dense_groups()
        self._quality_cache: dict[str, float] = {}

    @property
    def model_version(self) -> str:
        return self.version.version_id if self.version is not None else COLD_START_VERSION

    @property
    def is_prior(self) -> bool:
        """True while no trained model exists and scores are the cold-start prior's guesses."""
        return self.version is None

    def _quality(self, copies: Sequence[CopyFeatures]) -> list[float | None]:
        if self.copy_quality is None:
            return [None] * len(copies)
        cache = self._quality_cache
        missing = list(dict.fromkeys(c.text for c in copies if c.text not in cache))
        if missing:
            if len(cache) > 200_000:
                cache.clear()
            cache.update(
                zip(missing, (float(s) for s in self.copy_quality.score(missing)), strict=True)
            )
        return [cache[c.text] for c in copies]

    def score(
        self,
        user: UserFeatures,
        context: ContextFeatures,
        candidates: Sequence[tuple[ItemFeatures, CopyFeatures]],
        top_k: int | None = None,
    ) -> list[ScoreResult]:
        """One `ScoreResult` per candidate, in order (calibrated pCTR, pCVR, pCTCVR).

        `top_k` overrides the scorer's explanation count for this call; 0 skips attribution,
        which halves the cost of a large call (see bench/score_throughput.py).
        """
        return self.score_arrays(user, context, candidates, top_k).results()

    def score_arrays(
        self,
        user: UserFeatures,
        context: ContextFeatures,
        candidates: Sequence[tuple[ItemFeatures, CopyFeatures]],
        top_k: int | None = None,
    ) -> ScoreArrays:
        """`score` as arrays, without a Python object per candidate (Score's reply is encoded
        from them directly)."""
        n = len(candidates)
        top_k = self.top_k if top_k is None else top_k
        quality = self._quality([c[1] for c in candidates]) if n else []
        if self.version is None:
            return self._score_prior(user, context, candidates, quality)
        version = self.version
        if not n:
            return ScoreArrays.empty(version.version_id)
        batch = version.encoder.encode_candidates(user, context, candidates)
        with torch_threads(self.num_threads):
            if version.model.training:  # eval() walks every module: a share of small calls
                version.model.eval()
            inputs = batch.tensors()
            if top_k > 0:
                ctr_logit, cvr_logit, contributions, names = attribute_groups(
                    version.model, inputs, self._dense_groups, CAT_FIELDS
                )
            else:
                with torch.inference_mode():
                    ctr_logit, cvr_logit = version.model(inputs)
                contributions, names = None, []
            p_ctr = torch.sigmoid(ctr_logit).double().numpy()
            p_cvr = torch.sigmoid(cvr_logit).double().numpy()
        p_ctr = version.calibration.ctr.apply(p_ctr)
        p_cvr = version.calibration.cvr.apply(p_cvr)
        if contributions is not None:
            top_index, top_value = self._top_features(contributions, top_k)
        else:
            top_index, top_value = np.zeros((n, 0), np.int64), np.zeros((n, 0))
        return ScoreArrays(
            p_ctr,
            p_cvr,
            p_ctr * p_cvr,
            quality,
            top_index,
            top_value,
            names,
            version.version_id,
            is_prior=False,
        )

    def _top_features(
        self, contributions: torch.Tensor, top_k: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The k largest |contributions| per row, largest first, as (group index, value
        rounded to 6 places); ties go to the lower group index. k rounds of argmax: for small
        k much cheaper than sorting every row."""
        values = contributions.numpy().astype(np.float64)
        k = min(top_k, values.shape[1])
        magnitude = np.abs(values)
        rows = np.arange(values.shape[0])
        chosen = np.empty((values.shape[0], k), dtype=np.int64)
        for rank in range(k):
            best = magnitude.argmax(axis=1)  # first maximum: the lower index wins a tie
            chosen[:, rank] = best
            magnitude[rows, best] = -1.0
        return chosen, np.take_along_axis(values, chosen, 1).round(6)

    def _score_prior(
        self,
        user: UserFeatures,
        context: ContextFeatures,
        candidates: Sequence[tuple[ItemFeatures, CopyFeatures]],
        quality: list[float | None],
    ) -> ScoreArrays:
        preds = self._prior.predict(user, context, candidates)
        n = len(candidates)
        return ScoreArrays(
            preds.p_ctr.astype(np.float64),
            preds.p_cvr.astype(np.float64),
            preds.p_ctcvr.astype(np.float64),
            quality,
            np.zeros((n, 1), np.int64),
            np.zeros((n, 1)),
            ["cold_start_prior"],
            COLD_START_VERSION,
            is_prior=True,
        )
