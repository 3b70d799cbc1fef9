"""Shared fixtures: one small synthetic market log and one model trained on it per session.

The hashing embedder stands in for MiniLM here so the suite runs in seconds; MiniLM itself is
covered by its own test in features/test_text.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from copyloop.demo.market import ImpressionLog, SyntheticMarket, synthetic_items
from copyloop.prediction.features.encoder import EncoderConfig
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.features.types import TrainingExample
from copyloop.prediction.model.predictions import Predictions
from copyloop.prediction.model.version import ModelVersion
from copyloop.prediction.training.trainer import (
    TimeWindow,
    TrainConfig,
    split_by_time,
    train_version,
)

EMBEDDER_NAME = "hashing-ngrams-32"


def small_config(**overrides: object) -> TrainConfig:
    base = dict(
        encoder=EncoderConfig(embedder_name=EMBEDDER_NAME), progress=False, epochs=4, seed=0
    )
    base.update(overrides)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def embedder() -> HashingEmbedder:
    return HashingEmbedder(32)


@pytest.fixture(scope="session")
def market() -> SyntheticMarket:
    return SyntheticMarket(synthetic_items(120, seed=3), seed=3)


@pytest.fixture(scope="session")
def market_log(market: SyntheticMarket) -> ImpressionLog:
    return market.generate(30_000, seed=11)


@pytest.fixture(scope="session")
def windows(market_log: ImpressionLog) -> tuple[TimeWindow, TimeWindow]:
    return split_by_time(market_log.examples, eval_fraction=0.25)


@pytest.fixture(scope="session")
def trained(
    market: SyntheticMarket,
    market_log: ImpressionLog,
    windows: tuple[TimeWindow, TimeWindow],
    embedder: HashingEmbedder,
) -> ModelVersion:
    def oracle(examples: Sequence[TrainingExample]) -> Predictions:
        p_click, p_convert = market.truth_for(examples)
        return Predictions(p_click, p_convert)

    return train_version(
        market_log.examples, *windows, small_config(), embedder=embedder, oracle=oracle
    )
