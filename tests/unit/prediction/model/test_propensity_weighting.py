"""Inverse-propensity weighting of the ESMM loss: weighted when propensities are logged, the
plain loss (bit for bit) when none is."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from copyloop.demo.market import ImpressionLog
from copyloop.prediction.features.encoder import FeatureEncoder
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.model.esmm import esmm_loss, propensity_weights
from copyloop.prediction.training.trainer import fit_esmm

from ..conftest import small_config


def test_weights_are_clipped_inverse_propensities_with_mean_one() -> None:
    p = torch.tensor([0.5, 0.25, 0.01, 0.0], dtype=torch.float64)
    w = propensity_weights(p, clip=10.0)
    assert w is not None
    raw = np.array([2.0, 4.0, 10.0])  # 1/0.01 = 100 is clipped to 10
    assert w[:3].numpy() == pytest.approx(raw / raw.mean(), rel=1e-6)
    assert float(w[3]) == 1.0  # unknown propensity weighs 1
    assert propensity_weights(torch.zeros(4, dtype=torch.float64), clip=10.0) is None


def test_weighted_loss_differs_when_propensities_vary_and_not_when_none_is_known() -> None:
    gen = torch.Generator().manual_seed(0)
    ctr_logit = torch.randn(64, generator=gen)
    cvr_logit = torch.randn(64, generator=gen)
    clicked = (torch.rand(64, generator=gen) < 0.3).float()
    converted = clicked * (torch.rand(64, generator=gen) < 0.3).float()
    plain = esmm_loss(ctr_logit, cvr_logit, clicked, converted)

    varying = torch.rand(64, generator=gen, dtype=torch.float64) * 0.9 + 0.05
    weighted = esmm_loss(
        ctr_logit, cvr_logit, clicked, converted, propensity_weights(varying, 10.0)
    )
    assert abs(float(weighted) - float(plain)) > 1e-3

    unknown = propensity_weights(torch.zeros(64, dtype=torch.float64), 10.0)
    assert torch.equal(esmm_loss(ctr_logit, cvr_logit, clicked, converted, unknown), plain)
    constant = propensity_weights(torch.full((64,), 0.25, dtype=torch.float64), 10.0)
    assert float(esmm_loss(ctr_logit, cvr_logit, clicked, converted, constant)) == pytest.approx(
        float(plain), rel=1e-6
    )


def test_training_is_unchanged_without_propensities_and_changes_with_them(
    market_log: ImpressionLog, embedder: HashingEmbedder
) -> None:
    config = small_config(epochs=1, min_steps_per_epoch=10)
    encoder = FeatureEncoder(config.encoder, embedder)
    examples = market_log.examples[:1500]
    fit = encoder.encode_examples(examples[:1200])
    holdout = encoder.encode_examples(examples[1200:])

    def weights_after(propensity: np.ndarray | None) -> dict[str, torch.Tensor]:
        model, _ = fit_esmm(
            encoder, dataclasses.replace(fit, propensity=propensity), holdout, config
        )
        return model.state_dict()

    legacy = weights_after(None)  # a batch from before propensities existed
    unknown = weights_after(np.zeros(len(fit)))
    assert all(torch.equal(legacy[k], unknown[k]) for k in legacy)
    varying = np.random.default_rng(0).uniform(0.05, 1.0, len(fit))
    weighted = weights_after(varying)
    assert not all(torch.equal(legacy[k], weighted[k]) for k in legacy)
