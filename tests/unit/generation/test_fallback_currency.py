"""Template copy states the price with its currency in both locales, in the form the claim
checker reads as that currency ("13.99美元" is dollars, "¥13.99" yuan), never a bare "现价13.99"."""

from __future__ import annotations

import dataclasses

import pytest

from copyloop.generation.claims import ItemFacts, check_claims
from copyloop.generation.fallback import build_fallbacks, format_money
from copyloop.generation.prompts import CopyBrief
from copyloop.generation.slots import fill_slots

BRIEF = CopyBrief(
    item_title="Family Size Mixed Nuts",
    brand="Hearthly",
    category_path=("Grocery", "Snacks"),
    price=13.99,
    list_price=None,
    currency="USD",
    selling_points=("roasted in small batches",),
    attributes=(),
    channel="push",
    locale="zh-CN",
    tone="friendly",
)


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (13.99, "USD", "zh-CN", "13.99美元"),
        (13.99, "", "zh-CN", "13.99美元"),  # no code: the platform's default currency
        (13.99, "usd", "zh-CN", "13.99美元"),
        (99.0, "CNY", "zh-CN", "¥99"),
        (20.0, "EUR", "zh-CN", "20欧元"),
        (13.99, "USD", "en-US", "$13.99"),
        (13.99, "", "en-US", "$13.99"),
        (99.0, "CNY", "en-US", "¥99"),
    ],
)
def test_money_always_names_its_currency(
    amount: float, currency: str, locale: str, expected: str
) -> None:
    assert format_money(amount, currency, locale) == expected


@pytest.mark.parametrize("currency", ["USD", "", "CNY"])
@pytest.mark.parametrize("channel", ["push", "sms", "ad_copy", "social_post", "email_subject"])
def test_zh_fallbacks_that_state_the_price_state_its_currency(currency: str, channel: str) -> None:
    brief = dataclasses.replace(BRIEF, currency=currency, channel=channel)
    texts = [f.text for f in build_fallbacks(brief, count=6)]
    priced = [t for t in texts if "13.99" in t]
    assert priced or channel == "email_subject"  # 30 characters: the name alone may fill it
    for text in priced:
        assert ("¥13.99" if currency == "CNY" else "13.99美元") in text, text
    # ... and the claim checker reads it as the item's own price in its own currency.
    facts = ItemFacts.from_brief(brief)
    assert all(check_claims(t, facts, "zh-CN") == [] for t in priced)


def test_a_usd_price_slot_in_zh_copy_says_dollars() -> None:
    filled = fill_slots("{title}现价{price}。", dataclasses.replace(BRIEF, currency=""))
    assert filled is not None and filled.text == "Family Size Mixed Nuts现价13.99美元。"


def test_a_yuan_price_claimed_for_a_dollar_item_is_still_caught() -> None:
    facts = ItemFacts.from_brief(BRIEF)
    assert check_claims("Family Size Mixed Nuts，现价¥13.99", facts, "zh-CN") != []
