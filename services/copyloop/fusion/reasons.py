"""Short "why you see this" reasons, from the evidence the Recommend call already has.

Reasons are built only from facts (the user's affinities and price band, the item's data,
the model's top contributing features), never invented, so every reason can be traced back.
They are ordered from the most specific to the user down to generic facts: brand affinity,
category affinity, copy style that works for the user's segment, the content-effect model's
view of the chosen copy (only when PredictionService has that model loaded and it predicts
the copy beats the item's other copy by a material margin), price band fit, discount,
popularity. At most three are returned. Locales: en-US and zh-CN; any "zh*" locale gets
Chinese, anything else English.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from copyloop.common.vocabulary import DEFAULT_LOCALE

__all__ = [
    "PriceBandBounds",
    "ReasonConfig",
    "ReasonEvidence",
    "category_label",
    "price_band",
    "reasons_for",
]

# Copy styles the prediction service reports as features (e.g. "copy_discount",
# "copy_style:discount"); checked in this order so "social_proof" is not read as anything else.
COPY_STYLES: tuple[str, ...] = ("social_proof", "discount", "urgency", "quality")
# Item-level features that contain a style word but say nothing about the copy.
_NOT_COPY_FEATURES = frozenset(
    {"discount", "item_discount", "item_discount_bucket", "x_band_discount"}
)

CATEGORY_NAMES_ZH: dict[str, str] = {
    "Toys": "玩具",
    "Electronics": "数码电子",
    "Home & Kitchen": "家居厨房",
    "Beauty": "美妆个护",
    "Sports & Outdoors": "运动户外",
    "Books": "图书",
    "Fashion": "服饰",
    "Grocery": "食品杂货",
}

# Display names of the profile service's segment labels; others read "this segment".
SEGMENT_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "": "this segment",
        "new_user": "new shoppers",
        "lapsed": "returning shoppers",
        "loyal_high_value": "loyal shoppers",
        "bargain_hunter": "bargain hunters",
        "premium_shopper": "premium shoppers",
        "window_shopper": "browsing shoppers",
    },
    "zh": {
        "": "该人群",
        "new_user": "新用户",
        "lapsed": "回流用户",
        "loyal_high_value": "忠实用户",
        "bargain_hunter": "精打细算型用户",
        "premium_shopper": "高端用户",
        "window_shopper": "浏览型用户",
    },
}

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "brand": "from {brand}, a brand you like",
        "category": "matches your interest in {category}",
        "copy_discount": "discount copy works for {segment}",
        "copy_urgency": "urgency copy works for {segment}",
        "copy_social_proof": "social-proof copy works for {segment}",
        "copy_quality": "quality-focused copy works for {segment}",
        "copy_effect": "this wording is predicted to beat the item's other copy (+{pct}% clicks)",
        "price_band": "fits your usual price range",
        "discount": "{pct}% off",
        "popular": "popular right now",
    },
    "zh": {
        "brand": "来自你喜欢的品牌{brand}",
        "category": "符合你对{category}的兴趣",
        "copy_discount": "优惠类文案对{segment}更有效",
        "copy_urgency": "限时紧迫类文案对{segment}更有效",
        "copy_social_proof": "口碑类文案对{segment}更有效",
        "copy_quality": "品质类文案对{segment}更有效",
        "copy_effect": "这条文案预计比该商品的其他文案多{pct}%的点击",
        "price_band": "符合你常买的价位",
        "discount": "{zhe}折优惠",
        "popular": "当下热门",
    },
}


@dataclass(frozen=True)
class PriceBandBounds:
    """Upper bounds of budget / mid / premium (above is luxury); mirrors the profile service."""

    budget_max: float = 25.0
    mid_max: float = 100.0
    premium_max: float = 300.0


@dataclass(frozen=True)
class ReasonConfig:
    """Thresholds below which a piece of evidence is too weak to mention."""

    min_category_share: float = 0.15
    min_brand_share: float = 0.10
    top_k_affinities: int = 3
    min_discount_pct: int = 5
    popular_rank_max: int = 20
    # Smallest predicted click gain of the chosen copy over the item's others worth a reason.
    min_copy_effect: float = 0.05
    bands: PriceBandBounds = field(default_factory=PriceBandBounds)


@dataclass(frozen=True)
class ReasonEvidence:
    """Plain values the caller has at hand; shares are in [0, 1], strongest affinity first.

    `popularity_rank` is 1 for the most popular item (None when unknown); `top_features` are
    the prediction's top contributing feature names, or (name, contribution) pairs of which
    only positive ones count.
    """

    item_category: str
    item_brand: str = ""
    item_price: float = 0.0
    item_list_price: float = 0.0
    user_top_categories: Sequence[tuple[str, float]] = ()
    user_top_brands: Sequence[tuple[str, float]] = ()
    user_price_band: str = ""
    popularity_rank: int | None = None
    segment: str = ""  # the profile's most relevant segment label, e.g. "bargain_hunter"
    top_features: Sequence[str | tuple[str, float]] = ()
    # Predicted relative CTR gain of the chosen copy over the item's other copies from the
    # content-effect model (bandit.copy_effect of Score's copy_quality); 0 = no model / none.
    copy_effect: float = 0.0


def price_band(price: float, bounds: PriceBandBounds = PriceBandBounds()) -> str:
    """The band an item's price falls in, named as the profile service names user bands."""
    if price <= bounds.budget_max:
        return "budget"
    if price <= bounds.mid_max:
        return "mid"
    if price <= bounds.premium_max:
        return "premium"
    return "luxury"


def _language(locale: str) -> str:
    return "zh" if locale.lower().replace("_", "-").startswith("zh") else "en"


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _affinity_match(
    value: str, affinities: Sequence[tuple[str, float]], min_share: float, top_k: int
) -> bool:
    if not value:
        return False
    return any(
        _norm(name) == _norm(value) and share >= min_share for name, share in affinities[:top_k]
    )


def _copy_style(evidence: ReasonEvidence) -> str | None:
    """The first copy-style feature among the top features with a positive contribution."""
    for feature in evidence.top_features:
        name, contribution = (feature, 1.0) if isinstance(feature, str) else feature
        key = name.casefold()
        if contribution <= 0 or key in _NOT_COPY_FEATURES or key.startswith("item_"):
            continue
        for style in COPY_STYLES:
            if style in key:
                return style
    return None


def _discount_pct(evidence: ReasonEvidence) -> int:
    if evidence.item_list_price <= 0 or evidence.item_price >= evidence.item_list_price:
        return 0
    return round(100 * (1 - evidence.item_price / evidence.item_list_price))


def _zhe(pct: int) -> str:
    """Chinese discounts are said as the fraction paid: 20% off is 8折, 15% off is 8.5折."""
    paid = (100 - pct) / 10
    return f"{paid:.1f}".rstrip("0").rstrip(".")


def reasons_for(
    evidence: ReasonEvidence,
    locale: str = DEFAULT_LOCALE,
    limit: int = 3,
    config: ReasonConfig = ReasonConfig(),
) -> list[str]:
    """Up to `limit` reasons, most specific first, in the locale's language."""
    lang = _language(locale)
    text = _TEXT[lang]
    found: list[str] = []
    top_k = config.top_k_affinities
    brands, categories = evidence.user_top_brands, evidence.user_top_categories
    if _affinity_match(evidence.item_brand, brands, config.min_brand_share, top_k):
        found.append(text["brand"].format(brand=evidence.item_brand))
    if _affinity_match(evidence.item_category, categories, config.min_category_share, top_k):
        category = category_label(evidence.item_category, locale)
        found.append(text["category"].format(category=category))
    style = _copy_style(evidence)
    if style:
        names = SEGMENT_NAMES[lang]
        found.append(text[f"copy_{style}"].format(segment=names.get(evidence.segment, names[""])))
    if evidence.copy_effect >= config.min_copy_effect:
        found.append(text["copy_effect"].format(pct=round(100 * evidence.copy_effect)))
    if (
        evidence.user_price_band
        and evidence.item_price > 0
        and price_band(evidence.item_price, config.bands) == evidence.user_price_band
    ):
        found.append(text["price_band"])
    pct = _discount_pct(evidence)
    if pct >= config.min_discount_pct:
        found.append(text["discount"].format(pct=pct, zhe=_zhe(pct)))
    rank = evidence.popularity_rank
    if rank is not None and 1 <= rank <= config.popular_rank_max:
        found.append(text["popular"])
    return found[: max(limit, 0)]


def category_label(
    category: str, locale: str, names_zh: Mapping[str, str] = CATEGORY_NAMES_ZH
) -> str:
    """A category's display name in the locale (unknown categories keep their own name)."""
    return names_zh.get(category, category) if _language(locale) == "zh" else category
