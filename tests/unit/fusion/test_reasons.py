"""Reasons come only from evidence, most specific first, at most three, in en-US and zh-CN."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from copyloop.fusion.reasons import (
    ReasonConfig,
    ReasonEvidence,
    category_label,
    price_band,
    reasons_for,
)

FULL = ReasonEvidence(
    item_category="Toys",
    item_brand="Acme",
    item_price=40.0,
    item_list_price=50.0,
    user_top_categories=[("Toys", 0.45), ("Books", 0.30)],
    user_top_brands=[("Acme", 0.25)],
    user_price_band="mid",
    popularity_rank=3,
    segment="bargain_hunter",
    top_features=[("category_affinity", 0.8), ("copy_discount", 0.4), ("popularity", 0.1)],
)


def only(**fields: Any) -> ReasonEvidence:
    """A Toys item with just the given evidence."""
    return dataclasses.replace(ReasonEvidence(item_category="Toys"), **fields)


def test_full_evidence_gives_three_most_specific_reasons_in_english() -> None:
    assert reasons_for(FULL, "en-US") == [
        "from Acme, a brand you like",
        "matches your interest in Toys",
        "discount copy works for bargain hunters",
    ]
    assert reasons_for(FULL, "en-US", limit=6) == [
        "from Acme, a brand you like",
        "matches your interest in Toys",
        "discount copy works for bargain hunters",
        "fits your usual price range",
        "20% off",
        "popular right now",
    ]


def test_full_evidence_in_chinese() -> None:
    assert reasons_for(FULL, "zh-CN", limit=6) == [
        "来自你喜欢的品牌Acme",
        "符合你对玩具的兴趣",
        "优惠类文案对精打细算型用户更有效",
        "符合你常买的价位",
        "8折优惠",
        "当下热门",
    ]
    assert reasons_for(FULL, "zh_CN") == reasons_for(FULL, "zh-CN")[:3]
    assert reasons_for(FULL, "fr-FR") == reasons_for(FULL, "en-US")  # unsupported -> English


@pytest.mark.parametrize(
    ("evidence", "en", "zh"),
    [
        (only(item_price=42.5, item_list_price=50.0), "15% off", "8.5折优惠"),
        (only(popularity_rank=1), "popular right now", "当下热门"),
        (
            only(item_price=60.0, user_price_band="mid"),
            "fits your usual price range",
            "符合你常买的价位",
        ),
        (
            only(top_features=["copy_style:urgency"]),
            "urgency copy works for this segment",
            "限时紧迫类文案对该人群更有效",
        ),
        (
            only(top_features=["copy_social_proof"], segment="new_user"),
            "social-proof copy works for new shoppers",
            "口碑类文案对新用户更有效",
        ),
        (
            only(top_features=["copy_quality"], segment="fan:Toys"),
            "quality-focused copy works for this segment",
            "品质类文案对该人群更有效",
        ),
        (
            only(item_category="Garden", user_top_categories=[("garden", 0.5)]),
            "matches your interest in Garden",
            "符合你对Garden的兴趣",
        ),
    ],
)
def test_each_kind_of_evidence_in_both_locales(evidence: ReasonEvidence, en: str, zh: str) -> None:
    assert reasons_for(evidence, "en-US") == [en]
    assert reasons_for(evidence, "zh-CN") == [zh]


def test_weak_or_missing_evidence_says_nothing() -> None:
    assert reasons_for(only(), "en-US") == []
    weak = only(
        item_brand="Acme",
        user_top_categories=[
            ("Books", 0.6),
            ("Beauty", 0.2),
            ("Grocery", 0.15),
            ("Toys", 0.05),
        ],  # Toys: 4th, 5%
        user_top_brands=[("Acme", 0.05)],
        item_price=49.0,
        item_list_price=50.0,  # 2% off: not worth saying
        popularity_rank=500,
        user_price_band="luxury",  # item is mid-priced
        top_features=[
            ("copy_discount", -0.3),
            ("item_discount", 0.5),
            ("discount", 0.4),
            ("segment_style", 0.2),
        ],
    )
    assert reasons_for(weak, "en-US") == []
    assert reasons_for(FULL, "en-US", limit=0) == []


def test_thresholds_are_configurable() -> None:
    evidence = only(user_top_categories=[("Toys", 0.10)], popularity_rank=50)
    assert reasons_for(evidence) == []
    loose = ReasonConfig(min_category_share=0.05, popular_rank_max=100)
    assert reasons_for(evidence, config=loose) == [
        "matches your interest in Toys",
        "popular right now",
    ]


def test_price_band_and_category_label_helpers() -> None:
    assert [price_band(p) for p in (10, 25, 25.01, 100, 299, 301)] == [
        "budget",
        "budget",
        "mid",
        "mid",
        "premium",
        "luxury",
    ]
    assert category_label("Home & Kitchen", "zh-CN") == "家居厨房"
    assert category_label("Home & Kitchen", "en-US") == "Home & Kitchen"
