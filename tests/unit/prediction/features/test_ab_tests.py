"""A/B test history: the z statistic, comparable pairs, splitting by whole tests."""

from __future__ import annotations

import pytest

from copyloop.prediction.features.ab_tests import (
    ABVariant,
    build_pairs,
    split_by_test,
    two_proportion_z,
)


def test_two_proportion_z_known_value() -> None:
    # 100/1000 vs 150/1000: pooled p = 0.125, se = sqrt(.125*.875*.002) = 0.014790, z = 3.3806
    assert two_proportion_z(100, 1000, 150, 1000) == pytest.approx(3.3806, abs=1e-3)
    assert two_proportion_z(0, 0, 5, 100) == 0.0


def test_pairs_only_within_a_group_with_different_text_and_ctr() -> None:
    variants = [
        ABVariant("g1", "a", 1000, 10),
        ABVariant("g1", "b", 1000, 20),
        ABVariant("g1", "a", 1000, 30),  # same text as the first: not a text comparison
        ABVariant("g1", "c", 1000, 20),  # same CTR as "b": a tie carries no preference
        ABVariant("g2", "d", 1000, 50),  # another group: never compared with g1
    ]
    pairs = build_pairs(variants)
    assert [(p.first, p.second, p.first_wins) for p in pairs] == [
        ("a", "b", False),  # 1% vs 2%
        ("a", "c", False),  # 1% vs 2%
        ("b", "a", False),  # 2% vs 3%
        ("a", "c", True),  # 3% vs 2%
    ]
    assert all(p.group_id == "g1" for p in pairs)


def test_split_by_test_keeps_tests_whole() -> None:
    variants = [  # 40 tests, each with two images (groups) of two headlines
        ABVariant(f"t{test}/img{image}", f"headline {test}.{image}.{v}", 1000, 10 + v, f"t{test}")
        for test in range(40)
        for image in range(2)
        for v in range(2)
    ]
    first, second = split_by_test(variants, 0.5, seed=3)
    assert {v.test_id for v in first}.isdisjoint({v.test_id for v in second})
    assert len({v.test_id for v in first}) == 20
    again, _ = split_by_test(variants, 0.5, seed=3)
    assert again == first
