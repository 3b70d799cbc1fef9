"""Slot filling: facts come from the item, never from the model."""

from __future__ import annotations

import dataclasses

import pytest

from copyloop.generation.prompts import CopyBrief
from copyloop.generation.slots import (
    SLOT_NAMES,
    SLOT_TOKENS,
    available_slots,
    fill_slots,
    fill_slots_detailed,
    frame_slots,
    unslotted_amounts,
)

BRIEF = CopyBrief(
    item_title="Galaxy Explorer Rocket Set, Blue",
    brand="Brickwell",
    category_path=("Toys", "Building Sets"),
    price=39.99,
    list_price=49.99,
    currency="USD",
    selling_points=("glow-in-the-dark stickers", "ages 8+", "482 pieces"),
    attributes=(("age_range", "8+"), ("pieces", "482")),
    channel="push",
    locale="en-US",
    tone="playful",
)
PLAIN = dataclasses.replace(BRIEF, list_price=None, selling_points=("ages 8+",), brand="")
ZH = dataclasses.replace(BRIEF, locale="zh-CN", currency="CNY", price=288.9, list_price=359.9)


@pytest.mark.parametrize(
    ("brief", "frame", "text", "slots"),
    [
        (
            BRIEF,
            "{discount_pct} off {title}!",
            "20% off Galaxy Explorer Rocket Set!",
            ("discount_pct", "title"),
        ),
        (
            BRIEF,
            "{title}: was {list_price}, now {price}",
            "Galaxy Explorer Rocket Set: was $49.99, now $39.99",
            ("title", "list_price", "price"),
        ),
        (
            BRIEF,
            "Save {saving} on {short_title}",
            "Save $10 on Explorer Rocket Set",
            ("saving", "short_title"),
        ),
        (
            BRIEF,
            "{brand} {category}: {point1}",
            "Brickwell Building Sets: glow-in-the-dark stickers",
            ("brand", "category", "point1"),
        ),
        (
            BRIEF,
            "{point3}. {point2}.",
            "482 pieces. Ages 8+.",
            ("point3", "point2"),
        ),  # capitalised at a sentence start
        (BRIEF, "{attr:pieces} pieces", "482 pieces", ("attr:pieces",)),
        (BRIEF, "Plain copy, $39.99 only", "Plain copy, $39.99 only", ()),
        (
            PLAIN,
            "{title}, now {price}",
            "Galaxy Explorer Rocket Set, now $39.99",
            ("title", "price"),
        ),
        (
            ZH,
            "{title}直降{discount_pct}，现价{price}",
            "Galaxy Explorer Rocket Set直降20%，现价¥288.90",
            ("title", "discount_pct", "price"),
        ),
        (
            ZH,
            "人气{category}：{short_title}",
            "人气积木：Explorer Rocket Set",
            ("category", "short_title"),
        ),
    ],
)
def test_frames_are_filled_from_the_item(
    brief: CopyBrief, frame: str, text: str, slots: tuple[str, ...]
) -> None:
    filled = fill_slots(frame, brief)
    assert filled is not None
    assert (filled.text, filled.slots, filled.frame) == (text, slots, frame)


@pytest.mark.parametrize(
    ("brief", "frame", "problem"),
    [
        (PLAIN, "{discount_pct} off {title}", "the item has no {discount_pct}"),
        (PLAIN, "Save {saving}", "the item has no {saving}"),
        (PLAIN, "Was {list_price}", "the item has no {list_price}"),
        (PLAIN, "{brand} quality", "the item has no {brand}"),
        (PLAIN, "{title}: {point2}", "the item has no {point2}"),
        (BRIEF, "{titel} for {price}", "unknown slot {titel}"),
        (BRIEF, "{attr:colour}", "the item has no {attr:colour}"),
        (BRIEF, "{title for {price}", "malformed slot (a stray brace)"),
        (
            dataclasses.replace(BRIEF, list_price=40.5),
            "{discount_pct} off",
            "the item has no {discount_pct}",
        ),
    ],
)
def test_unfillable_frames_say_why(brief: CopyBrief, frame: str, problem: str) -> None:
    result = fill_slots_detailed(frame, brief)
    assert result.filled is None and result.problem == problem
    assert fill_slots(frame, brief) is None


def test_available_slots_follow_the_facts() -> None:
    assert available_slots(BRIEF) == SLOT_NAMES
    assert available_slots(PLAIN) == ("title", "short_title", "category", "price", "point1")
    assert all(t == "{" + n + "}" for t, n in zip(SLOT_TOKENS, SLOT_NAMES, strict=True))
    assert frame_slots("{a} x {title} {attr:k}") == ["a", "title", "attr:k"]


@pytest.mark.parametrize(
    ("brief", "text", "wrong"),
    [
        (BRIEF, "Just $32! {title}", ["$32"]),
        (BRIEF, "{title}: 55% off", ["55%"]),
        (BRIEF, "Only $39.99 for {title}", []),  # the true price typed out is fine
        (BRIEF, "20 percent off {title}", []),
        (BRIEF, "{price}, save {saving}", []),
        (BRIEF, "Ages 8+, 482 pieces", []),  # plain numbers are not prices
        (ZH, "{title}只要99元", ["99元"]),
        (ZH, "{title}限时7折", ["7折"]),
        (ZH, "{title}限时8折", []),
    ],
)
def test_unslotted_amounts_flags_invented_figures(
    brief: CopyBrief, text: str, wrong: list[str]
) -> None:
    assert unslotted_amounts(text, brief) == wrong
