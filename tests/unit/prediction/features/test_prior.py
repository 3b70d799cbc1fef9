"""The cold-start prior's formula, used by the prior that scores before any model and as the
offset a model learns its correction on: one formula, the same numbers in both places."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from copyloop.demo.market import ImpressionLog
from copyloop.prediction.features.encoder import EncoderConfig, FeatureEncoder
from copyloop.prediction.features.prior import CHANNEL_CTR, prior_ctr, prior_logit
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.model.esmm import EsmmModel, InputDims, ModelConfig
from copyloop.prediction.serving.cold_start import ColdStartPrior


def test_lifts_are_bounded_and_ordered() -> None:
    base = CHANNEL_CTR["push"]
    assert prior_ctr(base, 0.0, 0.0) == base
    assert prior_ctr(base, 1e9, 5.0) <= 3 * base  # both lifts saturate: x1.5 and x2
    on_taste, off_taste = prior_ctr(base, 2.0, np.array([0.8, -0.3]))
    assert on_taste > off_taste == prior_ctr(base, 2.0, 0.0)  # negative affinity is no lift
    assert prior_logit(base, 2.0, 0.8) == np.log(on_taste / (1 - on_taste))


@pytest.fixture
def encoder(embedder: HashingEmbedder) -> FeatureEncoder:
    return FeatureEncoder(EncoderConfig(embedder_name=embedder.name), embedder)


def test_the_encoder_carries_the_cold_start_priors_logit(
    encoder: FeatureEncoder, market_log: ImpressionLog
) -> None:
    examples = market_log.examples[:300]
    batch = encoder.encode_examples(examples)
    assert batch.prior is not None
    expected = ColdStartPrior().predict_examples(examples).p_ctr
    # The encoder also reads affinities keyed by joined category prefixes; the market's
    # profiles key by top category, so both see the same affinity here.
    assert np.allclose(batch.prior, np.log(expected / (1 - expected)), atol=1e-4)


def test_an_untrained_model_with_the_offset_predicts_the_prior(
    encoder: FeatureEncoder, market_log: ImpressionLog
) -> None:
    batch = encoder.encode_examples(market_log.examples[:64])
    torch.manual_seed(0)
    model = EsmmModel(InputDims.of(encoder), ModelConfig(prior_offset=True))
    with torch.inference_mode():
        ctr_logit, _ = model(batch.tensors())
    assert batch.prior is not None
    assert np.allclose(ctr_logit.numpy(), batch.prior, atol=1e-6)
    without = EsmmModel(InputDims.of(encoder), ModelConfig(prior_offset=False))
    with torch.inference_mode():
        plain, _ = without(batch.tensors())
    assert not np.allclose(plain.numpy(), batch.prior, atol=1e-3)


def test_versions_saved_before_the_offset_load_without_it() -> None:
    saved = ModelConfig(prior_offset=False).to_dict()
    del saved["prior_offset"]
    assert ModelConfig.from_dict(saved).prior_offset is False
    assert ModelConfig().prior_offset is True
