"""Ranking items by a business objective, with rules and category diversity (MMR).

The objective decides what "best" means for the shop: clicks (pCTR), orders (pCTR x pCVR),
or money (pCTR x pCVR x price x margin weight). Maximal marginal relevance then keeps the
top n from being ten near-identical items: each pick maximises
`lambda * relevance - (1 - lambda) * max similarity to what is already picked`, where
relevance is the objective scaled by the best candidate's value (so it shares the [0, 1]
scale of the similarity) and similarity is 1.0 for the same top category, 0.5 for the same
brand, else 0. lambda = 1 is pure relevance order.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

__all__ = [
    "Objective",
    "RankCandidate",
    "RankedItem",
    "RankingConfig",
    "objective_value",
    "rank",
    "similarity",
]


class Objective(StrEnum):
    CTR = "ctr"
    CTCVR = "ctcvr"
    EXPECTED_VALUE = "expected_value"


@dataclass(frozen=True)
class RankCandidate:
    """An item with its predictions, as ranking sees it."""

    item_id: str
    top_category: str
    brand: str
    price: float
    in_stock: bool
    p_ctr: float
    p_cvr: float


@dataclass(frozen=True)
class RankingConfig:
    """How to rank; `margin_by_category` maps a top category to its margin weight."""

    objective: Objective | str = Objective.CTCVR
    diversity_lambda: float = 0.7
    margin_by_category: Mapping[str, float] = field(default_factory=dict)
    default_margin: float = 1.0
    allow_out_of_stock: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "objective", Objective(self.objective))
        if not 0.0 <= self.diversity_lambda <= 1.0:
            raise ValueError(f"diversity_lambda must be in [0, 1], got {self.diversity_lambda}")
        margins = [self.default_margin, *self.margin_by_category.values()]
        if any(not (math.isfinite(m) and m >= 0) for m in margins):
            raise ValueError("margin weights must be finite and >= 0")


@dataclass(frozen=True)
class RankedItem:
    """One ranked item: 1-based rank, the objective's value, and the MMR score it won with."""

    rank: int
    item_id: str
    objective_value: float
    mmr_score: float
    candidate: RankCandidate


def _check(candidate: RankCandidate) -> None:
    for name in ("p_ctr", "p_cvr"):
        value = getattr(candidate, name)
        if not (0.0 <= value <= 1.0):
            raise ValueError(f"{candidate.item_id}: {name} must be in [0, 1], got {value}")
    if not (math.isfinite(candidate.price) and candidate.price >= 0):
        raise ValueError(f"{candidate.item_id}: price must be finite, >= 0, got {candidate.price}")


def objective_value(candidate: RankCandidate, config: RankingConfig) -> float:
    """The candidate's worth under the configured objective."""
    match config.objective:
        case Objective.CTR:
            return candidate.p_ctr
        case Objective.CTCVR:
            return candidate.p_ctr * candidate.p_cvr
        case Objective.EXPECTED_VALUE:
            margin = config.margin_by_category.get(candidate.top_category, config.default_margin)
            return candidate.p_ctr * candidate.p_cvr * candidate.price * margin
    raise AssertionError(f"unhandled objective {config.objective}")  # pragma: no cover


def similarity(a: RankCandidate, b: RankCandidate) -> float:
    """1.0 same top category, 0.5 same brand, else 0; empty fields never match."""
    if a.top_category and a.top_category == b.top_category:
        return 1.0
    if a.brand and a.brand == b.brand:
        return 0.5
    return 0.0


def _eligible(
    candidates: Sequence[RankCandidate], config: RankingConfig, excluded_ids: Collection[str]
) -> list[RankCandidate]:
    """Business rules: no excluded ids, no out-of-stock unless allowed, first of duplicates."""
    excluded = set(excluded_ids)
    seen: set[str] = set()
    kept = []
    for c in candidates:
        _check(c)
        if c.item_id in excluded or c.item_id in seen:
            continue
        if not c.in_stock and not config.allow_out_of_stock:
            continue
        seen.add(c.item_id)
        kept.append(c)
    return kept


def rank(
    candidates: Sequence[RankCandidate],
    n: int,
    config: RankingConfig = RankingConfig(),
    excluded_ids: Collection[str] = (),
) -> list[RankedItem]:
    """The top n eligible candidates in MMR order (ties keep the input order)."""
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    pool = _eligible(candidates, config, excluded_ids)
    values = np.array([objective_value(c, config) for c in pool], dtype=np.float64)
    scale = values.max(initial=0.0)
    relevance = values / scale if scale > 0 else np.zeros_like(values)
    # Similarity to a pick, vectorised: integer codes per category / brand, -1 for "unknown".
    categories = _codes([c.top_category for c in pool])
    brands = _codes([c.brand for c in pool])
    lam = config.diversity_lambda
    max_sim = np.zeros(len(pool))
    available = np.ones(len(pool), dtype=bool)
    ranked: list[RankedItem] = []
    while available.any() and len(ranked) < n:
        scores = np.where(available, lam * relevance - (1.0 - lam) * max_sim, -np.inf)
        tied = np.flatnonzero(scores == scores.max())
        best = int(tied[np.argmax(relevance[tied])])  # argmax keeps the first of equals
        available[best] = False
        ranked.append(
            RankedItem(
                rank=len(ranked) + 1,
                item_id=pool[best].item_id,
                objective_value=float(values[best]),
                mmr_score=float(scores[best]),
                candidate=pool[best],
            )
        )
        same_category = (categories == categories[best]) & (categories >= 0)
        same_brand = (brands == brands[best]) & (brands >= 0)
        sim = np.where(same_category, 1.0, np.where(same_brand, 0.5, 0.0))
        np.maximum(max_sim, sim, out=max_sim)
    return ranked


def _codes(values: Sequence[str]) -> npt.NDArray[np.int64]:
    """Integer code per distinct non-empty value; -1 for empty, which matches nothing."""
    index: dict[str, int] = {}
    return np.array([index.setdefault(v, len(index)) if v else -1 for v in values], dtype=np.int64)
