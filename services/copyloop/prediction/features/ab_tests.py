"""A/B test history as the content-effect model learns from it: variants grouped by test.

Only variants of the same group (same test AND same image, for Upworthy) are compared; a pair
says which text won and how sure the test was (two-proportion z statistic).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class ABVariant:
    """One copy variant's outcome in one A/B test group."""

    group_id: str
    text: str
    impressions: int
    clicks: int
    test_id: str = ""  # the experiment; groups of one test share it (defaults to group_id)

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions > 0 else 0.0

    @property
    def experiment(self) -> str:
        return self.test_id or self.group_id


@dataclass(frozen=True)
class VariantPair:
    """Two different texts from one group; `first_wins` is True when `first` had higher CTR."""

    group_id: str
    first: str
    second: str
    first_wins: bool
    z: float

    @property
    def significant(self) -> bool:
        return self.z >= SIGNIFICANT_Z


SIGNIFICANT_Z = 1.96


def two_proportion_z(clicks_a: int, n_a: int, clicks_b: int, n_b: int) -> float:
    """|z| of the pooled two-proportion test; 0 when undefined (no impressions or no variance)."""
    if n_a <= 0 or n_b <= 0:
        return 0.0
    pooled = (clicks_a + clicks_b) / (n_a + n_b)
    variance = pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)
    if variance <= 0:
        return 0.0
    return abs(clicks_a / n_a - clicks_b / n_b) / math.sqrt(variance)


def build_pairs(variants: Sequence[ABVariant]) -> list[VariantPair]:
    """All pairs within each group whose texts differ and whose CTRs differ (ties carry no
    preference). Order inside a pair follows the input order, so the label is balanced."""
    groups: dict[str, list[ABVariant]] = defaultdict(list)
    for variant in variants:
        if variant.impressions > 0:
            groups[variant.group_id].append(variant)
    pairs: list[VariantPair] = []
    for group_id, members in groups.items():
        for a, b in combinations(members, 2):
            if a.text == b.text or a.ctr == b.ctr:
                continue
            z = two_proportion_z(a.clicks, a.impressions, b.clicks, b.impressions)
            pairs.append(VariantPair(group_id, a.text, b.text, a.ctr > b.ctr, z))
    return pairs


def split_by_test(
    variants: Sequence[ABVariant], fraction: float, seed: int
) -> tuple[list[ABVariant], list[ABVariant]]:
    """(first, second): about `fraction` of the tests go to `first`, whole tests only, so no
    story appears on both sides (headlines of one test are near-duplicates)."""
    tests = np.asarray(sorted({v.experiment for v in variants}))
    np.random.default_rng(seed).shuffle(tests)
    chosen = set(tests[: int(len(tests) * fraction)].tolist())
    first = [v for v in variants if v.experiment in chosen]
    second = [v for v in variants if v.experiment not in chosen]
    return first, second


_NON_WORD = re.compile(r"[\W_]+")


def normalise_lede(text: str) -> str:
    """The lede as a story key: Unicode-folded, lower case, punctuation and spacing collapsed,
    so re-runs of a story with re-typed quotes or spacing still link."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def story_of_tests(stories: Mapping[str, Iterable[tuple[str, str]]]) -> dict[str, int]:
    """Story number per test: tests are linked when they share a normalised lede or an image
    (connected components of the test-key graph). `stories` maps a test id to the
    (lede, image) pairs of its rows; an empty lede or image links nothing."""
    tests = sorted(stories)
    keys: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for row, test in enumerate(tests):
        for lede, image in stories[test]:
            for key in (f"lede:{normalise_lede(lede)}" if lede else "", f"image:{image}"):
                if key and key != "image:":
                    rows.append(row)
                    cols.append(len(tests) + keys.setdefault(key, len(keys)))
    size = len(tests) + len(keys)
    graph = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    return {test: int(labels[row]) for row, test in enumerate(tests)}


def split_by_story(
    variants: Sequence[ABVariant],
    fraction: float,
    seed: int,
    stories: Mapping[str, Iterable[tuple[str, str]]],
) -> tuple[list[ABVariant], list[ABVariant]]:
    """(first, second) with whole stories on each side: `split_by_test` leaves re-runs of one
    story (same lede or same image, different test id) on both sides, so a model can be scored
    on headlines it was trained on. Stories are shuffled and taken into `first` until about
    `fraction` of the tests are there. `stories` maps a test id to its (lede, image) pairs;
    a test missing from it is a story of its own."""
    tests = sorted({v.experiment for v in variants})
    story = story_of_tests({t: stories.get(t, ()) for t in tests})
    members: dict[int, list[str]] = defaultdict(list)
    for test in tests:
        members[story[test]].append(test)
    order = np.asarray(sorted(members))
    np.random.default_rng(seed).shuffle(order)
    target = int(len(tests) * fraction)
    chosen: set[str] = set()
    for label in order.tolist():
        if len(chosen) >= target:
            break
        chosen.update(members[label])
    first = [v for v in variants if v.experiment in chosen]
    second = [v for v in variants if v.experiment not in chosen]
    return first, second
