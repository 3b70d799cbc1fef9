"""A/B test history as the content-effect model learns from it: variants grouped by test.

Only variants of the same group (same test AND same image, for Upworthy) are compared; a pair
says which text won and how sure the test was (two-proportion z statistic).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np


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
