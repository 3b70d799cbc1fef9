"""Does the copy mention the product, the brand and a selling point?

Copy that never names what it sells converts poorly and is useless in a feed. Exact title
matches are too strict ("Galaxy Explorer" names the "Galaxy Explorer Rocket Set"), so each
attribute is split into distinctive units (English words minus stop/generic words, Chinese
character bigrams) and counts as covered when enough of them appear.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

from copyloop.generation.length import is_cjk
from copyloop.generation.prompts.brief import CopyBrief

EN_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "for",
        "with",
        "in",
        "on",
        "at",
        "to",
        "by",
        "from",
        "your",
        "you",
        "our",
        "new",
        "all",
        "any",
        "this",
        "that",
        "is",
        "are",
        "be",
        "it",
        "its",
        "as",
        "per",
        "via",
        "plus",
        "x",
    ]
)
# Words that describe a product kind, not this product ("set", "pack", "kit").
EN_GENERIC = frozenset(
    [
        "set",
        "sets",
        "kit",
        "kits",
        "pack",
        "packs",
        "piece",
        "pieces",
        "pcs",
        "pc",
        "edition",
        "version",
        "model",
        "item",
        "items",
        "product",
        "products",
        "size",
        "sizes",
        "style",
        "styles",
        "series",
        "collection",
        "bundle",
        "box",
        "boxes",
    ]
)
ZH_GENERIC = frozenset(["套装", "系列", "产品", "商品", "新款", "正品", "包邮", "一件", "官方"])

_LATIN_WORD_RE = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _stem(word: str) -> str:
    """Crude English stem so 'stickers' matches 'sticker' and 'glowing' matches 'glow'."""
    for suffix in ("ing", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def distinctive_units(text: str, exclude: str = "") -> list[str]:
    """Latin word stems and CJK bigrams of `text`, minus stop/generic words and `exclude`'s."""
    folded = _fold(text)
    excluded = set(distinctive_units(exclude)) if exclude else set()
    units: list[str] = []
    for word in _LATIN_WORD_RE.findall(folded):
        if word in EN_STOPWORDS or word in EN_GENERIC or len(word) < 2:
            continue
        units.append(_stem(word))
    for run in re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff]+", folded):
        if len(run) == 1:
            units.append(run)
        units.extend(run[i : i + 2] for i in range(len(run) - 1))
    seen: set[str] = set()
    result = []
    for unit in units:
        if unit in excluded or unit in ZH_GENERIC or unit in seen:
            continue
        seen.add(unit)
        result.append(unit)
    return result


def _copy_units(copy: str) -> set[str]:
    folded = _fold(copy)
    units = {_stem(w) for w in _LATIN_WORD_RE.findall(folded)}
    for run in re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff]+", folded):
        units.update(run)
        units.update(run[i : i + 2] for i in range(len(run) - 1))
    return units


def mentions(copy: str, attribute: str, exclude: str = "", max_needed: int = 2) -> bool:
    """Whether enough distinctive units of `attribute` appear in `copy`.

    Needs half of the units, at most `max_needed`: two words of a long title are a mention.
    """
    units = distinctive_units(attribute, exclude)
    if not units:
        return False
    needed = min(max_needed, math.ceil(len(units) / 2))
    present = _copy_units(copy)
    return sum(1 for u in units if u in present) >= needed


def mentions_brand(copy: str, brand: str) -> bool:
    """Brands are names: they must appear whole (case and width folded)."""
    brand_folded = re.sub(r"\s+", " ", _fold(brand)).strip()
    if not brand_folded:
        return False
    copy_folded = re.sub(r"\s+", " ", _fold(copy))
    if any(is_cjk(c) for c in brand_folded) or not brand_folded.isascii():
        return brand_folded in copy_folded
    pattern = rf"(?<![a-z0-9]){re.escape(brand_folded)}(?![a-z0-9])"
    return re.search(pattern, copy_folded) is not None


@dataclass
class CoverageReport:
    score: float  # covered / checkable, in [0, 1]
    product_covered: bool
    brand_covered: bool | None  # None when the brief has no brand
    selling_point_covered: bool | None  # None when the brief has no selling points
    covered_selling_points: list[str] = field(default_factory=list)


def attribute_coverage(copy: str, brief: CopyBrief) -> CoverageReport:
    """Which of product name, brand and selling points the copy mentions."""
    product = mentions(copy, brief.item_title, exclude=brief.brand)
    brand = mentions_brand(copy, brief.brand) if brief.brand.strip() else None
    points = [sp for sp in brief.selling_points if sp.strip() and mentions(copy, sp)]
    selling = bool(points) if any(sp.strip() for sp in brief.selling_points) else None
    checks = [product] + [c for c in (brand, selling) if c is not None]
    return CoverageReport(
        score=round(sum(checks) / len(checks), 4),
        product_covered=product,
        brand_covered=brand,
        selling_point_covered=selling,
        covered_selling_points=points,
    )
