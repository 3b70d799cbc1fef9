"""Real text for the demo corpus, from the reference data beside the project (optional).

`../shared/data` holds an Amazon product sample (real names, categories, prices and feature
bullets) and the Upworthy headline A/B archive. The products widen the briefs the model
sees; their copy is still written as frames, so no product fact reaches a target. The
headlines weight the curiosity openers ("Here's why ...") by how often and how well real
editors used them. When the folder is absent the trainer uses the grammar alone.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from copyloop.demo.catalog import DemoItem, load_amazon_catalog

from . import phrases

log = logging.getLogger("copyloop.generation.copywriter")

DEFAULT_SHARED_DATA = Path("../shared/data")
AMAZON_FILE = "amazon_products_2020_sample.csv.gz"
UPWORTHY_FILE = "upworthy_ab_tests_dev.csv.gz"
_POINT_MAX = 48
_TITLE_WORDS = 8


@dataclass(frozen=True)
class SharedText:
    """What the reference data contributed; empty when it is absent."""

    items: tuple[DemoItem, ...] = ()
    curiosity: dict[str, float] = field(default_factory=dict)
    used: tuple[str, ...] = ()  # file names actually read


def _short_point(point: str) -> str:
    """'RESPONSIVE FLEX: The Crossbow ...' -> 'responsive flex'; else the first clause."""
    head, colon, _ = point.partition(":")
    if colon and 3 <= len(head) <= _POINT_MAX and head.upper() == head:
        return head.strip().lower()
    clause = re.split(r"\.(?=\s|$)|;|\s-\s|!", point)[0].strip()
    return clause if 6 <= len(clause) <= _POINT_MAX else ""


def _product_item(item: DemoItem, rng: random.Random) -> DemoItem | None:
    """A listing made brief-sized: short name and points, a discount on some (synthetic)."""
    words = item.title.split(",")[0].split(" - ")[0].split(" – ")[0].split()
    title = " ".join(words[:_TITLE_WORDS])
    points = tuple(p for p in (_short_point(sp) for sp in item.selling_points) if p)[:3]
    if len(title) < 4:
        return None
    list_price = item.list_price
    if list_price <= item.price and rng.random() < 0.35:
        list_price = round(item.price / (1 - rng.choice((0.1, 0.15, 0.2, 0.25, 0.3))), 2)
    category = (item.category_path[0], item.category_path[-1])
    return replace(
        item, title=title, selling_points=points, list_price=list_price, category_path=category
    )


def load_products(path: Path, limit: int, seed: int) -> tuple[DemoItem, ...]:
    rng = random.Random(seed)
    items = [p for p in (_product_item(i, rng) for i in load_amazon_catalog(path)) if p]
    rng.shuffle(items)
    return tuple(items[:limit])


def opener_weights(path: Path) -> dict[str, float]:
    """Per curiosity opener: share of headlines using it x its CTR relative to the mean."""
    from copyloop.prediction.offline.upworthy import load_upworthy

    variants = load_upworthy(path)
    total_clicks = sum(v.clicks for v in variants)
    total_impressions = sum(v.impressions for v in variants) or 1
    mean_ctr = total_clicks / total_impressions
    weights: dict[str, float] = {}
    for opener in phrases.CURIOSITY:
        hits = [v for v in variants if v.text.strip(" \"'‘“").lower().startswith(opener)]
        impressions = sum(v.impressions for v in hits)
        if not impressions:
            weights[opener] = 0.5  # unused by editors: rare, not banned
            continue
        ctr = sum(v.clicks for v in hits) / impressions
        weights[opener] = round(1.0 + 100 * len(hits) / len(variants) * ctr / mean_ctr, 4)
    return weights


def load_shared_text(data_dir: Path | None, n_products: int, seed: int) -> SharedText:
    """Products and opener weights from `data_dir`; logs and returns nothing when absent."""
    if data_dir is None:
        return SharedText()
    used: list[str] = []
    items: tuple[DemoItem, ...] = ()
    curiosity: dict[str, float] = {}
    amazon, upworthy = data_dir / AMAZON_FILE, data_dir / UPWORTHY_FILE
    if amazon.is_file() and n_products > 0:
        items = load_products(amazon, n_products, seed)
        used.append(AMAZON_FILE)
    if upworthy.is_file():
        curiosity = opener_weights(upworthy)
        used.append(UPWORTHY_FILE)
    if not used:
        log.warning(
            "no reference data in %s: the copywriter corpus uses the grammar alone", data_dir
        )
    return SharedText(items, curiosity, tuple(used))
