"""Baselines the ESMM model must beat; training scores them on the same evaluation window.

- `LogisticBaseline`: logistic regression on exactly the encoder's features (hashed one-hot
  categoricals, n-gram bags, dense and text vectors), one for CTR and one for CVR on clicks.
- `PopularityPrior`: smoothed CTR/CVR per item and per channel, combined multiplicatively.
- `CalibratedColdStart`: the prior used before any model is trained
  (`copyloop.prediction.serving.cold_start`), its numbers recalibrated on the training window:
  the first model must beat it, since it is what that model replaces.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from torch import nn
from torch.nn import functional as F

from copyloop.prediction.features.encoder import EncodedBatch, FeatureEncoder
from copyloop.prediction.features.prior import logit
from copyloop.prediction.features.types import (
    TrainingExample,
)
from copyloop.prediction.model.esmm import embedding_bags, mean_weights
from copyloop.prediction.model.predictions import Predictions
from copyloop.prediction.serving.cold_start import ColdStartPrior


class _LinearScore(nn.Module):
    """w . x + b over the encoder's inputs (each hashed id has its own weight)."""

    def __init__(self, encoder: FeatureEncoder) -> None:
        super().__init__()
        cfg = encoder.config
        self.fields = nn.Embedding(encoder.table_size, 1, sparse=True)
        self.bags = nn.ModuleDict(
            {
                name: nn.EmbeddingBag(size, 1, mode="sum", sparse=True)
                for name, size in cfg.bag_buckets().items()
            }
        )
        self.dense = nn.Linear(encoder.n_dense, 1)
        self.text = nn.Linear(encoder.text_dim, 1, bias=False)
        nn.init.zeros_(self.fields.weight)
        for bag in embedding_bags(self.bags):
            nn.init.zeros_(bag.weight)

    def sparse_parameters(self) -> list[torch.Tensor]:
        return [self.fields.weight, *(bag.weight for bag in embedding_bags(self.bags))]

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        score: torch.Tensor = (
            self.fields(x["cat"]).sum(dim=(1, 2))
            + sum(
                bag(x[name], per_sample_weights=mean_weights(x[name])).squeeze(-1)
                for name, bag in self.bags.items()
            )
            + self.dense(x["dense"]).squeeze(-1)
            + self.text(x["text"]).squeeze(-1)
        )
        return score


def _fit_linear(
    module: _LinearScore,
    batch: EncodedBatch,
    labels: NDArray[Any],
    epochs: int,
    seed: int,
    l2: float,
) -> None:
    generator = torch.Generator().manual_seed(seed)
    sparse = module.sparse_parameters()
    dense = [*module.dense.parameters(), *module.text.parameters()]
    optimizers = [torch.optim.SparseAdam(sparse, lr=0.02), torch.optim.Adam(dense, lr=0.02)]
    inputs = batch.tensors()
    y = torch.from_numpy(labels.astype(np.float32))
    n = len(batch)
    with torch.no_grad():  # start at the base rate so early steps do not waste effort on the bias
        rate = float(np.clip(labels.mean(), 1e-4, 1 - 1e-4))
        module.dense.bias.fill_(math.log(rate / (1 - rate)))
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, 1024):
            idx = order[start : start + 1024]
            logits = module({k: v[idx] for k, v in inputs.items()})
            loss = F.binary_cross_entropy_with_logits(logits, y[idx])
            loss = loss + l2 * (module.fields(inputs["cat"][idx]) ** 2).mean()
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()


class LogisticBaseline:
    """Logistic regression for CTR (all impressions) and CVR (clicked impressions)."""

    def __init__(self, encoder: FeatureEncoder, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.encoder = encoder
        self.seed = seed
        self.ctr = _LinearScore(encoder)
        self.cvr = _LinearScore(encoder)

    def fit(self, batch: EncodedBatch, epochs: int = 3, l2: float = 1e-3) -> LogisticBaseline:
        assert batch.clicked is not None and batch.converted is not None
        _fit_linear(self.ctr, batch, batch.clicked, epochs, self.seed, l2)
        clicked = np.flatnonzero(batch.clicked > 0)
        if clicked.size:
            _fit_linear(
                self.cvr,
                batch.take(clicked),
                batch.converted[clicked],
                epochs + 2,
                self.seed + 1,
                l2,
            )
        return self

    def predict(self, batch: EncodedBatch) -> Predictions:
        with torch.inference_mode():
            inputs = batch.tensors()
            p_ctr = torch.sigmoid(self.ctr(inputs)).double().numpy()
            p_cvr = torch.sigmoid(self.cvr(inputs)).double().numpy()
        return Predictions(p_ctr, p_cvr)


@dataclass
class _Rate:
    trials: float = 0.0
    successes: float = 0.0


class PopularityPrior:
    """P(click) ~ item rate x channel rate / global rate, each smoothed towards the global rate
    with `strength` pseudo-observations; the same for P(purchase | click) over clicks."""

    def __init__(self, strength: float = 20.0) -> None:
        self.strength = strength
        self.global_ctr = 0.0
        self.global_cvr = 0.0
        self._item_click: dict[str, _Rate] = defaultdict(_Rate)
        self._item_conv: dict[str, _Rate] = defaultdict(_Rate)
        self._channel_click: dict[str, _Rate] = defaultdict(_Rate)
        self._channel_conv: dict[str, _Rate] = defaultdict(_Rate)

    def fit(self, examples: Sequence[TrainingExample]) -> PopularityPrior:
        clicks = conversions = 0
        for ex in examples:
            converted = ex.clicked and ex.converted
            for table, key in (
                (self._item_click, ex.item.item_id),
                (self._channel_click, ex.context.channel),
            ):
                table[key].trials += 1
                table[key].successes += ex.clicked
            if ex.clicked:
                for table, key in (
                    (self._item_conv, ex.item.item_id),
                    (self._channel_conv, ex.context.channel),
                ):
                    table[key].trials += 1
                    table[key].successes += converted
            clicks += ex.clicked
            conversions += converted
        self.global_ctr = (clicks + 1.0) / (len(examples) + 2.0)
        self.global_cvr = (conversions + 1.0) / (clicks + 2.0)
        return self

    def _smoothed(self, table: dict[str, _Rate], key: str, prior: float) -> float:
        rate = table.get(key)
        if rate is None:
            return prior
        return (rate.successes + self.strength * prior) / (rate.trials + self.strength)

    def predict_pairs(self, item_ids: Sequence[str], channels: Sequence[str]) -> Predictions:
        p_ctr = np.empty(len(item_ids))
        p_cvr = np.empty(len(item_ids))
        for row, (item_id, channel) in enumerate(zip(item_ids, channels, strict=True)):
            ctr = self._smoothed(self._item_click, item_id, self.global_ctr)
            ctr *= self._smoothed(self._channel_click, channel, self.global_ctr) / self.global_ctr
            cvr = self._smoothed(self._item_conv, item_id, self.global_cvr)
            cvr *= self._smoothed(self._channel_conv, channel, self.global_cvr) / self.global_cvr
            p_ctr[row] = min(ctr, 0.999)
            p_cvr[row] = min(cvr, 0.999)
        return Predictions(p_ctr, p_cvr)

    def predict(self, examples: Sequence[TrainingExample]) -> Predictions:
        return self.predict_pairs(
            [e.item.item_id for e in examples], [e.context.channel for e in examples]
        )


class CalibratedColdStart:
    """The cold-start prior's ranking with calibrated numbers: P(click) = sigmoid(a + b *
    logit(prior)) with b >= 0, fit on the training window, and P(purchase | click) the window's
    smoothed rate. The prior's base rates are guesses, so comparing a model with the raw prior
    on log loss or calibration would reward any model for knowing the base rate; this keeps the
    comparison about what each ranks above what (a monotone map leaves the prior's AUC as is)."""

    def __init__(self) -> None:
        self.intercept = 0.0
        self.slope = 1.0
        self.cvr = 0.0

    def fit(self, examples: Sequence[TrainingExample]) -> CalibratedColdStart:
        clicked = np.asarray([e.clicked for e in examples], dtype=np.float64)
        clicks = float(clicked.sum())
        conversions = sum(e.clicked and e.converted for e in examples)
        self.cvr = (conversions + 1.0) / (clicks + 2.0)
        base = float(logit((clicks + 1.0) / (len(examples) + 2.0)))
        self.intercept, self.slope = base, 0.0
        if 0 < clicks < len(examples):
            x = logit(ColdStartPrior().predict_examples(examples).p_ctr)
            fit = LogisticRegression(C=1e4, max_iter=1000).fit(x[:, None], clicked)
            slope = float(fit.coef_[0][0])
            if slope > 0:  # a prior that ranks backwards on this window keeps its ranking
                self.intercept, self.slope = float(fit.intercept_[0]), slope
            else:  # and only the base rate is learned (slope 0 would tie every score)
                self.slope = 1e-3
                self.intercept = base - self.slope * float(x.mean())
        return self

    def predict(self, examples: Sequence[TrainingExample]) -> Predictions:
        x = logit(ColdStartPrior().predict_examples(examples).p_ctr)
        p_ctr = 1.0 / (1.0 + np.exp(-(self.intercept + self.slope * x)))
        return Predictions(p_ctr, np.full(len(examples), self.cvr))
