"""Synthetic market: shoppers with hidden tastes and a hidden click/purchase model.

Why: a CTR/CVR model can only be checked against the truth where the truth is known. Here
every impression's true click and purchase probabilities are known, so a trained model's AUC
can be compared with the oracle AUC (the best any model could reach on the same sampled
outcomes) and its calibration with the real rates. Shoppers react to product fit (category,
brand, price versus budget), to copy style (discount, urgency, quality claims, social proof,
questions, length) and to context (channel, hour, device); the prediction service sees only
the observable profile (`UserFeatures`), never these hidden parameters.

Items are anything with `category_path`, `brand`, `price` and `list_price` (the `Item`
protocol), so the closed-loop simulator can run it on the demo catalog or a real one.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from copyloop.prediction.features.types import (
    CHANNELS,
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    TrainingExample,
    UserFeatures,
)

__all__ = [
    "HIDDEN_STYLES",
    "ImpressionLog",
    "Item",
    "MarketConfig",
    "MarketItem",
    "Shopper",
    "SyntheticMarket",
    "hidden_styles",
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


HIDDEN_STYLES: tuple[str, ...] = ("discount", "urgency", "quality", "social_proof", "question")

# The market's own reading of copy: deliberately not the prediction service's cue lists.
_STYLE_PATTERNS: dict[str, re.Pattern[str]] = {
    "discount": re.compile(
        r"\d+\s?% off|\bsave\b|\bsale\b|\bdeal\b|\bdiscount|\bprice drop|折|优惠"
    ),
    "urgency": re.compile(
        r"\btoday\b|\btonight\b|\bhurry\b|\blast chance\b|\bends\b|\bleft\b|\bnow\b|限时|今天|马上"
    ),
    "quality": re.compile(
        r"\bpremium\b|\bcrafted\b|\bquality\b|\bdurable\b|\bbuilt to last\b|\bexpert|品质|匠心"
    ),
    "social_proof": re.compile(
        r"\blove[sd]?\b|\bbest-?selling\b|\brated\b|\bthousands\b|\bfavou?rite\b|\breviews\b|热销|好评"
    ),
    "question": re.compile(r"\?|？"),
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
    """Hidden truth about one shopper (never shown to the prediction service)."""

    shopper_id: str
    category_taste: dict[str, float]
    brand_taste: dict[str, float]
    budget: float
    price_sensitivity: float
    style_response: dict[str, float]
    channel_bias: dict[str, float]
    devices: tuple[str, ...]
    peak_hour: int
    activity: float
    cold: bool


@dataclass(frozen=True)
class MarketConfig:
    """Knobs of the hidden response model (logit scale)."""

    n_shoppers: int = 400
    cold_fraction: float = 0.15
    base_click_logit: float = -3.2
    base_convert_logit: float = -2.0
    taste_scale: float = 1.2
    style_scale: float = 0.6
    item_appeal_scale: float = 0.35
    targeted_fraction: float = 0.5
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
    """Generated impressions plus the true probabilities each outcome was drawn from."""

    examples: list[TrainingExample]
    p_click: NDArray[np.float64]
    p_convert: NDArray[np.float64]  # P(purchase | click)

    @property
    def p_ctcvr(self) -> NDArray[np.float64]:
        return self.p_click * self.p_convert


def _unit_hash(text: str) -> float:
    """Deterministic pseudo-random number in [0, 1) from a string."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def hidden_styles(text: str) -> dict[str, bool]:
    """Which styles the market's shoppers perceive in a copy text."""
    lower = text.lower()
    return {style: bool(pattern.search(lower)) for style, pattern in _STYLE_PATTERNS.items()}


class SyntheticMarket:
    """Shoppers, items and the hidden model that turns impressions into clicks and purchases."""

    def __init__(
        self, items: Sequence[Item], config: MarketConfig = MarketConfig(), seed: int = 0
    ) -> None:
        if not items:
            raise ValueError("the market needs at least one item")
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
        rng = random.Random(seed)
        self.shoppers = [self._make_shopper(i, rng) for i in range(config.n_shoppers)]
        self._shopper_by_id = {s.shopper_id: s for s in self.shoppers}
        self._profiles = {
            s.shopper_id: self._observe(s, random.Random(f"{seed}:profile:{s.shopper_id}"))
            for s in self.shoppers
        }
        self._copies: dict[str, list[str]] = {}

    # --- shoppers ---------------------------------------------------------------------------
    def _make_shopper(self, index: int, rng: random.Random) -> Shopper:
        favourites = rng.sample(
            self.categories, k=min(len(self.categories), rng.choice((1, 2, 2, 3)))
        )
        taste = {c: rng.gauss(-0.6, 0.4) for c in self.categories}
        for c in favourites:
            taste[c] = rng.uniform(0.6, 1.6)
        brand_taste = {
            b: rng.gauss(0.0, 0.5) for b in rng.sample(self.brands, k=min(len(self.brands), 4))
        }
        style_response = {
            "discount": rng.gauss(0.5, 0.7),
            "urgency": rng.gauss(0.0, 0.6),
            "quality": rng.gauss(0.2, 0.6),
            "social_proof": rng.gauss(0.3, 0.5),
            "question": rng.gauss(-0.1, 0.4),
        }
        price_sensitivity = max(0.0, rng.gauss(0.8, 0.5))
        # Price-sensitive shoppers care more about discounts: a correlation the model can use.
        style_response["discount"] += 0.6 * (price_sensitivity - 0.8)
        return Shopper(
            shopper_id=f"shopper-{self.seed}-{index:05d}",
            category_taste=taste,
            brand_taste=brand_taste,
            budget=math.exp(rng.gauss(math.log(45.0), 0.8)),
            price_sensitivity=price_sensitivity,
            style_response=style_response,
            channel_bias={ch: rng.gauss(0.0, 0.15) for ch in CHANNELS},
            devices=tuple(rng.sample(("mobile", "desktop", "tablet", "app"), k=rng.choice((1, 2)))),
            peak_hour=rng.choice((8, 12, 13, 19, 20, 21, 22)),
            activity=math.exp(rng.gauss(0.0, 0.8)),
            cold=rng.random() < self.config.cold_fraction,
        )

    def _observe(self, shopper: Shopper, rng: random.Random) -> UserFeatures:
        """The profile a profile service would build from history: noisy affinities for the
        categories browsed, behavioural segments, price band; never the hidden numbers."""
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
        response = shopper.style_response
        segments: list[str] = []
        if shopper.price_sensitivity > 1.1:
            segments.append("bargain_hunter")
        if response["discount"] > 0.9:
            segments.append("deal_seeker")
        if response["urgency"] > 0.4:
            segments.append("impulse_buyer")
        if response["quality"] > 0.5:
            segments.append("quality_seeker")
        if response["social_proof"] > 0.7:
            segments.append("trend_follower")
        if shopper.activity > 1.5:
            segments.append("loyal")
        segments.append("evening_shopper" if shopper.peak_hour >= 18 else "daytime_shopper")
        band = (
            "budget"
            if shopper.budget < 25
            else "mid"
            if shopper.budget < 70
            else "premium"
            if shopper.budget < 180
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

    def copy_variants(self, item_id: str) -> list[str]:
        """A fixed set of copy texts in different styles for an item (what a pool would hold)."""
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
            f"{title}: made for everyday life.",
            f"Meet the {title}.",
            f"Premium {noun} from {item.brand}, crafted to last.",
            f"Thousands of shoppers love the {title}.",
            f"Best-selling {noun}, rated 4.8 stars by customers.",
            f"Looking for new {noun}? Try the {title}.",
            f"Hurry: the {title} is going fast, order today.",
        ]
        if pct > 0:
            variants += [
                f"Save {pct}% on the {title} today.",
                f"{pct}% off {title}: last chance, ends tonight!",
            ]
        else:
            variants.append(f"Great deal on the {title}.")
        self._copies[item_id] = variants
        return variants

    # --- the hidden response model ----------------------------------------------------------
    def true_probabilities(
        self, shopper: Shopper, item: Item, item_id: str, copy_text: str, context: ContextFeatures
    ) -> tuple[float, float]:
        """(P(click), P(purchase | click)) for one impression."""
        cfg = self.config
        path = tuple(item.category_path)
        top = path[0] if path else "none"
        taste = shopper.category_taste.get(top, -0.6)
        brand = shopper.brand_taste.get(item.brand, 0.0)
        price_gap = max(0.0, math.log(max(item.price, 0.01) / shopper.budget))
        discount = 1.0 - item.price / item.list_price if item.list_price > item.price > 0 else 0.0
        styles = hidden_styles(copy_text)
        style_effect = sum(shopper.style_response[s] for s, on in styles.items() if on)
        if styles["discount"] and discount == 0.0:
            style_effect -= 0.3  # a "deal" claim without a visible discount disappoints
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
            + cfg.style_scale * style_effect
            - length_penalty
            - 0.05 * hour_gap
            + device
        )
        convert_logit = (
            cfg.base_convert_logit
            + 0.6 * taste
            + 0.5 * brand
            + 0.8 * appeal
            - 1.2 * shopper.price_sensitivity * price_gap
            + 1.5 * shopper.price_sensitivity * discount
            + (0.4 * shopper.style_response["quality"] if styles["quality"] else 0.0)
            - (0.4 if styles["urgency"] and shopper.style_response["urgency"] < 0 else 0.0)
        )
        return _sigmoid(click_logit), _sigmoid(convert_logit)

    def truth_for(
        self, examples: Sequence[TrainingExample]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Oracle (P(click), P(purchase | click)) for impressions of this market's shoppers."""
        p_click = np.empty(len(examples))
        p_convert = np.empty(len(examples))
        for row, ex in enumerate(examples):
            shopper = self._shopper_by_id[ex.user.user_id]
            item = self._item_by_id[ex.item.item_id]
            p_click[row], p_convert[row] = self.true_probabilities(
                shopper, item, ex.item.item_id, ex.copy.text, ex.context
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
        shown are targeted at a liked category (as a recommender would), half random."""
        rng = random.Random(f"{self.seed}:{seed}")
        weights = [s.activity for s in self.shoppers]
        chosen = rng.choices(self.shoppers, weights=weights, k=n_impressions)
        examples: list[TrainingExample] = []
        p_click = np.empty(n_impressions)
        p_convert = np.empty(n_impressions)
        items_cache: dict[str, ItemFeatures] = {}
        for row, shopper in enumerate(chosen):
            item_id = self._pick_item(shopper, rng)
            item_features = items_cache.get(item_id)
            if item_features is None:
                item_features = items_cache[item_id] = self.item_features(item_id)
            text = rng.choice(self.copy_variants(item_id))
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
                shopper, self._item_by_id[item_id], item_id, text, context
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
            p_click[row], p_convert[row] = pc, pv
        return ImpressionLog(examples, p_click, p_convert)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _gauss_from_hash(text: str) -> float:
    """Standard normal draw determined by a string (Box-Muller on two hashed uniforms)."""
    u1 = max(_unit_hash(text + "#1"), 1e-12)
    u2 = _unit_hash(text + "#2")
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=6).hexdigest()
