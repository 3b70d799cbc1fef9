"""Which item facts a copy mentions (en word stems, zh bigrams)."""

from __future__ import annotations

import dataclasses

import pytest

from copyloop.generation.coverage import attribute_coverage, distinctive_units, mentions
from copyloop.generation.prompts import CopyBrief


def brief(**overrides: object) -> CopyBrief:
    base = CopyBrief(
        item_title="Galaxy Explorer Rocket Set",
        brand="Brickwell",
        category_path=("Toys", "Building Sets"),
        price=19.99,
        list_price=29.99,
        currency="USD",
        selling_points=("420 pieces", "glow-in-the-dark stickers"),
        attributes=(),
        channel="push",
        locale="en-US",
        tone="playful",
    )
    return dataclasses.replace(base, **overrides)


def test_full_coverage() -> None:
    copy = "Brickwell's Galaxy Explorer: stickers that glow in the dark!"
    report = attribute_coverage(copy, brief())
    assert report.score == 1.0
    assert report.product_covered and report.brand_covered and report.selling_point_covered
    assert report.covered_selling_points == ["glow-in-the-dark stickers"]


def test_partial_and_no_coverage() -> None:
    partial = attribute_coverage("Blast off with the Galaxy Explorer rocket!", brief())
    assert partial.product_covered and partial.brand_covered is False
    assert partial.score == pytest.approx(1 / 3, abs=1e-3)
    none = attribute_coverage("Free shipping today!", brief())
    assert none.score == 0.0 and none.covered_selling_points == []


def test_generic_words_alone_do_not_cover_the_product() -> None:
    assert not mentions("A great set for kids", "Galaxy Explorer Rocket Set")
    assert "set" not in distinctive_units("Galaxy Explorer Rocket Set")


def test_numbers_cover_a_selling_point() -> None:
    assert attribute_coverage("420-piece rocket", brief()).covered_selling_points == ["420 pieces"]


def test_absent_fields_are_not_counted() -> None:
    report = attribute_coverage("Galaxy Explorer rocket", brief(brand="", selling_points=()))
    assert report.brand_covered is None and report.selling_point_covered is None
    assert report.score == 1.0


def test_chinese_coverage_uses_bigrams() -> None:
    zh = brief(
        item_title="乐高 银河探索者火箭拼装积木",
        brand="乐高",
        selling_points=("夜光贴纸", "420块颗粒"),
        locale="zh-CN",
    )
    report = attribute_coverage("银河火箭来了！夜光贴纸点亮太空梦", zh)
    assert report.product_covered and report.brand_covered is False
    assert report.covered_selling_points == ["夜光贴纸"]
    # The brand alone does not count as naming the product.
    assert not attribute_coverage("乐高新品上架", zh).product_covered
    assert attribute_coverage("乐高新品上架", zh).brand_covered
