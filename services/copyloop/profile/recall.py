"""Candidate recall: blends the user's affinity, item popularity and recency of interest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from copyloop.profile.profiles import ProfileView


@dataclass(frozen=True)
class RecallWeights:
    affinity: float = 0.6
    popularity: float = 0.3
    recency: float = 0.1


@dataclass(frozen=True)
class Candidate:
    item_id: str
    top_category: str
    leaf_category: str
    brand: str
    popularity: float  # decayed engagement as of now, >= 0


@dataclass(frozen=True)
class ScoredCandidate:
    item_id: str
    score: float
    affinity: float
    popularity: float
    recency: float
    reasons: tuple[str, ...]


def rank_candidates(
    profile: ProfileView,
    candidates: Sequence[Candidate],
    recent_leaf_categories: set[str],
    recent_brands: set[str],
    k: int,
    weights: RecallWeights = RecallWeights(),
) -> list[ScoredCandidate]:
    """Scores every candidate and keeps the best k (ties broken by item id, deterministic)."""
    category_share = {a.key: a.share for a in profile.categories}
    brand_share = {a.key: a.share for a in profile.brands}
    top_popularity = max((c.popularity for c in candidates), default=0.0) or 1.0
    scored = []
    for c in candidates:
        reasons: list[str] = []
        affinity = 0.0
        if not profile.cold_start:
            cat = category_share.get(c.top_category, 0.0)
            brand = brand_share.get(c.brand, 0.0)
            affinity = min(1.0, cat + 0.5 * brand)
            if cat >= 0.15:
                reasons.append(f"category:{c.top_category}")
            if brand >= 0.15:
                reasons.append(f"brand:{c.brand}")
        popularity = c.popularity / top_popularity
        if popularity >= 0.5:
            reasons.append("popular")
        recency = 0.0
        if c.leaf_category and c.leaf_category in recent_leaf_categories:
            recency += 0.7
        if c.brand and c.brand in recent_brands:
            recency += 0.3
        if recency:
            reasons.append("recently_viewed_similar")
        if profile.cold_start:
            score = popularity
        else:
            score = (
                weights.affinity * affinity
                + weights.popularity * popularity
                + weights.recency * recency
            )
        scored.append(
            ScoredCandidate(c.item_id, score, affinity, popularity, recency, tuple(reasons))
        )
    scored.sort(key=lambda s: (-s.score, s.item_id))
    return scored[:k]
