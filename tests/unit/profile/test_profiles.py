"""copyloop.profile.profiles: profile maintenance (decayed affinities, price band, RFM figures)
without gRPC or a database."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from copyloop.profile.profiles import (
    DAY_S,
    EventIn,
    ItemFacts,
    PriceBands,
    ProfileState,
    apply_event,
    apply_events,
    view_profile,
)

HL = 7 * DAY_S
TOY = ItemFacts("toy", "Toys", "Brickwell", 15.0, discounted=True)
BOOK = ItemFacts("book", "Books", "Pagely", 40.0, discounted=False)
FACTS = {"toy": TOY, "book": BOOK}


def ev(n: int, kind: str, item: str, t: float) -> EventIn:
    return EventIn(f"e{n}", "u", kind, item, t)


def build(events: list[EventIn]) -> ProfileState:
    state = ProfileState()
    for e in events:
        apply_event(state, e, FACTS.get(e.item_id), HL)
    return state


def test_affinity_decays_with_half_life() -> None:
    state = build([ev(1, "view", "toy", 0.0), ev(2, "view", "book", HL)])
    view = view_profile("u", state, HL, HL, PriceBands())
    scores = {a.key: a.score for a in view.categories}
    assert scores["Books"] == pytest.approx(1.0)
    assert scores["Toys"] == pytest.approx(0.5)  # one half-life older
    later = view_profile("u", state, 2 * HL, HL, PriceBands())
    assert {a.key: a.score for a in later.categories}["Books"] == pytest.approx(0.5)


def test_result_does_not_depend_on_arrival_order() -> None:
    events = [
        ev(1, "view", "toy", 0.0),
        ev(2, "purchase", "book", 2 * DAY_S),
        ev(3, "click", "toy", 5 * DAY_S),
        ev(4, "add_to_cart", "book", 9 * DAY_S),
    ]
    reference = view_profile("u", build(events), 10 * DAY_S, HL, PriceBands())
    for order in itertools.permutations(events):
        view = view_profile("u", build(list(order)), 10 * DAY_S, HL, PriceBands())
        assert [(a.key, round(a.score, 9)) for a in view.categories] == [
            (a.key, round(a.score, 9)) for a in reference.categories
        ]
        assert view.mean_engaged_price == pytest.approx(reference.mean_engaged_price)
        assert view.state.recent_item_ids == reference.state.recent_item_ids


def test_weights_price_band_monetary_and_frequency() -> None:
    state = build(
        [
            ev(1, "view", "book", 0.0),
            EventIn("p", "u", "purchase", "toy", 1.0, quantity=3, price=10.0),
            ev(3, "impression", "book", 2.0),
        ]
    )
    view = view_profile("u", state, 3.0, HL, PriceBands())
    shares = {a.key: a.share for a in view.categories}
    assert shares["Toys"] == pytest.approx(8 / 9)  # purchase weighs 8, a view 1, impressions 0
    assert state.monetary_total == pytest.approx(30.0)
    assert state.impression_count == 1 and state.discounted_purchase_count == 1
    assert view.frequency_30d == 2  # impressions are exposure, not activity
    assert view.price_band == "budget"  # (40*1 + 10*8) / 9 = 13.3


def test_frequency_counts_only_last_30_days() -> None:
    state = build([ev(n, "view", "toy", n * DAY_S) for n in range(40)])
    assert view_profile("u", state, 39 * DAY_S, HL, PriceBands()).frequency_30d == 30
    assert view_profile("u", state, 60 * DAY_S, HL, PriceBands()).frequency_30d == 9


def test_cold_start_view() -> None:
    view = view_profile("nobody", None, 0.0, HL, PriceBands())
    assert view.cold_start and view.categories == [] and view.price_band == ""


def mixed_events(n: int, seed: int) -> list[EventIn]:
    """Events of every kind over 70 days, with purchases at odd prices (zero, huge, NaN)."""
    rng = random.Random(seed)
    kinds = ["view", "click", "add_to_cart", "purchase", "impression", "search"]
    return [
        EventIn(
            f"e{i}",
            "u",
            kind := rng.choice(kinds),
            "" if kind == "search" else rng.choice(["toy", "book", "gone"]),
            rng.choice([0.0, 1.0, 1.0]) + rng.randrange(70) * DAY_S + rng.random(),
            rng.choice([0, 1, 3]),
            rng.choice([0.0, 9.5, 2e12, math.nan]),
        )
        for i in range(n)
    ]


def test_folding_a_users_events_at_once_equals_one_at_a_time() -> None:
    for seed in range(5):
        events = mixed_events(300, seed)
        one_by_one = build(events)
        at_once = ProfileState()
        apply_events(at_once, [(e, FACTS.get(e.item_id)) for e in events], HL)
        assert at_once.to_json() == one_by_one.to_json()
        # In two goes from a stored state, as ingest does batch after batch.
        split = ProfileState()
        apply_events(split, [(e, FACTS.get(e.item_id)) for e in events[:120]], HL)
        split = ProfileState.from_json(json.loads(json.dumps(split.to_json())))
        apply_events(split, [(e, FACTS.get(e.item_id)) for e in events[120:]], HL)
        assert split.to_json() == one_by_one.to_json()


def test_daily_counts_keep_the_same_30_days_whatever_the_order() -> None:
    # A view 40 days before an impression: in time order the impression moves the window past
    # the view's day; arriving first, it leaves the late view outside. Either way: no view day.
    view, impression = ev(1, "view", "toy", 0.0), ev(2, "impression", "toy", 40 * DAY_S)
    assert build([view, impression]).daily_counts == {}
    assert build([impression, view]).daily_counts == {}
    events = mixed_events(200, seed=11)
    reference = build(sorted(events, key=lambda e: e.event_time))
    newest_day = int(reference.last_time // DAY_S)
    assert reference.daily_counts and all(
        newest_day - int(day) < 30 for day in reference.daily_counts
    )
    for seed in range(5):
        shuffled = random.Random(seed).sample(events, len(events))
        state = build(shuffled)
        assert state.daily_counts == reference.daily_counts
        assert state.event_count == reference.event_count
        assert state.categories == pytest.approx(reference.categories)
