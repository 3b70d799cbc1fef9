"""PredictionService with a saved content-effect model: Score's copy_quality over real gRPC is
the model's quality (distinct per text, in (0, 1), higher for the text it learned to prefer);
without a model every copy reads 0.5."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from tests.integration.prediction.test_service import auth, score_request, settings_for

from copyloop.demo.market import MarketConfig, SyntheticMarket, synthetic_items
from copyloop.prediction.features.ab_tests import ABVariant
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.features.types import TrainingExample
from copyloop.prediction.main import start_prediction_service
from copyloop.prediction.model.content_effect import ContentEffectConfig, ContentEffectModel
from copyloop.prediction.settings import PredictionSettings
from copyloop.v1 import prediction_pb2_grpc

TEXTS = [
    "Incredible: the reading lamp everyone wants",
    "The reading lamp everyone wants",
    "Reading lamp, now $24.99",
    "A lamp",
]


def _content_model(directory: Path) -> Path:
    """A small model over the service's own embedder (hashing, 64-d): "Incredible:" wins."""
    rng = random.Random(7)
    nouns = ["lamp", "kettle", "chair", "blanket", "mug", "desk", "shelf", "rug"]
    variants = []
    for test in range(80):
        for v in range(3):
            hooked = rng.random() < 0.5
            text = ("Incredible: " if hooked else "") + f"the {rng.choice(nouns)} {test}.{v}"
            clicks = rng.randint(70, 100) if hooked else rng.randint(40, 70)
            variants.append(ABVariant(f"t{test}/i", text, 3000, clicks, f"t{test}"))
    config = ContentEffectConfig(embedder_name="hashing-ngrams-64", min_pairs=20)
    model = ContentEffectModel(config, HashingEmbedder(64)).fit(variants)
    assert model.ctr_slope > 0
    return model.save(directory)


@pytest.fixture(scope="module")
def examples() -> list[TrainingExample]:
    market = SyntheticMarket(synthetic_items(20, seed=5), MarketConfig(n_shoppers=20), seed=5)
    log = market.generate(50, start_time=1_760_000_000.0, duration_s=86_400.0, seed=6).examples
    return [
        replace(e, copy=replace(e.copy, creative_id=f"cr{i}", text=TEXTS[i]))
        for i, e in enumerate(log[: len(TEXTS)])
    ]


async def _copy_quality(
    settings: PredictionSettings, examples: list[TrainingExample]
) -> list[float]:
    service = await start_prediction_service(settings)
    try:
        async with grpc.aio.insecure_channel(service.address) as channel:
            stub = prediction_pb2_grpc.PredictionServiceStub(channel)
            reply = await stub.Score(score_request(examples), metadata=auth())
    finally:
        await service.stop(0)
    return [s.copy_quality for s in reply.scores]


async def test_score_returns_the_content_models_copy_quality(
    tmp_path: Path, examples: list[TrainingExample]
) -> None:
    folder = _content_model(tmp_path / "content_effect")
    settings = settings_for(f"sqlite:///{tmp_path / 'p.db'}", tmp_path / "models")
    quality = await _copy_quality(
        settings.model_copy(update={"content_model_dir": str(folder)}), examples
    )
    assert len(set(quality)) == len(TEXTS)  # non-degenerate: one value per text
    assert all(0.0 < q < 1.0 for q in quality)
    assert quality[0] > 0.5 > quality[1]  # the learned hook, and the same text without it
    expected = ContentEffectModel.load(folder, HashingEmbedder(64)).quality(TEXTS)
    assert quality == pytest.approx(expected, abs=1e-9)


async def test_without_a_model_every_copy_reads_neutral(
    tmp_path: Path, examples: list[TrainingExample]
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'p.db'}", tmp_path / "models")
    off = settings.model_copy(update={"content_model_dir": "off"})
    quality = await _copy_quality(off, examples)
    assert quality == [0.5] * len(TEXTS)
