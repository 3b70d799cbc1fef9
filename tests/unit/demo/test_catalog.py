"""Demo catalog: deterministic, varied, realistic enough; the Amazon sample loader."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from copyloop.demo.catalog import TOP_CATEGORIES, DemoItem, generate_catalog, load_amazon_catalog

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
AMAZON_SAMPLE = SHARED_DATA / "amazon_products_2020_sample.csv.gz"


def test_same_seed_same_catalog_and_other_seed_differs() -> None:
    assert generate_catalog(60, seed=3) == generate_catalog(60, seed=3)
    assert generate_catalog(60, seed=3) != generate_catalog(60, seed=4)


def test_default_catalog_spans_all_top_categories_evenly() -> None:
    items = generate_catalog()
    assert len(items) == 240
    counts = Counter(item.category_path[0] for item in items)
    assert set(counts) == set(TOP_CATEGORIES) and len(TOP_CATEGORIES) == 8
    assert max(counts.values()) - min(counts.values()) <= 1
    assert len({item.item_id for item in items}) == len(items)
    assert all(len(item.category_path) == 2 for item in items)


def test_items_have_prices_discounts_stock_and_text() -> None:
    items = generate_catalog()
    discounted = [i for i in items if i.is_discounted]
    out_of_stock = [i for i in items if not i.in_stock]
    assert 0.15 * len(items) < len(discounted) < 0.6 * len(items)
    assert 0 < len(out_of_stock) < 0.3 * len(items)
    for item in items:
        assert item.price > 0 and item.list_price >= item.price
        assert item.currency == "USD"
        assert item.title and item.brand and item.attributes and len(item.selling_points) >= 3
        assert "{" not in " ".join(item.selling_points)  # every template slot was filled
    assert all(0 < i.discount_pct < 100 for i in discounted)
    assert len({i.brand for i in items}) >= 30


@pytest.mark.skipif(not AMAZON_SAMPLE.is_file(), reason=f"reference data absent: {AMAZON_SAMPLE}")
def test_amazon_sample_loads_with_parsed_prices_and_points() -> None:
    items = load_amazon_catalog(AMAZON_SAMPLE)
    assert 900 <= len(items) <= 1000  # a few rows have no usable price
    assert all(isinstance(i, DemoItem) and i.price > 0 and i.title for i in items)
    assert Counter(i.category_path[0] for i in items).most_common(1)[0][0] == "Toys & Games"
    with_points = [i for i in items if i.selling_points]
    assert len(with_points) > 0.9 * len(items)
    assert not any(
        p.lower().startswith("make sure this fits") for i in items for p in i.selling_points
    )
    assert any(i.list_price > i.price for i in items)  # "Save $x" strike-through prices


def test_amazon_price_parser_handles_messy_strings(tmp_path: Path) -> None:
    csv_text = (
        "Uniq Id,Product Name,Category,Selling Price,About Product\n"
        "a1,Widget One,Toys & Games | Puzzles,$18.66,Fun | Make sure this fits by x. | Bright\n"
        "a2,Widget Two,,$22.50 - $49.88,\n"
        'a3,Widget Three,Toys & Games,"$ 19 99 $39.95 #css Save $19.96 (50%)",Big\n'
        "a4,Widget Four,Toys & Games,Total price:,x\n"
    )
    path = tmp_path / "sample.csv"
    path.write_text(csv_text)
    items = {i.item_id: i for i in load_amazon_catalog(path)}
    assert set(items) == {"a1", "a2", "a3"}
    assert (items["a1"].price, items["a1"].list_price) == (18.66, 18.66)
    assert items["a1"].selling_points == ("Fun", "Bright")
    assert items["a1"].category_path == ("Toys & Games", "Puzzles")
    assert items["a2"].price == 22.50 and items["a2"].category_path == ("Uncategorized",)
    assert (items["a3"].price, items["a3"].list_price) == (19.99, 39.95)
