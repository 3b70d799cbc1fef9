"""Objective switches, business rules and MMR diversity."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from copyloop.fusion.ranking import (
    RankCandidate,
    RankingConfig,
    objective_value,
    rank,
    similarity,
)


def cand(
    item_id: str,
    cat: str = "Toys",
    brand: str = "",
    price: float = 10.0,
    in_stock: bool = True,
    p_ctr: float = 0.05,
    p_cvr: float = 0.05,
) -> RankCandidate:
    return RankCandidate(item_id, cat, brand, price, in_stock, p_ctr, p_cvr)


# clicky: high CTR, low CVR; buyer: fewer clicks that convert;
# pricey: converts rarely but costs a lot
THREE = [
    cand("clicky", cat="A", p_ctr=0.10, p_cvr=0.01, price=10.0),
    cand("buyer", cat="B", p_ctr=0.05, p_cvr=0.05, price=10.0),
    cand("pricey", cat="C", p_ctr=0.04, p_cvr=0.03, price=200.0),
]


def order(items: list) -> list[str]:
    return [r.item_id for r in items]


def test_objective_switch_changes_the_order() -> None:
    pure = dict(diversity_lambda=1.0)
    assert order(rank(THREE, 3, RankingConfig("ctr", **pure))) == ["clicky", "buyer", "pricey"]
    assert order(rank(THREE, 3, RankingConfig("ctcvr", **pure))) == ["buyer", "pricey", "clicky"]
    assert order(rank(THREE, 3, RankingConfig("expected_value", **pure))) == [
        "pricey",
        "buyer",
        "clicky",
    ]


def test_objective_values_and_margins_per_category() -> None:
    c = cand("x", cat="Electronics", price=100.0, p_ctr=0.1, p_cvr=0.2)
    assert objective_value(c, RankingConfig("ctr")) == pytest.approx(0.1)
    assert objective_value(c, RankingConfig("ctcvr")) == pytest.approx(0.02)
    assert objective_value(c, RankingConfig("expected_value")) == pytest.approx(
        2.0
    )  # default margin 1
    margins = RankingConfig(
        "expected_value", margin_by_category={"Electronics": 0.1}, default_margin=0.5
    )
    assert objective_value(c, margins) == pytest.approx(0.2)
    assert objective_value(
        cand("y", cat="Toys", price=100.0, p_ctr=0.1, p_cvr=0.2), margins
    ) == pytest.approx(1.0)
    # a low-margin category can lose to a cheaper item with a fat margin
    cheap = cand("cheap", cat="Toys", price=40.0, p_ctr=0.1, p_cvr=0.2)
    by_margin = RankingConfig(
        "expected_value",
        diversity_lambda=1.0,
        margin_by_category={"Electronics": 0.1},
        default_margin=0.5,
    )
    assert order(rank([c, cheap], 2, by_margin)) == ["cheap", "x"]
    with pytest.raises(ValueError):
        RankingConfig("revenue")


def test_rules_drop_out_of_stock_excluded_and_duplicates() -> None:
    items = [
        cand("a", p_ctr=0.3),
        cand("b", p_ctr=0.2, in_stock=False),
        cand("c", p_ctr=0.1),
        cand("a", p_ctr=0.9),
        cand("d", p_ctr=0.05),
    ]
    ranked = rank(items, 10, RankingConfig("ctr", diversity_lambda=1.0), excluded_ids={"c"})
    assert order(ranked) == ["a", "d"]
    assert ranked[0].objective_value == pytest.approx(0.3)  # the first of duplicate ids is kept
    allowed = rank(items, 10, RankingConfig("ctr", diversity_lambda=1.0, allow_out_of_stock=True))
    assert order(allowed) == ["a", "b", "c", "d"]
    assert [r.rank for r in allowed] == [1, 2, 3, 4]


def test_lambda_one_is_pure_relevance_even_within_one_category() -> None:
    items = [cand(f"t{i}", cat="Toys", p_ctr=0.2 - 0.01 * i) for i in range(5)]
    items += [cand(f"b{i}", cat="Books", p_ctr=0.1 - 0.01 * i) for i in range(5)]
    ranked = rank(items, 5, RankingConfig("ctr", diversity_lambda=1.0))
    assert order(ranked) == ["t0", "t1", "t2", "t3", "t4"]
    values = [
        r.objective_value for r in rank(items, 10, RankingConfig("ctr", diversity_lambda=1.0))
    ]
    assert values == sorted(values, reverse=True)


def test_mmr_spreads_categories_when_relevance_is_close() -> None:
    cats = ["Toys", "Books", "Beauty", "Grocery"]
    # Toys items are slightly better, so pure relevance would fill the top 4 with Toys
    items = [
        cand(f"{c}-{i}", cat=c, p_ctr=0.10 - 0.001 * i - (0.0 if c == "Toys" else 0.005))
        for c in cats
        for i in range(6)
    ]
    by_relevance = rank(items, 4, RankingConfig("ctr", diversity_lambda=1.0))
    assert Counter(r.candidate.top_category for r in by_relevance) == {"Toys": 4}
    diverse = rank(items, 8, RankingConfig("ctr", diversity_lambda=0.7))
    top4 = Counter(r.candidate.top_category for r in diverse[:4])
    assert set(top4) == set(cats)
    assert diverse[0].item_id == "Toys-0"  # the most relevant item still leads
    # once every category is shown, max-similarity saturates and relevance decides again
    rest = [r.objective_value for r in diverse[4:]]
    assert rest == sorted(rest, reverse=True) and [r.item_id for r in diverse[4:6]] == [
        "Toys-1",
        "Toys-2",
    ]


def test_relevance_dominates_when_the_gap_is_large() -> None:
    items = [cand(f"t{i}", cat="Toys", p_ctr=0.20) for i in range(3)] + [
        cand("book", cat="Books", p_ctr=0.01)
    ]
    ranked = rank(items, 3, RankingConfig("ctr", diversity_lambda=0.7))
    # 0.7 * 1.0 - 0.3 * 1.0 = 0.4 beats 0.7 * 0.05 for the weak book
    assert order(ranked) == ["t0", "t1", "t2"]


def test_brand_similarity_counts_half() -> None:
    a = cand("a", cat="Toys", brand="Acme")
    assert similarity(a, cand("b", cat="Toys", brand="Other")) == 1.0
    assert similarity(a, cand("c", cat="Books", brand="Acme")) == 0.5
    assert similarity(a, cand("d", cat="Books", brand="Other")) == 0.0
    assert similarity(cand("e", cat="", brand=""), cand("f", cat="", brand="")) == 0.0
    # with equal relevance, a different brand in another category beats the same brand
    items = [
        a,
        cand("same-brand", cat="Books", brand="Acme"),
        cand("fresh", cat="Beauty", brand="Zed"),
    ]
    assert order(rank(items, 3, RankingConfig("ctr", diversity_lambda=0.5))) == [
        "a",
        "fresh",
        "same-brand",
    ]


def test_input_validation() -> None:
    with pytest.raises(ValueError):
        rank([cand("x", p_ctr=1.5)], 1)
    with pytest.raises(ValueError):
        rank([cand("x", price=float("nan"))], 1)
    with pytest.raises(ValueError):
        rank([cand("x")], 0)
    with pytest.raises(ValueError):
        RankingConfig(diversity_lambda=1.2)
    assert rank([], 5) == []
    assert rank([cand("x", p_ctr=0.0, p_cvr=0.0)], 1)[0].objective_value == 0.0


def _reference_mmr(pool: list[RankCandidate], n: int, lam: float) -> list[str]:
    """Textbook MMR with the scalar similarity, to check the vectorised version against."""
    values = [c.p_ctr for c in pool]
    top = max(values)
    picked: list[RankCandidate] = []
    remaining = list(pool)
    while remaining and len(picked) < n:

        def score(c: RankCandidate) -> tuple[float, float]:
            penalty = max((similarity(c, p) for p in picked), default=0.0)
            return lam * c.p_ctr / top - (1 - lam) * penalty, c.p_ctr / top

        best = max(remaining, key=score)
        remaining.remove(best)
        picked.append(best)
    return [c.item_id for c in picked]


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
def test_vectorised_mmr_matches_the_textbook_definition(lam: float) -> None:
    rng = random.Random(int(lam * 10))
    pool = [
        cand(
            f"i{i}",
            cat=rng.choice(["A", "B", "C", ""]),
            brand=rng.choice(["x", "y", "z", ""]),
            p_ctr=round(rng.random() * 0.2, 3),
        )
        for i in range(60)
    ]
    assert order(rank(pool, 25, RankingConfig("ctr", diversity_lambda=lam))) == _reference_mmr(
        pool, 25, lam
    )
