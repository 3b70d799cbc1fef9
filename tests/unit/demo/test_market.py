"""Synthetic market: deterministic, outcomes follow the hidden truth, tastes matter, any items."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from copyloop.demo.market import Item, MarketConfig, SyntheticMarket, hidden_styles, synthetic_items
from copyloop.prediction.features.types import ContextFeatures
from copyloop.prediction.training.evaluation import auc


def _market(n_shoppers: int = 150, seed: int = 0) -> SyntheticMarket:
    return SyntheticMarket(
        synthetic_items(80, seed=seed), MarketConfig(n_shoppers=n_shoppers), seed=seed
    )


def test_logs_are_deterministic_for_a_seed() -> None:
    a = _market().generate(2_000, seed=5)
    b = _market().generate(2_000, seed=5)
    assert [(e.user.user_id, e.item.item_id, e.copy.text, e.clicked) for e in a.examples] == [
        (e.user.user_id, e.item.item_id, e.copy.text, e.clicked) for e in b.examples
    ]
    c = _market().generate(2_000, seed=6)
    assert [e.clicked for e in a.examples] != [e.clicked for e in c.examples]


def test_impressions_are_ordered_in_the_requested_window() -> None:
    log = _market().generate(1_000, start_time=100.0, duration_s=50.0)
    times = [e.timestamp for e in log.examples]
    assert times == sorted(times) and times[0] >= 100.0 and times[-1] < 150.0


def test_outcomes_follow_the_true_probabilities() -> None:
    market = _market(300)
    log = market.generate(40_000, seed=2)
    clicked = np.asarray([e.clicked for e in log.examples])
    converted = np.asarray([e.converted for e in log.examples])
    assert np.all((log.p_click > 0) & (log.p_click < 1))
    assert abs(clicked.mean() - log.p_click.mean()) < 0.005
    assert abs(converted[clicked].mean() - log.p_convert[clicked].mean()) < 0.03
    assert not np.any(converted & ~clicked)  # no purchase without a click
    assert auc(clicked, log.p_click) > 0.7  # the truth is informative: there is something to learn
    p_click, p_convert = market.truth_for(log.examples[:500])
    assert np.allclose(p_click, log.p_click[:500]) and np.allclose(p_convert, log.p_convert[:500])


def test_hidden_tastes_drive_clicks() -> None:
    market = _market()
    shopper = market.shoppers[0]
    liked = max(shopper.category_taste, key=shopper.category_taste.get)
    disliked = min(shopper.category_taste, key=shopper.category_taste.get)
    item_liked = next(i for i in market.items if i.category_path[0] == liked)
    item_disliked = replace(item_liked, category_path=(disliked, *item_liked.category_path[1:]))
    context = ContextFeatures("push", shopper.peak_hour, shopper.devices[0], "en-US")
    p_liked, _ = market.true_probabilities(shopper, item_liked, "x", "Meet the thing.", context)
    p_disliked, _ = market.true_probabilities(
        shopper, item_disliked, "x", "Meet the thing.", context
    )
    assert p_liked > p_disliked


def test_copy_style_response_is_per_shopper() -> None:
    market = _market()
    assert (
        hidden_styles("Save 20% today!")["discount"] and hidden_styles("Save 20% today!")["urgency"]
    )
    fans = sorted(market.shoppers, key=lambda s: s.style_response["discount"])
    hater, fan = fans[0], fans[-1]
    item = next(i for i in market.items if i.list_price > i.price)
    context = ContextFeatures("ad_copy", 12, "mobile", "en-US")

    def lift(shopper):  # type: ignore[no-untyped-def]
        deal, _ = market.true_probabilities(shopper, item, "x", "Save 30% on this", context)
        plain, _ = market.true_probabilities(shopper, item, "x", "Meet this", context)
        return deal / plain

    assert lift(fan) > 1.0 > lift(hater)


def test_profiles_are_observable_not_the_truth() -> None:
    market = _market()
    cold = next(s for s in market.shoppers if s.cold)
    warm = next(s for s in market.shoppers if not s.cold)
    assert (
        market.profile(cold.shopper_id).cold_start
        and not market.profile(cold.shopper_id).category_affinity
    )
    profile = market.profile(warm.shopper_id)
    assert all(0.0 <= v <= 1.0 for v in profile.category_affinity.values())
    top_true = max(warm.category_taste, key=warm.category_taste.get)
    assert max(profile.category_affinity, key=profile.category_affinity.get) in {
        c for c, t in warm.category_taste.items() if t >= warm.category_taste[top_true] - 0.5
    }


@dataclass(frozen=True)
class _ForeignItem:
    """An item type the market has never seen: only the Item protocol's fields, no item_id."""

    category_path: tuple[str, ...]
    brand: str
    price: float
    list_price: float


def test_any_item_list_works() -> None:
    items = [
        _ForeignItem(("garden", "tools"), "Spade&Co", 25.0, 30.0),
        _ForeignItem(("garden", "seeds"), "Bloom", 4.0, 0.0),
    ]
    assert all(isinstance(i, Item) for i in items)
    market = SyntheticMarket(items, MarketConfig(n_shoppers=20), seed=1)
    log = market.generate(300)
    assert {e.item.item_id for e in log.examples} == {"item-0", "item-1"}
    assert all(e.copy.text for e in log.examples)
    assert log.examples[0].item.category_path[0] == "garden"
