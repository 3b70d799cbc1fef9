"""A/B test history: the z statistic, comparable pairs, splitting by whole tests."""

from __future__ import annotations

import pytest

from copyloop.prediction.features.ab_tests import (
    ABVariant,
    build_pairs,
    normalise_lede,
    split_by_story,
    split_by_test,
    story_of_tests,
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


def test_normalise_lede_ignores_case_quotes_and_spacing() -> None:
    assert normalise_lede("  Why *THIS* matters:\u00a0a “story”. ") == "why this matters a story"
    assert normalise_lede("Why this matters, a story") == "why this matters a story"


def test_story_of_tests_links_by_lede_or_image_transitively() -> None:
    stories = {
        "t1": [("A dog saved a town.", "img1")],
        "t2": [("a dog   saved a TOWN", "img2")],  # same lede as t1, another image
        "t3": [("Something else", "img2"), ("", "img3")],  # shares img2 with t2
        "t4": [("", "img4")],  # an empty lede links nothing
        "t5": [("", "img5")],
        "t6": [("Unrelated", "")],  # nor does a missing image
        "t7": [("Other", "")],
    }
    story = story_of_tests(stories)
    assert story["t1"] == story["t2"] == story["t3"]
    assert len({story[t] for t in ("t1", "t4", "t5", "t6", "t7")}) == 5


def test_split_by_story_keeps_reruns_of_a_story_on_one_side() -> None:
    variants = []
    stories: dict[str, list[tuple[str, str]]] = {}
    for story in range(30):  # 30 stories, each re-run as three tests: same lede or same image
        for run in range(3):
            test = f"s{story}r{run}"
            image = f"img{story}" if run < 2 else f"img{story}b"
            stories[test] = [(f"Lede of story {story}" if run != 1 else f"other {test}", image)]
            variants += [
                ABVariant(f"{test}/{image}", f"headline {test} {v}", 1000, 10 + v, test)
                for v in range(2)
            ]
    # run 2 shares only the lede with run 0, run 1 only the image: a split by test id alone
    # leaves most stories on both sides, the story split none
    first, second = split_by_story(variants, 0.5, seed=3, stories=stories)
    story_of = {t: t.split("r")[0] for t in stories}
    first_stories = {story_of[v.experiment] for v in first}
    assert first_stories.isdisjoint({story_of[v.experiment] for v in second})
    assert len(first_stories) == 15
    assert len(first) + len(second) == len(variants)
    by_test, rest = split_by_test(variants, 0.5, seed=3)
    assert not {story_of[v.experiment] for v in by_test}.isdisjoint(
        {story_of[v.experiment] for v in rest}
    )
    again, _ = split_by_story(variants, 0.5, seed=3, stories=stories)
    assert again == first
    other, _ = split_by_story(variants, 0.5, seed=4, stories=stories)
    assert other != first


def test_split_by_story_treats_unmapped_tests_as_their_own_story() -> None:
    variants = [ABVariant(f"t{i}/img", f"h{i}", 100, 1, f"t{i}") for i in range(10)]
    first, second = split_by_story(variants, 0.3, seed=0, stories={})
    assert len(first) == 3 and len(second) == 7
