"""The frame of a copy (its wording without the item's facts) and distinct-n."""

from __future__ import annotations

from copyloop.generation.frames import distinct_n, frame_of
from copyloop.generation.prompts import CopyBrief


def brief(title: str, point: str) -> CopyBrief:
    return CopyBrief(
        item_title=title,
        brand="Brickwell",
        category_path=("Toys",),
        price=19.99,
        list_price=None,
        currency="USD",
        selling_points=(point,),
        attributes=(),
        channel="push",
        locale="en-US",
        tone="playful",
    )


def test_copy_that_differs_only_in_its_facts_has_one_frame() -> None:
    a = frame_of("Galaxy Rocket, now $19.99: 420 pieces!", brief("Galaxy Rocket", "420 pieces"))
    b = frame_of("Teddy Bear, now $9.99: soft fur!", brief("Teddy Bear", "soft fur"))
    assert a == b == "{title}, now {n}: {point}!"
    c = frame_of("Meet Teddy Bear today.", brief("Teddy Bear", "soft fur"))
    assert c != a


def test_distinct_n_counts_repeated_bigrams_in_words_and_han_characters() -> None:
    assert distinct_n(["a b c", "d e f"]) == 1.0
    assert distinct_n(["a b a b"]) == 2 / 3
    assert distinct_n(["好玩好玩"]) == 2 / 3
    assert distinct_n([]) == 0.0
