"""Demo behaviour events: shoppers with a few favourite categories and a price comfort zone
browse the demo catalog over the last weeks. Deterministic for a seed, so the demo prints the
same profiles on every machine."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from copyloop.demo.catalog import DemoItem

DAY_S = 86_400.0


@dataclass(frozen=True)
class DemoShopper:
    user_id: str
    favourite_categories: tuple[str, ...]
    max_comfortable_price: float
    sessions: int


@dataclass(frozen=True)
class DemoEvent:
    event_id: str
    user_id: str
    type: str  # view | click | add_to_cart | purchase | search
    item_id: str
    event_time: float
    quantity: int = 1
    price: float = 0.0
    query: str = ""


def make_shoppers(
    catalog: Sequence[DemoItem], n_shoppers: int, seed: int = 11
) -> list[DemoShopper]:
    rng = random.Random(seed)
    categories = sorted({i.category_path[0] for i in catalog})
    shoppers = []
    for n in range(n_shoppers):
        k = 1 if rng.random() < 0.5 else 2
        shoppers.append(
            DemoShopper(
                user_id=f"shopper-{n:05d}",
                favourite_categories=tuple(rng.sample(categories, k)),
                max_comfortable_price=rng.choice([20.0, 40.0, 80.0, 200.0]),
                sessions=rng.randint(1, 8),
            )
        )
    return shoppers


def generate_events(
    catalog: Sequence[DemoItem],
    shoppers: Sequence[DemoShopper],
    now: float,
    seed: int = 13,
    days: int = 30,
) -> Iterator[DemoEvent]:
    """Sessions of search -> views -> clicks -> carts -> purchases, favouring each shopper's
    categories (80%) and affordable items."""
    rng = random.Random(seed)
    by_category: dict[str, list[DemoItem]] = {}
    for item in catalog:
        by_category.setdefault(item.category_path[0], []).append(item)
    counter = 0
    for shopper in shoppers:
        for _ in range(shopper.sessions):
            t = now - rng.uniform(0, days) * DAY_S
            category = (
                rng.choice(shopper.favourite_categories)
                if rng.random() < 0.8
                else rng.choice(sorted(by_category))
            )
            pool = by_category[category]
            affordable = [i for i in pool if i.price <= shopper.max_comfortable_price] or pool
            counter += 1
            yield DemoEvent(
                f"demo-ev-{counter}", shopper.user_id, "search", "", t, query=category.lower()
            )
            for item in rng.sample(affordable, min(len(affordable), rng.randint(2, 6))):
                t += rng.uniform(5, 120)
                counter += 1
                yield DemoEvent(f"demo-ev-{counter}", shopper.user_id, "view", item.item_id, t)
                if rng.random() < 0.35:
                    t += rng.uniform(5, 60)
                    counter += 1
                    yield DemoEvent(
                        f"demo-ev-{counter}", shopper.user_id, "add_to_cart", item.item_id, t
                    )
                    if rng.random() < 0.5 and item.stock > 0:
                        t += rng.uniform(30, 600)
                        counter += 1
                        yield DemoEvent(
                            f"demo-ev-{counter}",
                            shopper.user_id,
                            "purchase",
                            item.item_id,
                            t,
                            quantity=rng.choice([1, 1, 1, 2]),
                            price=item.price,
                        )
