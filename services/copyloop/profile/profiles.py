"""Incremental user profiles: each event updates a small state, so reads never scan events.

Affinities decay exponentially. Scores are stored as of a reference time; a newer event first
decays everything to its own time, an older (late) event is added already decayed, so the
result does not depend on arrival order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

DAY_S = 86_400.0
# Sums a profile keeps stay finite whatever arrives: a NaN or infinite total breaks every
# reader (JSON on PostgreSQL, training features, segment rules) for good. 1e12 is beyond any
# real shopper's spend and far from overflow.
MAX_TOTAL = 1e12
RECENT_ITEMS = 20
FREQUENCY_DAYS = 30

# How much each kind of event says about interest.
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "add_to_cart": 4.0,
    "purchase": 8.0,
    "impression": 0.0,  # exposure, not interest
    "search": 0.0,
}
INTEREST_TYPES = frozenset(t for t, w in EVENT_WEIGHTS.items() if w > 0)


@dataclass(frozen=True)
class ItemFacts:
    """What the profile needs to know of an item an event refers to."""

    item_id: str
    top_category: str
    brand: str
    price: float
    discounted: bool


class EventIn(NamedTuple):
    """A validated event, ready to apply and store. Immutable; a named tuple rather than a
    frozen dataclass because ingest builds one per event (a frozen dataclass's __init__ costs
    several times more) and stores it as a plain row (the tenant, then these fields)."""

    event_id: str
    user_id: str
    type: str
    item_id: str
    event_time: float
    quantity: int = 1
    price: float = 0.0
    query: str = ""
    request_id: str = ""
    creative_id: str = ""
    channel: str = ""


@dataclass
class ProfileState:
    """The stored, incrementally maintained part of a profile (JSON in the database)."""

    ref_time: float = 0.0
    categories: dict[str, float] = field(default_factory=dict)
    brands: dict[str, float] = field(default_factory=dict)
    price_weighted_sum: float = 0.0
    price_weight: float = 0.0
    first_time: float = 0.0
    last_time: float = 0.0
    event_count: int = 0
    view_count: int = 0
    click_count: int = 0
    cart_count: int = 0
    impression_count: int = 0
    purchase_count: int = 0
    discounted_purchase_count: int = 0
    monetary_total: float = 0.0
    daily_counts: dict[str, int] = field(default_factory=dict)  # epoch day -> events
    recent_item_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """What `asdict` gives (copies of the tables, not views of them), without its generic
        recursive deep copy: every ingest batch serialises each touched profile."""
        out = dict(self.__dict__)
        for name in ("categories", "brands", "daily_counts"):
            out[name] = dict(out[name])
        out["recent_item_ids"] = list(out["recent_item_ids"])
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProfileState:
        state = cls(**data)
        # A row written before totals were bounded may hold inf or NaN; it heals on read.
        for name in ("monetary_total", "price_weighted_sum", "price_weight"):
            setattr(state, name, _bounded(getattr(state, name)))
        return state


def decay_factor(from_time: float, to_time: float, half_life_s: float) -> float:
    return math.pow(0.5, max(0.0, to_time - from_time) / half_life_s)


def apply_event(
    state: ProfileState, event: EventIn, item: ItemFacts | None, half_life_s: float
) -> None:
    """Folds one event into the state (mutates it)."""
    apply_events(state, ((event, item),), half_life_s)


def apply_events(
    state: ProfileState,
    events: Iterable[tuple[EventIn, ItemFacts | None]],
    half_life_s: float,
) -> None:
    """Folds one user's events into the state in the given order (mutates it): the fold of
    `apply_event` for each, with the state's figures kept in local variables across the loop,
    since ingest runs it for every event (attribute traffic was most of its cost)."""
    ref_time, last_time, first_time = state.ref_time, state.last_time, state.first_time
    categories, brands = state.categories, state.brands
    weighted_sum, weight_total = state.price_weighted_sum, state.price_weight
    event_count, view_count, click_count = state.event_count, state.view_count, state.click_count
    cart_count, impression_count = state.cart_count, state.impression_count
    purchase_count, discounted = state.purchase_count, state.discounted_purchase_count
    monetary_total = state.monetary_total
    daily, recent = state.daily_counts, state.recent_item_ids
    for event, item in events:
        _, _, kind, _, t, quantity, event_price, _, _, _, _ = event
        is_newest = t >= last_time
        event_count += 1
        if not first_time or t < first_time:
            first_time = t
        old_newest_day = int(last_time // DAY_S)
        if is_newest:
            last_time = t
        newest_day = int(last_time // DAY_S)
        stale = False
        if kind != "impression":
            day = int(t // DAY_S)
            key = str(day)
            daily[key] = daily.get(key, 0) + 1
            stale = newest_day - day >= FREQUENCY_DAYS
        # The table holds only the FREQUENCY_DAYS days up to the newest event's day, whatever
        # the arrival order: it needs pruning only when that day moves (an impression's too)
        # or a late event's day is already out.
        if stale or newest_day != old_newest_day:
            daily = {d: n for d, n in daily.items() if newest_day - int(d) < FREQUENCY_DAYS}

        if kind == "view":
            view_count += 1
        elif kind == "click":
            click_count += 1
        elif kind == "add_to_cart":
            cart_count += 1
        elif kind == "impression":
            impression_count += 1
        elif kind == "purchase":
            unit_price = _bounded(event_price or (item.price if item else 0.0))
            purchase_count += 1
            monetary_total = _bounded(monetary_total + _bounded(unit_price * max(1, quantity)))
            if item and item.discounted:
                discounted += 1

        weight = EVENT_WEIGHTS.get(kind, 0.0)
        if weight <= 0 or item is None:
            continue
        if t >= ref_time:
            if t != ref_time:
                factor = decay_factor(ref_time, t, half_life_s)
                if factor != 1.0:
                    for table in (categories, brands):
                        for name in table:
                            table[name] *= factor
                    weighted_sum *= factor
                    weight_total *= factor
                ref_time = t
            contribution = weight
        else:
            contribution = weight * decay_factor(t, ref_time, half_life_s)
        if item.top_category:
            categories[item.top_category] = categories.get(item.top_category, 0.0) + contribution
        if item.brand:
            brands[item.brand] = brands.get(item.brand, 0.0) + contribution
        price = event_price or item.price
        if not 0.0 <= price <= MAX_TOTAL:  # in bounds is the common case; NaN is not
            price = _bounded(price)
        weighted_sum += price * contribution
        if not 0.0 <= weighted_sum <= MAX_TOTAL:
            weighted_sum = _bounded(weighted_sum)
        weight_total += contribution
        if not 0.0 <= weight_total <= MAX_TOTAL:
            weight_total = _bounded(weight_total)
        item_id = item.item_id
        if is_newest:
            if not recent or recent[0] != item_id:
                recent = ([item_id] + [i for i in recent if i != item_id])[:RECENT_ITEMS]
        elif item_id not in recent:
            recent = [*recent, item_id][:RECENT_ITEMS]
    state.ref_time, state.last_time, state.first_time = ref_time, last_time, first_time
    state.price_weighted_sum, state.price_weight = weighted_sum, weight_total
    state.event_count, state.view_count, state.click_count = event_count, view_count, click_count
    state.cart_count, state.impression_count = cart_count, impression_count
    state.purchase_count, state.discounted_purchase_count = purchase_count, discounted
    state.monetary_total = monetary_total
    state.daily_counts, state.recent_item_ids = daily, recent


def _bounded(value: float) -> float:
    """A non-negative sum kept finite: NaN counts as 0, anything above MAX_TOTAL is MAX_TOTAL."""
    if math.isnan(value) or value < 0:
        return 0.0
    return min(value, MAX_TOTAL)


@dataclass(frozen=True)
class Affinity:
    key: str
    score: float
    share: float


@dataclass(frozen=True)
class ProfileView:
    """A profile as of a moment: decayed scores plus the figures segment rules look at."""

    user_id: str
    cold_start: bool
    categories: list[Affinity]
    brands: list[Affinity]
    price_band: str
    mean_engaged_price: float
    recency_days: float
    frequency_30d: int
    state: ProfileState

    def figures(self) -> dict[str, Any]:
        """Flat figures for the rule engine; names are documented in segments.py."""
        s = self.state
        top = self.categories[0] if self.categories else None
        return {
            "event_count": s.event_count,
            "view_count": s.view_count,
            "click_count": s.click_count,
            "cart_count": s.cart_count,
            "purchase_count": s.purchase_count,
            "monetary_total": s.monetary_total,
            "discounted_purchase_share": (
                s.discounted_purchase_count / s.purchase_count if s.purchase_count else 0.0
            ),
            "price_band": self.price_band,
            "mean_engaged_price": self.mean_engaged_price,
            "recency_days": self.recency_days,
            "frequency_30d": self.frequency_30d,
            "top_category": top.key if top else "",
            "top_category_share": top.share if top else 0.0,
            "tenure_days": (s.last_time - s.first_time) / DAY_S if s.first_time else 0.0,
        }


@dataclass(frozen=True)
class PriceBands:
    """Upper bounds of the budget, mid and premium bands; above is luxury."""

    budget_max: float = 25.0
    mid_max: float = 100.0
    premium_max: float = 300.0

    def band(self, price: float, has_evidence: bool) -> str:
        if not has_evidence:
            return ""
        if price <= self.budget_max:
            return "budget"
        if price <= self.mid_max:
            return "mid"
        if price <= self.premium_max:
            return "premium"
        return "luxury"


def view_profile(
    user_id: str, state: ProfileState | None, now: float, half_life_s: float, bands: PriceBands
) -> ProfileView:
    """Decays the stored state to `now`; O(size of the state), never touches events."""
    if state is None or state.event_count == 0:
        return ProfileView(user_id, True, [], [], "", 0.0, 0.0, 0, state or ProfileState())
    factor = decay_factor(state.ref_time, now, half_life_s)
    mean_price = state.price_weighted_sum / state.price_weight if state.price_weight else 0.0
    today = int(now // DAY_S)
    frequency = sum(
        n for d, n in state.daily_counts.items() if 0 <= today - int(d) < FREQUENCY_DAYS
    )
    return ProfileView(
        user_id=user_id,
        cold_start=False,
        categories=_ranked(state.categories, factor),
        brands=_ranked(state.brands, factor),
        price_band=bands.band(mean_price, state.price_weight > 0),
        mean_engaged_price=mean_price,
        recency_days=max(0.0, (now - state.last_time) / DAY_S),
        frequency_30d=frequency,
        state=state,
    )


def _ranked(scores: dict[str, float], factor: float) -> list[Affinity]:
    total = sum(scores.values())
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Affinity(key, score * factor, score / total if total else 0.0) for key, score in ranked]
