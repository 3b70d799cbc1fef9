"""Feature encoder: shapes, stable hashing, and train/serve consistency."""

from __future__ import annotations

import numpy as np

from copyloop.demo.market import ImpressionLog
from copyloop.prediction.features.encoder import (
    BAGS,
    CAT_FIELDS,
    DENSE_NAMES,
    EncoderConfig,
    FeatureEncoder,
)
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.features.types import (
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    UserFeatures,
)

from ..conftest import EMBEDDER_NAME


def _encoder() -> FeatureEncoder:
    return FeatureEncoder(EncoderConfig(embedder_name=EMBEDDER_NAME), HashingEmbedder(32))


def test_encoded_shapes_and_id_ranges(market_log: ImpressionLog) -> None:
    encoder = _encoder()
    batch = encoder.encode_examples(market_log.examples[:500])
    assert batch.cat.shape == (500, len(CAT_FIELDS))
    assert batch.dense.shape == (500, len(DENSE_NAMES))
    assert batch.text.shape == (500, 32)
    assert set(batch.bags) == set(BAGS)
    assert batch.bags["segments"].shape == (500, encoder.config.max_segments)
    assert batch.bags["ngrams"].shape == (500, encoder.config.max_ngrams)
    # every categorical id falls inside its own field's slice of the shared table
    low = encoder.field_offsets
    high = encoder.field_offsets + encoder.field_sizes.astype(np.int64)
    assert np.all(batch.cat >= low) and np.all(batch.cat < high)
    assert batch.cat.max() < encoder.table_size
    assert batch.clicked is not None and batch.converted is not None
    assert np.all(batch.converted <= batch.clicked)  # a purchase counts only after a click
    assert np.isfinite(batch.dense).all()


def test_two_encoders_agree(market_log: ImpressionLog) -> None:
    examples = market_log.examples[:300]
    a = _encoder().encode_examples(examples)
    b = _encoder().encode_examples(examples)
    assert np.array_equal(a.cat, b.cat)
    assert np.array_equal(a.dense, b.dense)
    for name in BAGS:
        assert np.array_equal(a.bags[name], b.bags[name])


def test_serving_path_matches_training_path(market_log: ImpressionLog) -> None:
    """encode_candidates (scoring) must produce exactly what encode_examples (training) does."""
    encoder = _encoder()
    first = market_log.examples[0]
    rows = [e for e in market_log.examples if e.user is first.user][:20]
    context = first.context  # score them all in one context, as one request would
    training = encoder.encode_examples(
        [
            type(e)(e.user, e.item, e.copy, context, e.clicked, e.converted, e.timestamp)
            for e in rows
        ]
    )
    serving = encoder.encode_candidates(first.user, context, [(e.item, e.copy) for e in rows])
    assert np.array_equal(training.cat, serving.cat)
    assert np.allclose(training.dense, serving.dense)
    assert np.allclose(training.text, serving.text)
    for name in BAGS:
        assert np.array_equal(training.bags[name], serving.bags[name])


def test_user_item_affinity_features() -> None:
    encoder = _encoder()
    user = UserFeatures(
        "u",
        ("deal_seeker",),
        {"toys": 0.9, "home": 0.2},
        {"Acme": 0.7},
        "budget",
        10,
        1.0,
        50.0,
        False,
    )
    toy = ItemFeatures("i1", ("toys", "puzzles"), "Acme", 10.0, 20.0, 30.0)
    lamp = ItemFeatures("i2", ("home", "lamps"), "Other", 40.0, 0.0, 3.0)
    batch = encoder.encode_candidates(
        user,
        ContextFeatures("push", 20, "mobile", "en-US"),
        [(toy, CopyFeatures("c1", "Save 50% today!")), (lamp, CopyFeatures("c2", "A lamp."))],
    )
    col = {name: i for i, name in enumerate(DENSE_NAMES)}
    assert batch.dense[0, col["category_affinity"]] == np.float32(0.9)
    assert batch.dense[1, col["category_affinity"]] == np.float32(0.2)
    assert (
        batch.dense[0, col["category_is_top"]] == 1.0
        and batch.dense[1, col["category_is_top"]] == 0.0
    )
    assert batch.dense[0, col["brand_affinity"]] == np.float32(0.7)
    assert batch.dense[0, col["item_discount"]] == np.float32(0.5)
    assert batch.dense[0, col["style_discount"]] > 0 and batch.dense[1, col["style_discount"]] == 0


def test_encoder_json_round_trip() -> None:
    encoder = _encoder()
    again = FeatureEncoder.from_json(encoder.to_json(), HashingEmbedder(32))
    assert again.config == encoder.config
    assert again.table_size == encoder.table_size
