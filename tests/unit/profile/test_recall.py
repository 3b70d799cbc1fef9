"""copyloop.profile.recall: candidates ranked by affinity, popularity and recent interest."""

from __future__ import annotations

from copyloop.profile.profiles import (
    DAY_S,
    EventIn,
    ItemFacts,
    PriceBands,
    ProfileState,
    apply_event,
    view_profile,
)
from copyloop.profile.recall import Candidate, rank_candidates

HL = 7 * DAY_S
BOOK = ItemFacts("book", "Books", "Pagely", 40.0, discounted=False)


def test_recall_blends_affinity_popularity_and_recent_interest() -> None:
    state = ProfileState()
    apply_event(state, EventIn("e1", "u", "purchase", "book", 0.0), BOOK, HL)
    view = view_profile("u", state, 1.0, HL, PriceBands())
    candidates = [
        Candidate("b1", "Books", "Novels", "Other", popularity=1.0),
        Candidate("t1", "Toys", "Blocks", "Brickwell", popularity=100.0),
        Candidate("b2", "Books", "Cookbooks", "Pagely", popularity=0.0),
    ]
    ranked = rank_candidates(view, candidates, {"Cookbooks"}, {"Pagely"}, k=3)
    assert [r.item_id for r in ranked] == ["b2", "b1", "t1"]
    assert "recently_viewed_similar" in ranked[0].reasons and "popular" in ranked[2].reasons
    cold = rank_candidates(
        view_profile("x", None, 0, HL, PriceBands()), candidates, set(), set(), k=2
    )
    assert [r.item_id for r in cold] == ["t1", "b1"]
