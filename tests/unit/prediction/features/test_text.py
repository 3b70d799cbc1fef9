"""Copy-text features: style cues (English and Chinese), n-grams, the embedding cache."""

from __future__ import annotations

import numpy as np
import pytest

from copyloop.prediction.features.text import (
    STYLE_NAMES,
    CachedEmbedder,
    MiniLMEmbedder,
    ngrams,
    style_signals,
    style_signature,
)


def _signal(text: str, name: str) -> float:
    return float(style_signals(text)[STYLE_NAMES.index(name)])


@pytest.mark.parametrize(
    ("text", "style"),
    [
        ("Save 30% on all sneakers", "discount"),
        ("限时特价，全场五折", "discount"),
        ("Hurry, ends tonight", "urgency"),
        ("限时抢购，马上下单", "urgency"),
        ("Loved by thousands of customers", "social_proof"),
        ("爆款热销，好评如潮", "social_proof"),
        ("Premium leather, crafted to last", "quality"),
        ("匠心品质，正品保障", "quality"),
    ],
)
def test_style_cues_detected(text: str, style: str) -> None:
    assert _signal(text, style) > 0
    assert _signal("A lamp for the living room", style) == 0


def test_other_signals() -> None:
    assert _signal("Ready for summer?", "question") == 1.0
    assert _signal("你准备好了吗", "question") == 1.0
    assert _signal("Big news!!", "exclamation") == 1.0
    assert _signal("Only 3 left", "number") > 0
    assert _signal("Party time 🎉", "emoji") > 0
    assert _signal("新品上市", "cjk") == 1.0 and _signal("new in", "cjk") == 0.0
    assert _signal("Made for you", "second_person") == 1.0
    assert _signal("x" * 240, "length") == 2.0  # capped


def test_style_signature() -> None:
    assert style_signature(style_signals("Save 20% today only?")) == "discount+urgency+question"
    assert style_signature(style_signals("A lamp.")) == "plain"


def test_ngrams_cover_words_bigrams_and_chinese_characters() -> None:
    grams = ngrams("Save big today")
    assert "w:save" in grams and "b:save_big" in grams and "c:<sa" in grams
    zh = ngrams("限时特价")
    assert "w:限" in zh and "b:限_时" in zh
    assert len(ngrams("word " * 500, max_ngrams=10)) == 10


class _CountingEmbedder(CachedEmbedder):
    def __init__(self) -> None:
        super().__init__("counting-4", 4, capacity=3)
        self.calls: list[list[str]] = []

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.asarray([[len(t), 1.0, 0.0, 0.0] for t in texts], dtype=np.float32)


def test_cache_batches_only_misses_and_evicts_lru() -> None:
    embedder = _CountingEmbedder()
    first = embedder.embed(["a", "bb", "a"])
    assert embedder.calls == [["a", "bb"]]  # one batched call, duplicates encoded once
    assert first[0, 0] == 1 and first[1, 0] == 2 and first[2, 0] == 1
    embedder.embed(["bb", "ccc"])
    assert embedder.calls[-1] == ["ccc"]
    embedder.embed(["dddd"])  # capacity 3: the least recently used ("a") is evicted
    embedder.embed(["a"])
    assert embedder.calls[-1] == ["a"]
    assert embedder.embed([]).shape == (0, 4)


@pytest.mark.slow
def test_minilm_loads_offline_and_embeds() -> None:
    embedder = MiniLMEmbedder()
    vectors = embedder.embed(
        ["Save 20% on running shoes", "Running shoes now 20% off", "Quarterly tax filing deadline"]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2  # paraphrases are closer
    misses = embedder.cache.misses
    embedder.embed(["Save 20% on running shoes"])
    assert embedder.cache.misses == misses  # served from the cache
