"""The copywriter's own words must be words: glued sub-word pieces are rejected, facts in slots
(invented brand names, titles) and other locales are never read."""

from __future__ import annotations

import pytest

from copyloop.generation.compliance import CopyConstraints
from copyloop.generation.fluency import non_words
from copyloop.generation.pipeline import RawOutput, process_variants
from copyloop.generation.prompts.brief import CopyBrief


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("What'sing made: {title} can feel new.", ["What'sing"]),
        ("{title}: built for the trail, now {price}.", []),
        ("Meet {title} by {brand}. It's a must-have, isn't it?", []),
        ("Grab the {title} today—your kiddos will love it!", []),
        ("Zorblex quality for {price}.", ["Zorblex"]),
        ("Now {title} is whatly yours.", ["whatly"]),
        ("Ready, set, grow: {title}.", []),
        ("{title} is here. #giftideas #madetolast", []),  # tags are not words
        ("{title} by Glowlab, now {price}.", ["Glowlab"]),  # a name typed outside a slot
        ("限时好价：{title} 仅需 {price}。", []),  # zh frames are not read here
        # Slips a frequency floor misses: a possessive on an article, a letter pair outside
        # the closed class of short words, rare words one edit from common ones.
        ("The's new in every day. Only {title}!", ["The's"]),
        ("Th coming back to your radar: {title}.", ["Th"]),
        ("Sime to grab {title}. Go on.", ["Sime"]),
        ("Surry: {title} every day easier.", ["Surry"]),
        ("Yor new fave: {title}.", ["Yor"]),
        # Rare but chosen words stay words.
        ("Meet {title}, a crowd pleaser!", []),
        ("Artisanal, handcrafted and moisturizing: {title}.", []),
        ("Comfy, stylish, rechargeable {title} for your kiddos. It's ok, go on.", []),
    ],
)
def test_non_words_in_a_frame(frame: str, expected: list[str]) -> None:
    locale = "zh-CN" if "限时" in frame else "en-US"
    assert non_words(frame, locale) == expected


def _brief() -> CopyBrief:
    return CopyBrief(
        item_title="Trail Bike Helmet",
        brand="Glowlab",
        category_path=("sports",),
        price=24.49,
        list_price=None,
        currency="USD",
        selling_points=("vented shell",),
        attributes=(),
        channel="push",
        locale="en-US",
        tone="friendly",
    )


def test_the_pipeline_rejects_glued_words_and_keeps_the_readable_line() -> None:
    result = process_variants(
        _brief(),
        CopyConstraints(),
        [
            RawOutput("What'sing made: {title} can feel new."),
            RawOutput("{title}: a {point1} that keeps you cool."),
        ],
    )
    assert [v.text for v in result.variants] == [
        "Trail Bike Helmet: a vented shell that keeps you cool."
    ]
    (rejected,) = result.rejected
    assert rejected.reasons[0].rule == "fluency"
    assert "What'sing" in rejected.reasons[0].detail
