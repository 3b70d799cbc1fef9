"""Feature encoding: (user, item, copy, context) -> hashed categorical ids + dense floats.

Why hashing: catalogs, segments and copy texts are open-ended, so ids are stable hashes mod a
per-field bucket count (no vocabulary to ship or to go stale). Crosses are hashed from the two
component hashes with an integer mixer, vectorised over a batch.

Why the caches: scoring 1,000 candidates must take milliseconds, so everything that depends on
one item, one copy text or one context is computed once and reused; per-row Python work is a
few dict look-ups. The caches never change results, only speed.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from copyloop.prediction.features.hashing import bucket, mix_ids, stable_hash
from copyloop.prediction.features.prior import CHANNEL_CTR, DEFAULT_CTR, prior_logit
from copyloop.prediction.features.text import (
    STYLE_NAMES,
    CachedEmbedder,
    make_embedder,
    ngrams,
    style_signals,
    style_signature,
)
from copyloop.prediction.features.types import (
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    TrainingExample,
    UserFeatures,
)

ENCODER_FORMAT = 1

USER_FIELDS: tuple[str, ...] = (
    "user_segment",
    "user_price_band",
    "user_activity",
    "user_recency",
    "user_monetary",
    "user_cold_start",
    "user_top_category",
    "user_top_brand",
)
ITEM_FIELDS: tuple[str, ...] = (
    "item_id",
    "item_cat_l1",
    "item_cat_leaf",
    "item_brand",
    "item_price_bucket",
    "item_discount_bucket",
    "item_popularity_bucket",
)
COPY_FIELDS: tuple[str, ...] = ("copy_style",)
CONTEXT_FIELDS: tuple[str, ...] = ("ctx_channel", "ctx_hour", "ctx_device", "ctx_locale")
BASE_FIELDS: tuple[str, ...] = USER_FIELDS + ITEM_FIELDS + COPY_FIELDS + CONTEXT_FIELDS
CROSSES: tuple[tuple[str, str, str], ...] = (
    ("x_topcat_cat_l1", "user_top_category", "item_cat_l1"),
    ("x_topcat_leaf", "user_top_category", "item_cat_leaf"),
    ("x_topbrand_brand", "user_top_brand", "item_brand"),
    ("x_band_price", "user_price_band", "item_price_bucket"),
    ("x_band_discount", "user_price_band", "item_discount_bucket"),
    ("x_channel_style", "ctx_channel", "copy_style"),
    ("x_cat_l1_style", "item_cat_l1", "copy_style"),
    ("x_channel_device", "ctx_channel", "ctx_device"),
)
CAT_FIELDS: tuple[str, ...] = BASE_FIELDS + tuple(name for name, _, _ in CROSSES)

USER_DENSE: tuple[str, ...] = ("user_events", "user_recency_days", "user_monetary_log", "user_cold")
PAIR_DENSE: tuple[str, ...] = ("category_affinity", "category_is_top", "brand_affinity")
ITEM_DENSE: tuple[str, ...] = (
    "item_price_log",
    "item_discount",
    "item_has_list_price",
    "item_popularity_log",
)
CONTEXT_DENSE: tuple[str, ...] = ("hour_sin", "hour_cos")
COPY_DENSE: tuple[str, ...] = tuple(f"style_{name}" for name in STYLE_NAMES)
DENSE_NAMES: tuple[str, ...] = USER_DENSE + PAIR_DENSE + ITEM_DENSE + CONTEXT_DENSE + COPY_DENSE

_BIG_FIELDS = {"item_id": 1 << 15, "item_brand": 1 << 13, "item_cat_leaf": 1 << 12}
_SMALL_FIELDS = {"user_price_band": 16, "user_cold_start": 4, "ctx_hour": 32, "ctx_device": 16}


@dataclass(frozen=True)
class EncoderConfig:
    """Shapes of the encoding; saved with each model version so serving encodes identically."""

    embedder_name: str = "all-MiniLM-L6-v2"
    default_buckets: int = 1 << 11
    cross_buckets: int = 1 << 13
    field_buckets: dict[str, int] = field(default_factory=lambda: {**_BIG_FIELDS, **_SMALL_FIELDS})
    segment_buckets: int = 1 << 10
    segment_style_buckets: int = 1 << 12
    ngram_buckets: int = 1 << 15
    max_segments: int = 8
    max_ngrams: int = 48

    def bag_buckets(self) -> dict[str, int]:
        """Bucket count of each multi-valued (bag) input, in BAGS order."""
        return {
            "segments": self.segment_buckets,
            "segment_style": self.segment_style_buckets,
            "ngrams": self.ngram_buckets,
        }

    def buckets_for(self, name: str) -> int:
        if name in self.field_buckets:
            return self.field_buckets[name]
        if name.startswith("x_"):
            return self.cross_buckets
        return self.default_buckets


# Multi-valued inputs, each pooled by its own embedding bag: the shopper's segments, every
# segment crossed with the copy's style signature, and the copy's hashed n-grams. 0 = padding.
BAGS: tuple[str, ...] = ("segments", "segment_style", "ngrams")


@dataclass
class EncodedBatch:
    """Model inputs for a batch as numpy arrays (zero-copy into torch via `tensors`)."""

    cat: NDArray[np.int64]  # int64 [B, len(CAT_FIELDS)], global ids into one embedding table
    bags: dict[str, NDArray[np.int64]]  # name -> int64 [B, max length], 0 = padding
    dense: NDArray[np.float32]  # float32 [B, len(DENSE_NAMES)]
    text: NDArray[np.float32]  # float32 [B, embedding dim]
    clicked: NDArray[np.float32] | None = None  # float32 [B]
    converted: NDArray[np.float32] | None = None  # float32 [B], click and purchase
    propensity: NDArray[np.float64] | None = None  # float64 [B], logged; 0 = unknown
    # float32 [B]: the cold-start prior's CTR logit (features.prior), the offset a model with
    # `prior_offset` learns its correction on; None = zeros.
    prior: NDArray[np.float32] | None = None

    def __len__(self) -> int:
        return int(self.cat.shape[0])

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {
            "cat": torch.from_numpy(self.cat),
            "dense": torch.from_numpy(self.dense),
            "text": torch.from_numpy(self.text),
            "prior": torch.from_numpy(
                self.prior if self.prior is not None else np.zeros(len(self), dtype=np.float32)
            ),
        }
        out.update({name: torch.from_numpy(ids) for name, ids in self.bags.items()})
        return out

    def take(self, index: NDArray[Any]) -> EncodedBatch:
        """Rows `index` (a time slice, a shuffled minibatch)."""
        return EncodedBatch(
            self.cat[index],
            {name: ids[index] for name, ids in self.bags.items()},
            self.dense[index],
            self.text[index],
            None if self.clicked is None else self.clicked[index],
            None if self.converted is None else self.converted[index],
            None if self.propensity is None else self.propensity[index],
            None if self.prior is None else self.prior[index],
        )


class _RowStore:
    """Key -> row of preallocated arrays, so a batch gathers its rows with one fancy index
    instead of stacking thousands of small arrays. Bounded: when a batch's new keys do not
    fit it starts afresh, which costs re-encoding but never changes results."""

    def __init__(self, columns: dict[str, tuple[tuple[int, ...], Any]], capacity: int) -> None:
        self.capacity = capacity
        self._columns = columns
        self.index: dict[Any, int] = {}
        self.arrays: dict[str, NDArray[Any]] = {}
        self._allocate(min(capacity, 1024))

    def _allocate(self, rows: int) -> None:
        fresh = {
            name: np.zeros((rows, *shape), dtype=dtype)
            for name, (shape, dtype) in self._columns.items()
        }
        for name, old in self.arrays.items():
            keep = min(len(old), rows)
            fresh[name][:keep] = old[:keep]
        self.arrays = fresh

    def rows_for(self, keys: Sequence[Any], build: Any) -> NDArray[np.int64]:
        """Row numbers of `keys`; `build(missing_keys)` returns the column arrays of new keys."""
        index = self.index
        rows = [index.get(k, -1) for k in keys]
        if -1 not in rows:
            return np.asarray(rows, dtype=np.int64)
        missing = list(dict.fromkeys(k for k, r in zip(keys, rows, strict=True) if r == -1))
        if len(index) + len(missing) > self.capacity:
            index.clear()
            missing = list(dict.fromkeys(keys))
        start = len(index)
        needed = start + len(missing)
        if needed > len(next(iter(self.arrays.values()))):
            self._allocate(max(needed, min(self.capacity, 2 * needed)))
        for name, values in build(missing).items():
            self.arrays[name][start:needed] = values
        for offset, key in enumerate(missing):
            index[key] = start + offset
        return np.asarray([index[k] for k in keys], dtype=np.int64)


@dataclass
class _UserPart:
    raw: NDArray[np.uint64]  # uint64 [len(USER_FIELDS)]
    dense: NDArray[np.float32]
    segments: NDArray[np.int64]  # int64 bucketed segment ids, 0 = padding
    segment_raw: NDArray[np.uint64]  # uint64 segment hashes (for crosses), 0 = padding
    category_affinity: dict[str, float]
    brand_affinity: dict[str, float]
    top_category: str


def _h(field_name: str, value: object) -> int:
    return stable_hash(f"{field_name}={value}")


def _log_bucket(value: float, scale: float = 2.0) -> int:
    return math.floor(math.log2(1.0 + max(value, 0.0)) * scale)


_RECENCY_EDGES = (0.5, 1, 3, 7, 14, 30, 60, 90, 180)


def discount_fraction(item: ItemFeatures) -> float:
    if item.list_price > 0 and item.price < item.list_price:
        return float(1.0 - item.price / item.list_price)
    return 0.0


def affinity_keys(item: ItemFeatures) -> tuple[str, ...]:
    """Keys a profile's category affinities may use for this item: every level of its path
    and every joined prefix ("toys > puzzles"), since profile services differ in which they use."""
    path = tuple(item.category_path) or ("none",)
    return path + tuple(" > ".join(path[: i + 1]) for i in range(1, len(path)))


def _top_key(weights: dict[str, float]) -> str:
    if not weights:
        return "none"
    return max(sorted(weights), key=lambda k: weights[k])


class FeatureEncoder:
    """Turns examples or scoring candidates into `EncodedBatch`es; serialisable as JSON."""

    def __init__(
        self,
        config: EncoderConfig | None = None,
        embedder: CachedEmbedder | None = None,
        cache_size: int = 50_000,  # items and copy texts each; ~100 MB with 384-d embeddings
    ) -> None:
        self.config = config or EncoderConfig()
        self.embedder = embedder or make_embedder(self.config.embedder_name)
        if self.embedder.name != self.config.embedder_name:
            raise ValueError(
                f"embedder {self.embedder.name!r} does not match config "
                f"{self.config.embedder_name!r}"
            )
        sizes = [self.config.buckets_for(name) for name in CAT_FIELDS]
        self.field_sizes = np.asarray(sizes, dtype=np.uint64)
        self.field_offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.table_size = int(sum(sizes))
        self._items = _RowStore(
            {
                "raw": ((len(ITEM_FIELDS),), np.uint64),
                "dense": ((len(ITEM_DENSE),), np.float32),
                "category_keys": ((), np.int64),  # interned tuple of affinity keys
                "brand": ((), np.int64),  # interned brand
            },
            cache_size,
        )
        # Interned affinity look-up keys: an item's category keys / brand as small ints, so
        # user x item affinities are computed once per distinct (user, category) in a batch.
        # They grow with the catalog's distinct categories and brands only, never with traffic.
        self._category_key_ids: dict[tuple[str, ...], int] = {}
        self._category_key_list: list[tuple[str, ...]] = []
        self._brand_ids: dict[str, int] = {}
        self._brand_list: list[str] = []
        self._copies = _RowStore(
            {
                "style": ((), np.uint64),
                "ngrams": ((self.config.max_ngrams,), np.int64),
                "signals": ((len(STYLE_NAMES),), np.float32),
                "text": ((self.embedder.dim,), np.float32),
            },
            cache_size,
        )
        self._contexts = _RowStore(
            {
                "raw": ((len(CONTEXT_FIELDS),), np.uint64),
                "dense": ((len(CONTEXT_DENSE),), np.float32),
                "base_ctr": ((), np.float64),
            },
            10_000,
        )
        self._lock = threading.Lock()
        base_index = {name: i for i, name in enumerate(BASE_FIELDS)}
        self._cross_left = np.asarray([base_index[a] for _, a, _ in CROSSES])
        self._cross_right = np.asarray([base_index[b] for _, _, b in CROSSES])
        self._cross_salts = np.asarray(
            [stable_hash(name) for name, _, _ in CROSSES], dtype=np.uint64
        )
        self._segment_style_salt = np.uint64(stable_hash("segment_style"))

    # --- dimensions the model needs ---------------------------------------------------------
    @property
    def n_cat(self) -> int:
        return len(CAT_FIELDS)

    @property
    def n_dense(self) -> int:
        return len(DENSE_NAMES)

    @property
    def text_dim(self) -> int:
        return self.embedder.dim

    # --- parts ------------------------------------------------------------------------------
    def _user_part(self, user: UserFeatures) -> _UserPart:
        segments = tuple(user.segments) or ("none",)
        top_category = _top_key(user.category_affinity)
        raw = np.asarray(
            [
                _h("user_segment", segments[0]),
                _h("user_price_band", user.price_band or "unknown"),
                _h("user_activity", _log_bucket(user.events_30d, 1.0)),
                _h("user_recency", sum(user.recency_days > e for e in _RECENCY_EDGES)),
                _h("user_monetary", _log_bucket(user.monetary, 1.0)),
                _h("user_cold_start", user.cold_start),
                _h("user_top_category", top_category),
                _h("user_top_brand", _top_key(user.brand_affinity)),
            ],
            dtype=np.uint64,
        )
        dense = np.asarray(
            [
                math.log1p(max(user.events_30d, 0)) / 5.0,
                min(max(user.recency_days, 0.0), 180.0) / 180.0,
                math.log1p(max(user.monetary, 0.0)) / 10.0,
                1.0 if user.cold_start else 0.0,
            ],
            dtype=np.float32,
        )
        seg_raw = np.zeros(self.config.max_segments, dtype=np.uint64)
        for i, segment in enumerate(segments[: self.config.max_segments]):
            seg_raw[i] = _h("segment", segment)
        seg_ids = np.where(seg_raw > 0, bucket(seg_raw, self.config.segment_buckets), 0)
        return _UserPart(
            raw, dense, seg_ids, seg_raw, user.category_affinity, user.brand_affinity, top_category
        )

    def _intern(self, value: Any, ids: dict[Any, int], values: list[Any]) -> int:
        found = ids.get(value)
        if found is None:
            found = ids[value] = len(values)
            values.append(value)
        return found

    def _build_items(self, items: list[ItemFeatures]) -> dict[str, NDArray[Any]]:
        raw = np.zeros((len(items), len(ITEM_FIELDS)), dtype=np.uint64)
        dense = np.zeros((len(items), len(ITEM_DENSE)), dtype=np.float32)
        category_keys = np.zeros(len(items), dtype=np.int64)
        brands = np.zeros(len(items), dtype=np.int64)
        for row, item in enumerate(items):
            category_keys[row] = self._intern(
                affinity_keys(item), self._category_key_ids, self._category_key_list
            )
            brands[row] = self._intern(item.brand, self._brand_ids, self._brand_list)
            path = tuple(item.category_path) or ("none",)
            discount = discount_fraction(item)
            raw[row] = [
                _h("item_id", item.item_id),
                _h("item_cat_l1", path[0]),
                _h("item_cat_leaf", "/".join(path)),
                _h("item_brand", item.brand or "none"),
                _h("item_price_bucket", _log_bucket(item.price)),
                _h("item_discount_bucket", min(int(discount * 10), 9)),
                _h("item_popularity_bucket", _log_bucket(item.popularity, 1.0)),
            ]
            dense[row] = [
                math.log1p(max(item.price, 0.0)) / 8.0,
                discount,
                1.0 if item.list_price > 0 else 0.0,
                math.log1p(max(item.popularity, 0.0)) / 8.0,
            ]
        return {"raw": raw, "dense": dense, "category_keys": category_keys, "brand": brands}

    def _build_copies(self, texts: list[str]) -> dict[str, NDArray[Any]]:
        max_ngrams = self.config.max_ngrams
        style = np.zeros(len(texts), dtype=np.uint64)
        ngram_ids = np.zeros((len(texts), max_ngrams), dtype=np.int64)
        signals = np.zeros((len(texts), len(STYLE_NAMES)), dtype=np.float32)
        for row, text in enumerate(texts):
            signals[row] = style_signals(text)
            style[row] = _h("copy_style", style_signature(signals[row]))
            grams = ngrams(text, max_ngrams)
            if grams:
                hashed = np.asarray([stable_hash(g) for g in grams], dtype=np.uint64)
                ngram_ids[row, : len(grams)] = bucket(hashed, self.config.ngram_buckets)
        return {
            "style": style,
            "ngrams": ngram_ids,
            "signals": signals,
            "text": self.embedder.embed(texts),
        }

    def _build_contexts(self, contexts: list[ContextFeatures]) -> dict[str, NDArray[Any]]:
        raw = np.zeros((len(contexts), len(CONTEXT_FIELDS)), dtype=np.uint64)
        dense = np.zeros((len(contexts), len(CONTEXT_DENSE)), dtype=np.float32)
        base_ctr = np.asarray(
            [CHANNEL_CTR.get(c.channel, DEFAULT_CTR) for c in contexts], dtype=np.float64
        )
        for row, context in enumerate(contexts):
            hour = int(context.hour) % 24
            raw[row] = [
                _h("ctx_channel", context.channel or "unknown"),
                _h("ctx_hour", hour),
                _h("ctx_device", context.device or "unknown"),
                _h("ctx_locale", context.locale or "unknown"),
            ]
            angle = 2.0 * math.pi * hour / 24.0
            dense[row] = [math.sin(angle), math.cos(angle)]
        return {"raw": raw, "dense": dense, "base_ctr": base_ctr}

    def _pair_dense(
        self, users: list[_UserPart], user_index: NDArray[np.int64], item_rows: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        """User x item affinities, computed once per distinct (user, category keys, brand)."""
        n = len(item_rows)
        pair = np.zeros((n, len(PAIR_DENSE)), dtype=np.float32)
        category = self._items.arrays["category_keys"][item_rows]
        brand = self._items.arrays["brand"][item_rows]
        interned: list[tuple[NDArray[np.int64], Sequence[Any]]] = [
            (category, self._category_key_list),
            (brand, self._brand_list),
        ]
        for column, (ids, table) in enumerate(interned):
            combined = user_index * np.int64(len(table) + 1) + ids
            unique, inverse = np.unique(combined, return_inverse=True)
            values = np.zeros((unique.size, 2), dtype=np.float32)
            for k, key in enumerate(unique.tolist()):
                user = users[key // (len(table) + 1)]
                value = table[key % (len(table) + 1)]
                if column == 0:
                    affinity = user.category_affinity
                    values[k, 0] = max([affinity.get(c, 0.0) for c in value]) if affinity else 0.0
                    values[k, 1] = 1.0 if user.top_category in value else 0.0
                else:
                    values[k, 0] = user.brand_affinity.get(value, 0.0) if value else 0.0
            if column == 0:
                pair[:, 0:2] = values[inverse]
            else:
                pair[:, 2] = values[inverse, 0]
        return np.clip(pair, -5.0, 5.0, out=pair)

    # --- assembly ---------------------------------------------------------------------------
    def _assemble(
        self,
        users: Sequence[UserFeatures],
        items: Sequence[ItemFeatures],
        copies: Sequence[CopyFeatures],
        contexts: Sequence[ContextFeatures],
    ) -> EncodedBatch:
        """Row i is (users[i], items[i], copies[i], contexts[i]); a single user or context
        stands for every row."""
        n = len(items)
        # One user or one context for the whole batch (scoring candidates) is given once and
        # broadcast: no per-row look-ups for them.
        if len(users) == 1 and n != 1:
            unique_users = [self._user_part(users[0])]
            user_index = np.zeros(n, dtype=np.int64)
        else:
            user_slots: dict[int, int] = {}
            unique_users = []
            slots: list[int] = []
            for user in users:
                slot = user_slots.get(id(user))
                if slot is None:
                    slot = user_slots[id(user)] = len(unique_users)
                    unique_users.append(self._user_part(user))
                slots.append(slot)
            user_index = np.asarray(slots, dtype=np.int64)
        if len(unique_users) == 1:
            only = unique_users[0]
            user_raw = np.broadcast_to(only.raw, (n, only.raw.size))
            user_dense = np.broadcast_to(only.dense, (n, only.dense.size))
            segments = np.repeat(only.segments[None, :], n, axis=0)
            segment_raw = np.broadcast_to(only.segment_raw, (n, only.segment_raw.size))
        else:
            user_raw = np.stack([u.raw for u in unique_users])[user_index]
            user_dense = np.stack([u.dense for u in unique_users])[user_index]
            segments = np.stack([u.segments for u in unique_users])[user_index]
            segment_raw = np.stack([u.segment_raw for u in unique_users])[user_index]

        with self._lock:  # stores are shared by concurrent requests
            item_rows = self._items.rows_for(items, self._build_items)
            item_raw = self._items.arrays["raw"][item_rows]
            item_dense = self._items.arrays["dense"][item_rows]
            copy_rows = self._copies.rows_for([c.text for c in copies], self._build_copies)
            copy_raw = self._copies.arrays["style"][copy_rows][:, None]
            ngram_ids = self._copies.arrays["ngrams"][copy_rows]
            copy_dense = self._copies.arrays["signals"][copy_rows]
            text = self._copies.arrays["text"][copy_rows]
            context_rows = self._contexts.rows_for(contexts, self._build_contexts)
            if len(contexts) == 1 and n != 1:
                context_rows = np.repeat(context_rows, n)
            ctx_raw = self._contexts.arrays["raw"][context_rows]
            ctx_dense = self._contexts.arrays["dense"][context_rows]
            base_ctr = self._contexts.arrays["base_ctr"][context_rows]
            pair = self._pair_dense(unique_users, user_index, item_rows)

        base = np.concatenate([user_raw, item_raw, copy_raw, ctx_raw], axis=1)
        crosses = mix_ids(base[:, self._cross_left], base[:, self._cross_right]) ^ self._cross_salts
        raw = np.concatenate([base, crosses], axis=1)
        cat = (raw % (self.field_sizes - np.uint64(1))).astype(np.int64) + 1 + self.field_offsets
        dense = np.concatenate([user_dense, pair, item_dense, ctx_dense, copy_dense], axis=1)
        segment_style = np.where(
            segment_raw > 0,
            bucket(
                mix_ids(segment_raw, copy_raw) ^ self._segment_style_salt,
                self.config.segment_style_buckets,
            ),
            0,
        )
        bags = {"segments": segments, "segment_style": segment_style, "ngrams": ngram_ids}
        # The prior's logit from the same inputs it reads: log1p(popularity) is item_dense's
        # popularity column x 8, the affinity the pair column (max over the item's keys).
        prior = prior_logit(
            base_ctr,
            item_dense[:, ITEM_DENSE.index("item_popularity_log")].astype(np.float64) * 8.0,
            pair[:, 0].astype(np.float64),
        ).astype(np.float32)
        return EncodedBatch(cat, bags, dense.astype(np.float32, copy=False), text, prior=prior)

    def encode_examples(self, examples: Sequence[TrainingExample]) -> EncodedBatch:
        """Inputs and labels of logged impressions, in the given order."""
        batch = self._assemble(
            [e.user for e in examples],
            [e.item for e in examples],
            [e.copy for e in examples],
            [e.context for e in examples],
        )
        batch.clicked = np.asarray([e.clicked for e in examples], dtype=np.float32)
        batch.converted = np.asarray(
            [e.clicked and e.converted for e in examples], dtype=np.float32
        )
        batch.propensity = np.asarray([e.propensity for e in examples], dtype=np.float64)
        return batch

    def encode_candidates(
        self,
        user: UserFeatures,
        context: ContextFeatures,
        candidates: Sequence[tuple[ItemFeatures, CopyFeatures]],
    ) -> EncodedBatch:
        """Inputs for scoring many (item, copy) candidates for one shopper in one context."""
        return self._assemble(
            [user], [c[0] for c in candidates], [c[1] for c in candidates], [context]
        )

    # --- attribution groups -----------------------------------------------------------------
    @staticmethod
    def dense_groups() -> list[tuple[str, list[int]]]:
        """Named groups of dense columns, the units in which scores are explained."""
        index = {name: i for i, name in enumerate(DENSE_NAMES)}
        groups: list[tuple[str, list[int]]] = [
            ("user_activity", [index[n] for n in USER_DENSE]),
            ("category_affinity", [index["category_affinity"], index["category_is_top"]]),
            ("brand_affinity", [index["brand_affinity"]]),
            ("price", [index["item_price_log"], index["item_has_list_price"]]),
            ("discount", [index["item_discount"]]),
            ("popularity", [index["item_popularity_log"]]),
            ("hour_of_day", [index["hour_sin"], index["hour_cos"]]),
        ]
        groups += [(f"copy_{name}", [index[f"style_{name}"]]) for name in STYLE_NAMES]
        return groups

    # --- serialisation ----------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {
                "format": ENCODER_FORMAT,
                "config": asdict(self.config),
                "cat_fields": list(CAT_FIELDS),
                "bags": list(BAGS),
                "dense_names": list(DENSE_NAMES),
                "text_dim": self.text_dim,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, embedder: CachedEmbedder | None = None) -> FeatureEncoder:
        from copyloop.prediction.errors import ModelFormatError

        data: dict[str, Any] = json.loads(text)
        if data.get("format") != ENCODER_FORMAT:
            raise ModelFormatError(f"encoder format {data.get('format')} != {ENCODER_FORMAT}")
        layout = (data["cat_fields"], data.get("bags"), data["dense_names"])
        if layout != (list(CAT_FIELDS), list(BAGS), list(DENSE_NAMES)):
            raise ModelFormatError("encoder was saved with a different feature layout")
        encoder = cls(EncoderConfig(**data["config"]), embedder)
        if encoder.text_dim != data["text_dim"]:
            raise ModelFormatError("text embedding dimension differs from the saved encoder")
        return encoder
