"""Synthetic market: shoppers of hidden types and a hidden click/purchase model.

Why: a CTR/CVR model and a copy bandit can only be checked against the truth where the truth is
known. Here every impression's true click and purchase probabilities are known, so a policy's
expected CTR can be given as a share of the oracle's and a model's AUC next to the oracle AUC.

The response to copy is a generative model of its own (docs/market.md), deliberately not the
prediction service's text features: each shopper has a hidden *type* (deal hunter, quality
seeker, ...) with seeded preferences over the marketing *angle* a creative was written with
(the caller says which), plus a hidden direction in a text-embedding space of the market's own
(keyed hashes of character n-grams through a seeded random projection). No cue word means
anything to it: copy is read through its angle and that private embedding only. Product fit
(category, brand, price versus budget), item appeal, position bias, fatigue on repeats and
context complete the model. The prediction service sees only the observable profile
(`UserFeatures`) and the text, never these hidden parameters.

Items are anything with `category_path`, `brand`, `price` and `list_price` (the `Item`
protocol), so the closed-loop simulator can run it on the demo catalog or a real one.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from copyloop.generation.prompts.brief import ANGLES
from copyloop.prediction.features.types import (
    CHANNELS,
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    TrainingExample,
    UserFeatures,
)

__all__ = [
    "ANGLES",
    "SHOPPER_TYPES",
    "TYPE_SEGMENTS",
    "ImpressionLog",
    "Item",
    "MarketConfig",
    "MarketItem",
    "Shopper",
    "SyntheticMarket",
    "TextEmbedding",
    "synthetic_items",
]


@runtime_checkable
class Item(Protocol):
    """The least the market needs to know about an item (read-only, so frozen dataclasses such
    as DemoItem and MarketItem satisfy it)."""

    @property
    def category_path(self) -> Sequence[str]: ...
    @property
    def brand(self) -> str: ...
    @property
    def price(self) -> float: ...
    @property
    def list_price(self) -> float: ...


@dataclass(frozen=True)
class MarketItem:
    """A minimal catalog item for tests and benchmarks (satisfies `Item`)."""

    item_id: str
    category_path: tuple[str, ...]
    brand: str
    price: float
    list_price: float
    title: str = ""


# Hidden shopper types. Their angle preferences are drawn from the market's seed (never taken
# from the generation service's segment table): the platform has to learn them.
SHOPPER_TYPES: tuple[str, ...] = (
    "deal_hunter",
    "quality_seeker",
    "gift_giver",
    "trend_follower",
    "convenience_seeker",
)
# The behavioural segment each type's history tends to produce in a profile service
# (copyloop.profile.segments.DEFAULT_RULES); the offline profile (`_observe`) uses it too.
TYPE_SEGMENTS: dict[str, str] = {
    "deal_hunter": "bargain_hunter",
    "quality_seeker": "premium_shopper",
    "gift_giver": "loyal_high_value",
    "trend_follower": "window_shopper",
    "convenience_seeker": "fan",
}
# (log-budget mean, price sensitivity mean) per type; both get per-shopper noise.
_TYPE_BUDGET: dict[str, tuple[float, float]] = {
    "deal_hunter": (math.log(18.0), 1.4),
    "quality_seeker": (math.log(140.0), 0.3),
    "gift_giver": (math.log(70.0), 0.7),
    "trend_follower": (math.log(50.0), 0.8),
    "convenience_seeker": (math.log(40.0), 0.9),
}

_TAXONOMY: dict[str, tuple[tuple[str, ...], tuple[float, float]]] = {
    "toys": (("building sets", "puzzles", "dolls"), (8.0, 80.0)),
    "electronics": (("headphones", "chargers", "speakers"), (15.0, 400.0)),
    "home": (("cookware", "bedding", "lamps"), (12.0, 200.0)),
    "beauty": (("skincare", "fragrance", "haircare"), (6.0, 120.0)),
    "fashion": (("sneakers", "jackets", "bags"), (20.0, 300.0)),
    "sports": (("yoga mats", "dumbbells", "water bottles"), (8.0, 150.0)),
    "books": (("novels", "cookbooks", "comics"), (5.0, 40.0)),
    "grocery": (("coffee", "snacks", "tea"), (3.0, 30.0)),
}
_BRAND_SYLLABLES = ("nor", "vel", "qui", "tar", "lum", "ori", "zen", "kai", "bro", "ema")


def synthetic_items(n_items: int = 200, seed: int = 0) -> list[MarketItem]:
    """A deterministic catalog: 8 top categories x 3 sub-categories, 5 brands per category,
    log-uniform prices within the category's range, about 40% discounted."""
    rng = random.Random(seed)
    tops = sorted(_TAXONOMY)
    brands = {
        top: [
            (rng.choice(_BRAND_SYLLABLES) + rng.choice(_BRAND_SYLLABLES)).capitalize()
            for _ in range(5)
        ]
        for top in tops
    }
    items: list[MarketItem] = []
    for index in range(n_items):
        top = tops[index % len(tops)]
        subs, (lo, hi) = _TAXONOMY[top]
        sub = rng.choice(subs)
        brand = rng.choice(brands[top])
        list_price = round(math.exp(rng.uniform(math.log(lo), math.log(hi))), 2)
        discounted = rng.random() < 0.4
        price = round(list_price * rng.uniform(0.55, 0.9), 2) if discounted else list_price
        items.append(
            MarketItem(
                item_id=f"sku-{index:05d}",
                category_path=(top, sub),
                brand=brand,
                price=price,
                list_price=list_price if discounted else 0.0,
                title=f"{brand} {sub.rstrip('s')}",
            )
        )
    return items


@dataclass(frozen=True)
class Shopper:
    """Hidden truth about one shopper (never shown to the prediction service).

    `angle_preference` is the shopper's click-logit response to copy written in each angle
    (its type's preference plus a little personal noise; plain copy, angle "", gets 0).
    """

    shopper_id: str
    shopper_type: str
    category_taste: dict[str, float]
    brand_taste: dict[str, float]
    budget: float
    price_sensitivity: float
    angle_preference: dict[str, float]
    channel_bias: dict[str, float]
    devices: tuple[str, ...]
    peak_hour: int
    activity: float
    cold: bool

    @property
    def style_response(self) -> dict[str, float]:
        """The angle preferences under the older style names too ("discount" is the value
        angle), for callers that pick contrasting shoppers by them."""
        return {**self.angle_preference, "discount": self.angle_preference["value"]}


@dataclass(frozen=True)
class MarketConfig:
    """Knobs of the hidden response model (logit scale unless said otherwise); the defaults
    and what each term means are written down in docs/market.md."""

    n_shoppers: int = 400
    cold_fraction: float = 0.15
    type_shares: dict[str, float] = field(
        default_factory=lambda: {
            "deal_hunter": 0.30,
            "quality_seeker": 0.25,
            "gift_giver": 0.15,
            "trend_follower": 0.15,
            "convenience_seeker": 0.15,
        }
    )
    base_click_logit: float = -2.7
    base_convert_logit: float = -2.0
    taste_scale: float = 1.2
    item_appeal_scale: float = 0.35
    # Best angle minus the mean over the seven angles, per type (exactly; plain copy = mean).
    angle_gain: float = 0.5
    angle_shopper_noise: float = 0.1  # sd of each shopper's own deviation per angle
    angle_convert_share: float = 0.5  # P(purchase | click) moves by this share of it
    # Cosine with the type's hidden direction in the market's own text embedding, scaled so
    # the term's sd over unrelated texts is about text_scale.
    text_scale: float = 0.15
    text_dim: int = 64
    idiosyncratic_scale: float = 0.1  # sd of a fixed per-(shopper, text) shock
    position_exponent: float = 0.5  # P(examine rank r) = r ** -exponent
    fatigue: float = 0.6  # click logit falls by fatigue * log(1 + earlier exposures)
    targeted_fraction: float = 0.5
    history_fidelity: float = 0.8  # share of history events that follow the type's habits
    channel_click_logit: dict[str, float] = field(
        default_factory=lambda: {
            "ad_copy": 0.0,
            "product_description": 0.5,
            "push": -0.3,
            "sms": -0.6,
            "email_subject": -0.2,
            "social_post": -0.4,
            "promo_banner": -0.1,
        }
    )


@dataclass
class ImpressionLog:
    """Generated impressions plus the true probabilities each outcome was drawn from, and the
    angle each copy text was written with (the prediction service sees only the text)."""

    examples: list[TrainingExample]
    p_click: NDArray[np.float64]
    p_convert: NDArray[np.float64]  # P(purchase | click)
    angles: list[str] = field(default_factory=list)

    @property
    def p_ctcvr(self) -> NDArray[np.float64]:
        return self.p_click * self.p_convert


def _unit_hash(text: str) -> float:
    """Deterministic pseudo-random number in [0, 1) from a string."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


class TextEmbedding:
    """The market's private reading of text: character 3- and 4-grams hashed with a keyed
    BLAKE2b into 4,096 buckets, projected to `dim` by a seeded Gaussian matrix, L2-normalised.

    Why its own: the response must not be the prediction service's features (its embedder and
    cue lists), or every figure would flatter the model; texts sharing n-grams still land
    close together, so copy that works for a type tends to work in similar wording too."""

    BUCKETS = 4096

    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        self.dim = dim
        self._key = f"copyloop-market-{seed}".encode()[:64]
        rng = np.random.default_rng([seed, 7_919])
        self._projection = rng.standard_normal((self.BUCKETS, dim)) / math.sqrt(dim)
        self._cache: dict[str, NDArray[np.float64]] = {}

    def __call__(self, text: str) -> NDArray[np.float64]:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        padded = f" {' '.join(text.lower().split())} "
        counts: dict[int, int] = {}
        for n in (3, 4):
            for start in range(max(0, len(padded) - n + 1)):
                digest = hashlib.blake2b(
                    padded[start : start + n].encode("utf-8"), digest_size=4, key=self._key
                ).digest()
                bucket = int.from_bytes(digest, "little") % self.BUCKETS
                counts[bucket] = counts.get(bucket, 0) + 1
        vector = np.zeros(self.dim)
        if counts:
            rows = np.fromiter(counts, dtype=np.int64)
            weights = np.fromiter(counts.values(), dtype=np.float64)
            vector = weights @ self._projection[rows]
        norm = float(np.linalg.norm(vector))
        unit = vector / norm if norm > 0 else vector
        if len(self._cache) < 200_000:
            self._cache[text] = unit
        return unit


class SyntheticMarket:
    """Shoppers, items and the hidden model that turns impressions into clicks and purchases."""

    def __init__(
        self, items: Sequence[Item], config: MarketConfig = MarketConfig(), seed: int = 0
    ) -> None:
        if not items:
            raise ValueError("the market needs at least one item")
        unknown = set(config.type_shares) - set(SHOPPER_TYPES)
        if unknown or not any(v > 0 for v in config.type_shares.values()):
            raise ValueError(f"type_shares: positive shares of {SHOPPER_TYPES} expected")
        self.items = list(items)
        self.config = config
        self.seed = seed
        self.item_ids = [
            str(getattr(it, "item_id", f"item-{i}")) for i, it in enumerate(self.items)
        ]
        self._item_by_id = dict(zip(self.item_ids, self.items, strict=True))
        self.categories = sorted(
            {next(iter(it.category_path)) if it.category_path else "none" for it in self.items}
        )
        self.brands = sorted({it.brand for it in self.items if it.brand})
        self.item_appeal = {
            iid: config.item_appeal_scale * _gauss_from_hash(f"{seed}:appeal:{iid}")
            for iid in self.item_ids
        }
        self.type_angle_preference = self._draw_type_preferences()
        self.embedding = TextEmbedding(config.text_dim, seed)
        direction_rng = np.random.default_rng([seed, 104_729])
        self.type_direction: dict[str, NDArray[np.float64]] = {}
        for kind in SHOPPER_TYPES:
            raw = direction_rng.standard_normal(config.text_dim)
            self.type_direction[kind] = raw / np.linalg.norm(raw)
        rng = random.Random(seed)
        self.shoppers = [self._make_shopper(i, rng) for i in range(config.n_shoppers)]
        self._shopper_by_id = {s.shopper_id: s for s in self.shoppers}
        self._profiles = {
            s.shopper_id: self._observe(s, random.Random(f"{seed}:profile:{s.shopper_id}"))
            for s in self.shoppers
        }
        self._copies: dict[str, list[tuple[str, str]]] = {}
        self._angle_of_text: dict[str, str] = {}

    # --- shoppers ---------------------------------------------------------------------------
    def _draw_type_preferences(self) -> dict[str, dict[str, float]]:
        """Per type: z ~ N(0, 1) per angle, centred and scaled so the best angle sits exactly
        `angle_gain` above the mean over angles (which is what plain copy gets)."""
        rng = np.random.default_rng([self.seed, 15_485_863])
        out: dict[str, dict[str, float]] = {}
        for kind in SHOPPER_TYPES:
            z = rng.standard_normal(len(ANGLES))
            centred = z - z.mean()
            scaled = self.config.angle_gain * centred / max(float(centred.max()), 1e-9)
            out[kind] = {a: float(v) for a, v in zip(ANGLES, scaled, strict=True)}
        return out

    def _make_shopper(self, index: int, rng: random.Random) -> Shopper:
        cfg = self.config
        kinds = [k for k in SHOPPER_TYPES if cfg.type_shares.get(k, 0.0) > 0]
        kind = rng.choices(kinds, weights=[cfg.type_shares[k] for k in kinds])[0]
        n_favourites = rng.choice((2, 3, 3)) if kind == "gift_giver" else rng.choice((1, 2, 2))
        favourites = rng.sample(self.categories, k=min(len(self.categories), n_favourites))
        taste = {c: rng.gauss(-0.6, 0.4) for c in self.categories}
        for c in favourites:
            taste[c] = rng.uniform(0.6, 1.6)
        brand_taste = {
            b: rng.gauss(0.0, 0.5) for b in rng.sample(self.brands, k=min(len(self.brands), 4))
        }
        log_budget, sensitivity = _TYPE_BUDGET[kind]
        preference = {
            a: p + rng.gauss(0.0, cfg.angle_shopper_noise)
            for a, p in self.type_angle_preference[kind].items()
        }
        return Shopper(
            shopper_id=f"shopper-{self.seed}-{index:05d}",
            shopper_type=kind,
            category_taste=taste,
            brand_taste=brand_taste,
            budget=math.exp(rng.gauss(log_budget, 0.4)),
            price_sensitivity=max(0.0, rng.gauss(sensitivity, 0.25)),
            angle_preference=preference,
            channel_bias={ch: rng.gauss(0.0, 0.15) for ch in CHANNELS},
            devices=tuple(rng.sample(("mobile", "desktop", "tablet", "app"), k=rng.choice((1, 2)))),
            peak_hour=rng.choice((8, 12, 13, 19, 20, 21, 22)),
            activity=math.exp(rng.gauss(0.0, 0.8)),
            cold=rng.random() < cfg.cold_fraction,
        )

    def _observe(self, shopper: Shopper, rng: random.Random) -> UserFeatures:
        """The profile a profile service would build from history: noisy affinities for the
        categories browsed, the behavioural segment the type's habits tend to produce (not
        always: `history_fidelity`), a price band; never the hidden numbers."""
        if shopper.cold:
            return UserFeatures(
                user_id=shopper.shopper_id, segments=("new_visitor",), cold_start=True
            )
        affinity = {
            c: round(_sigmoid(1.5 * t + rng.gauss(0, 0.25)), 3)
            for c, t in shopper.category_taste.items()
            if t > -0.9  # categories never browsed leave no trace in the profile
        }
        brands = {
            b: round(_sigmoid(1.5 * t + rng.gauss(0, 0.25)), 3)
            for b, t in shopper.brand_taste.items()
            if t > -0.3
        }
        kind = shopper.shopper_type
        if rng.random() >= self.config.history_fidelity:
            kind = rng.choice([k for k in SHOPPER_TYPES if k != kind])
        segment = TYPE_SEGMENTS[kind]
        if segment == "fan":
            segment = f"fan:{max(shopper.category_taste, key=shopper.category_taste.__getitem__)}"
        segments = [segment]
        segments.append("evening_shopper" if shopper.peak_hour >= 18 else "daytime_shopper")
        budget = shopper.budget * math.exp(rng.gauss(0.0, 0.3))
        band = (
            "budget"
            if budget < 25
            else "mid"
            if budget < 100
            else "premium"
            if budget < 300
            else "luxury"
        )
        events = max(1, int(rng.gauss(8 * shopper.activity, 2)))
        return UserFeatures(
            user_id=shopper.shopper_id,
            segments=tuple(segments),
            category_affinity=affinity,
            brand_affinity=brands,
            price_band=band,
            events_30d=events,
            recency_days=round(rng.expovariate(shopper.activity / 3.0), 2),
            monetary=round(shopper.budget * max(0.1, rng.gauss(shopper.activity, 0.2)), 2),
            cold_start=False,
        )

    def profile(self, shopper_id: str) -> UserFeatures:
        return self._profiles[shopper_id]

    def shopper(self, shopper_id: str) -> Shopper:
        return self._shopper_by_id[shopper_id]

    def history(self, shopper: Shopper, rng: random.Random) -> list[tuple[str, bool]]:
        """Past browsing, [(item_id, purchased), ...], that follows the shopper's type, so a
        profile service derives segments that correlate with it: deal hunters view cheap and
        discounted items and buy discounted ones, quality seekers browse the pricier items and
        buy them at full price, gift givers buy several mid-priced presents, trend followers
        look at popular items and buy nothing, convenience seekers stay in one category and
        buy at full price. A share
        1 - `history_fidelity` of events ignores the type (taste and budget only)."""
        if shopper.cold:
            return []
        kind = shopper.shopper_type
        views, purchases = _HISTORY_SIZE[kind]
        typed = np.array([self._browse_logit(shopper, i, kind) for i in range(len(self.items))])
        plain = np.array([self._browse_logit(shopper, i, "") for i in range(len(self.items))])
        buyable = np.array([self._buyable(shopper, item, kind) for item in self.items])
        events: list[tuple[str, bool]] = []
        for n in range(views + purchases):
            buying = n >= views
            logits = typed if rng.random() < self.config.history_fidelity else plain
            if buying and buyable.any():
                logits = np.where(buyable, logits, -np.inf)
            weights = np.exp(logits - logits.max())
            index = rng.choices(range(len(self.items)), weights=weights.tolist())[0]
            events.append((self.item_ids[index], buying))
        return events

    def _browse_logit(self, shopper: Shopper, index: int, kind: str) -> float:
        item = self.items[index]
        top = next(iter(item.category_path)) if item.category_path else "none"
        fit = -abs(math.log(max(item.price, 0.01) / shopper.budget))
        logit = 1.5 * shopper.category_taste.get(top, -0.6)
        if kind == "deal_hunter":
            over = max(0.0, math.log(max(item.price, 0.01) / shopper.budget))
            return logit - 2.0 * over + (1.2 if item.list_price > item.price else 0.0)
        if kind == "quality_seeker":
            return logit + max(-3.0, min(3.0, 1.2 * math.log(max(item.price, 0.01) / 60.0)))
        if kind == "trend_follower":
            return logit + fit + 3.0 * self.item_appeal[self.item_ids[index]]
        if kind == "convenience_seeker":
            favourite = max(shopper.category_taste, key=shopper.category_taste.__getitem__)
            return logit + fit + (3.0 if top == favourite else 0.0)
        return logit + fit

    @staticmethod
    def _buyable(shopper: Shopper, item: Item, kind: str) -> bool:
        if kind == "deal_hunter":
            return item.list_price > item.price
        if kind == "quality_seeker":
            return item.price >= 60.0 and not item.list_price > item.price
        if kind == "gift_giver":
            return item.price >= 40.0
        return not item.list_price > item.price  # no reason to wait for a deal

    # --- items and copy ---------------------------------------------------------------------
    def item_features(self, item_id: str) -> ItemFeatures:
        item = self._item_by_id[item_id]
        appeal = self.item_appeal[item_id]
        return ItemFeatures(
            item_id=item_id,
            category_path=tuple(item.category_path),
            brand=item.brand,
            price=float(item.price),
            list_price=float(item.list_price),
            popularity=round(
                math.exp(2.5 + 2.0 * appeal + 0.3 * _gauss_from_hash(f"pop:{item_id}")), 1
            ),
        )

    def copy_variants_with_angles(self, item_id: str) -> list[tuple[str, str]]:
        """A fixed set of (copy text, angle) for an item, one or two per angle plus two plain
        lines (angle ""): what a pool written in several angles would hold."""
        cached = self._copies.get(item_id)
        if cached is not None:
            return cached
        item = self._item_by_id[item_id]
        path = tuple(item.category_path) or ("product",)
        title = str(getattr(item, "title", "") or f"{item.brand} {path[-1]}")
        noun = path[-1]
        pct = (
            round(100 * (1 - item.price / item.list_price))
            if item.list_price > item.price > 0
            else 0
        )
        variants = [
            (f"Meet the {title}.", ""),
            (f"{title}, now ${item.price:.2f}.", ""),
            (f"Premium {noun} from {item.brand}, crafted to last.", "quality"),
            (f"Thousands of shoppers love the {title}.", "social_proof"),
            (f"Best-selling {noun}, rated highly by customers.", "social_proof"),
            (f"New this season: discover the {title}.", "novelty"),
            (f"A gift they will remember: the {title}.", "gift"),
            (f"{title}: made to make everyday life easier.", "benefit"),
            (f"Hurry: the {title} offer ends tonight.", "urgency"),
        ]
        if pct > 0:
            variants.append((f"Save {pct}% on the {title} today.", "value"))
        else:
            variants.append((f"The {title} at a fair price: ${item.price:.2f}.", "value"))
        self._copies[item_id] = variants
        for text, angle in variants:
            self._angle_of_text[text] = angle
        return variants

    def copy_variants(self, item_id: str) -> list[str]:
        """The texts of `copy_variants_with_angles`."""
        return [text for text, _ in self.copy_variants_with_angles(item_id)]

    def angle_of(self, text: str) -> str:
        """The angle a text of `copy_variants` was written with ("" for any other text)."""
        return self._angle_of_text.get(text, "")

    # --- the hidden response model ----------------------------------------------------------
    def copy_effect(self, shopper: Shopper, copy_text: str, angle: str = "") -> tuple[float, float]:
        """(angle term, text term) of the click logit: the shopper's preference for the angle
        (0 for plain copy or an angle the market does not know) and the scaled cosine between
        the copy's private embedding and the type's hidden direction."""
        angle_term = shopper.angle_preference.get(angle, 0.0) if angle else 0.0
        cosine = float(self.type_direction[shopper.shopper_type] @ self.embedding(copy_text))
        return angle_term, self.config.text_scale * math.sqrt(self.config.text_dim) * cosine

    def true_probabilities(
        self,
        shopper: Shopper,
        item: Item,
        item_id: str,
        copy_text: str,
        context: ContextFeatures,
        angle: str = "",
        position: int = 1,
        exposures: int = 0,
    ) -> tuple[float, float]:
        """(P(click), P(purchase | click)) for one impression of `copy_text`, written with
        `angle`, shown at 1-based `position` to a shopper who has seen this item `exposures`
        times before. P(click) = P(examine position) x sigmoid(click logit); see
        docs/market.md for every term."""
        cfg = self.config
        path = tuple(item.category_path)
        top = path[0] if path else "none"
        taste = shopper.category_taste.get(top, -0.6)
        brand = shopper.brand_taste.get(item.brand, 0.0)
        price_gap = max(0.0, math.log(max(item.price, 0.01) / shopper.budget))
        discount = 1.0 - item.price / item.list_price if item.list_price > item.price > 0 else 0.0
        angle_term, text_term = self.copy_effect(shopper, copy_text, angle)
        idiosyncratic = cfg.idiosyncratic_scale * _gauss_from_hash(
            f"{self.seed}:idio:{shopper.shopper_id}:{copy_text}"
        )
        words = len(copy_text.split())
        length_penalty = (
            0.04 * max(0, words - 12) * (2.0 if context.channel in ("push", "sms") else 1.0)
        )
        hour_gap = min(
            abs(context.hour - shopper.peak_hour), 24 - abs(context.hour - shopper.peak_hour)
        )
        device = 0.15 if context.device in shopper.devices else -0.25
        appeal = self.item_appeal.get(item_id, 0.0)
        click_logit = (
            cfg.base_click_logit
            + cfg.channel_click_logit.get(context.channel, 0.0)
            + shopper.channel_bias.get(context.channel, 0.0)
            + cfg.taste_scale * taste
            + brand
            + appeal
            - 0.5 * shopper.price_sensitivity * price_gap
            + angle_term
            + text_term
            + idiosyncratic
            - length_penalty
            - 0.05 * hour_gap
            + device
            - cfg.fatigue * math.log1p(max(0, exposures))
        )
        convert_logit = (
            cfg.base_convert_logit
            + 0.6 * taste
            + 0.5 * brand
            + 0.8 * appeal
            - 1.2 * shopper.price_sensitivity * price_gap
            + 1.5 * shopper.price_sensitivity * discount
            + cfg.angle_convert_share * angle_term
        )
        examine = max(1, position) ** -cfg.position_exponent
        return examine * _sigmoid(click_logit), _sigmoid(convert_logit)

    def truth_for(
        self, examples: Sequence[TrainingExample], angles: Sequence[str] | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Oracle (P(click), P(purchase | click)) for first-exposure, top-slot impressions of
        this market's shoppers; each copy's angle comes from `angles` when given, else from
        the texts this market wrote (`copy_variants`; other texts are plain)."""
        if angles is not None and len(angles) != len(examples):
            raise ValueError("angles must have one entry per example")
        p_click = np.empty(len(examples))
        p_convert = np.empty(len(examples))
        for row, ex in enumerate(examples):
            shopper = self._shopper_by_id[ex.user.user_id]
            item = self._item_by_id[ex.item.item_id]
            angle = angles[row] if angles is not None else self.angle_of(ex.copy.text)
            p_click[row], p_convert[row] = self.true_probabilities(
                shopper, item, ex.item.item_id, ex.copy.text, ex.context, angle
            )
        return p_click, p_convert

    # --- impression logs --------------------------------------------------------------------
    def _pick_item(self, shopper: Shopper, rng: random.Random) -> str:
        if rng.random() < self.config.targeted_fraction:
            liked = [c for c, t in shopper.category_taste.items() if t > 0] or self.categories
            category = rng.choice(liked)
            pool = self._by_category().get(category) or self.item_ids
            return rng.choice(pool)
        return rng.choice(self.item_ids)

    def _by_category(self) -> dict[str, list[str]]:
        if not hasattr(self, "_category_index"):
            index: dict[str, list[str]] = {}
            for iid, item in zip(self.item_ids, self.items, strict=True):
                top = next(iter(item.category_path)) if item.category_path else "none"
                index.setdefault(top, []).append(iid)
            self._category_index = index
        return self._category_index

    def generate(
        self,
        n_impressions: int,
        start_time: float = 1_700_000_000.0,
        duration_s: float = 14 * 86_400.0,
        seed: int = 1,
        channels: Sequence[str] = CHANNELS,
        locale: str = "en-US",
    ) -> ImpressionLog:
        """Impressions spread evenly over [start, start + duration), outcomes drawn from the
        true probabilities. Shoppers appear in proportion to their activity; half the items
        shown are targeted at a liked category (as a recommender would), half random; the
        copy is drawn uniformly from the item's variants (all angles); every impression is a
        first exposure in the top slot (the logged features carry no position)."""
        rng = random.Random(f"{self.seed}:{seed}")
        weights = [s.activity for s in self.shoppers]
        chosen = rng.choices(self.shoppers, weights=weights, k=n_impressions)
        examples: list[TrainingExample] = []
        angles: list[str] = []
        p_click = np.empty(n_impressions)
        p_convert = np.empty(n_impressions)
        items_cache: dict[str, ItemFeatures] = {}
        for row, shopper in enumerate(chosen):
            item_id = self._pick_item(shopper, rng)
            item_features = items_cache.get(item_id)
            if item_features is None:
                item_features = items_cache[item_id] = self.item_features(item_id)
            text, angle = rng.choice(self.copy_variants_with_angles(item_id))
            hour = round(rng.gauss(shopper.peak_hour, 3.0)) % 24
            device = (
                rng.choice(shopper.devices)
                if rng.random() < 0.85
                else rng.choice(("mobile", "desktop", "tablet", "app"))
            )
            context = ContextFeatures(
                channel=rng.choice(tuple(channels)), hour=hour, device=device, locale=locale
            )
            pc, pv = self.true_probabilities(
                shopper, self._item_by_id[item_id], item_id, text, context, angle
            )
            clicked = rng.random() < pc
            converted = clicked and rng.random() < pv
            examples.append(
                TrainingExample(
                    user=self._profiles[shopper.shopper_id],
                    item=item_features,
                    copy=CopyFeatures(
                        creative_id=f"cr-{_short_hash(text)}", text=text, locale=locale
                    ),
                    context=context,
                    clicked=clicked,
                    converted=converted,
                    timestamp=start_time + duration_s * row / max(n_impressions, 1),
                )
            )
            angles.append(angle)
            p_click[row], p_convert[row] = pc, pv
        return ImpressionLog(examples, p_click, p_convert, angles)


# (views, purchases) in a shopper's seeded history, per type.
_HISTORY_SIZE: dict[str, tuple[int, int]] = {
    "deal_hunter": (12, 3),
    "quality_seeker": (12, 1),
    "gift_giver": (10, 4),
    "trend_follower": (18, 0),
    "convenience_seeker": (12, 2),
}


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _gauss_from_hash(text: str) -> float:
    """Standard normal draw determined by a string (Box-Muller on two hashed uniforms)."""
    u1 = max(_unit_hash(text + "#1"), 1e-12)
    u2 = _unit_hash(text + "#2")
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=6).hexdigest()
