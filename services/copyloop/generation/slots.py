"""Slot filling: the model writes frames ("{discount_pct} off {title}"), facts come from the item.

A small model cannot be trusted to copy a price or a percentage correctly, so the demo
copywriter is trained only on delexicalised copy: every fact is a slot token that this
module fills from the CopyBrief after decoding. A fact the item does not have (a discount
without a list price above the price, a third selling point of an item with two) makes
the frame unfillable, and the pipeline rejects it. Text without slots (a production LLM
writing plain copy) is returned unchanged.

`unslotted_amounts` finds currency amounts and percentages written outside slots; the
pipeline rejects those unless they state one of the item's true figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from copyloop.generation.fallback import MIN_DISCOUNT_PCT, format_money
from copyloop.generation.prompts import sanitize
from copyloop.generation.prompts.brief import CopyBrief

__all__ = [
    "SLOT_NAMES",
    "SLOT_TOKENS",
    "FillResult",
    "FilledFrame",
    "available_slots",
    "fill_slots",
    "fill_slots_detailed",
    "frame_slots",
    "slot_values",
    "unslotted_amounts",
]

# Order matters only for prompts (the "slots:" line lists them in this order).
SLOT_NAMES: tuple[str, ...] = (
    "title",
    "short_title",
    "brand",
    "category",
    "price",
    "list_price",
    "discount_pct",
    "saving",
    "point1",
    "point2",
    "point3",
)
# One tokenizer token each (added to the demo tokenizer) so the model cannot mangle a slot.
SLOT_TOKENS: tuple[str, ...] = tuple("{" + name + "}" for name in SLOT_NAMES)
ATTR_PREFIX = "attr:"  # {attr:<key>} fills with that attribute's value (production prompts)

SLOT_RE = re.compile(r"\{([a-z][a-z0-9_]*(?::[^{}\s]{1,40})?)\}")
_TITLE_CUT_RE = re.compile(r"\s[-–—|/]\s|[,，|(（:：;；]")
_SENTENCE_START_RE = re.compile(r"(?:^|[.!?]\s+)$")
TITLE_SLOT_MAX = 60
POINT_SLOT_MAX = 60

# Chinese names for the demo catalog's category leaves; unknown leaves fall back to a
# generic word (a Chinese sentence with an English category reads badly).
ZH_CATEGORY: dict[str, str] = {
    "Building Sets": "积木",
    "Plush Toys": "毛绒玩具",
    "STEM Kits": "科学玩具",
    "Board Games": "桌游",
    "Headphones": "耳机",
    "Smart Home": "智能家居",
    "Chargers": "充电器",
    "Cameras": "相机",
    "Cookware": "锅具",
    "Small Appliances": "小家电",
    "Bedding": "床品",
    "Storage": "收纳",
    "Skincare": "护肤品",
    "Makeup": "彩妆",
    "Hair Care": "护发",
    "Camping": "露营装备",
    "Fitness": "健身器材",
    "Cycling": "骑行装备",
    "Children's Books": "童书",
    "Cookbooks": "菜谱",
    "Fiction": "小说",
    "Shoes": "鞋",
    "Outerwear": "外套",
    "Accessories": "配饰",
    "Coffee & Tea": "咖啡茶饮",
    "Snacks": "零食",
    "Pantry": "粮油调味",
    "Toys": "玩具",
    "Toys & Games": "玩具",
    "Electronics": "数码",
    "Home & Kitchen": "家居厨房",
    "Beauty": "美妆",
    "Sports & Outdoors": "运动户外",
    "Books": "图书",
    "Fashion": "服饰",
    "Grocery": "食品",
}
ZH_GENERIC_CATEGORY = "好物"


@dataclass(frozen=True)
class FilledFrame:
    """A frame with its slots filled: `text` is the copy, `slots` the slot names it used."""

    text: str
    frame: str
    slots: tuple[str, ...]


@dataclass(frozen=True)
class FillResult:
    """`filled` when every slot could be filled, else `problem` says which one could not."""

    filled: FilledFrame | None
    problem: str = ""


def _cap_words(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space >= limit // 2 else cut).rstrip(" ,;:-")


def _has_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


def _title(brief: CopyBrief) -> str:
    title = sanitize.neutralise(brief.item_title, sanitize.TITLE_MAX)
    head = _TITLE_CUT_RE.split(title, maxsplit=1)[0].strip()
    return _cap_words(head if len(head) >= 3 else title, TITLE_SLOT_MAX)


_GENERIC_WORDS = frozenset(
    {"set", "kit", "pack", "bundle", "box", "collection", "edition", "the", "of", "and", "for"}
)


def _short_title(title: str) -> str:
    """The head noun phrase of the name, for banners: 'Lite Sport Earphones' -> 'Sport
    Earphones' (English names end in what the thing is), with two distinctive words so the
    copy still names the product ('Fantasy Saga Box Set'); six characters of a Chinese name."""
    if _has_cjk(title) and " " not in title:
        return title[:6]
    words = title.split()
    distinctive, start = 0, len(words)
    while start > 0 and distinctive < 2:
        start -= 1
        distinctive += words[start].lower().strip(",.'") not in _GENERIC_WORDS
    return " ".join(words[start:])


def _category(brief: CopyBrief) -> str:
    parts = [p for p in (sanitize.neutralise(c, 40) for c in brief.category_path) if p]
    if not parts:
        return ""
    if brief.locale != "zh-CN":
        return parts[-1]
    for part in reversed(parts):
        if _has_cjk(part):
            return part
        if part in ZH_CATEGORY:
            return ZH_CATEGORY[part]
    return ZH_GENERIC_CATEGORY


def _discount_pct(brief: CopyBrief) -> int:
    """Whole-percent discount, 0 when there is none worth stating."""
    if brief.list_price is None or not brief.list_price > brief.price > 0:
        return 0
    pct = round((1 - brief.price / brief.list_price) * 100)
    return pct if pct >= MIN_DISCOUNT_PCT else 0


def slot_values(brief: CopyBrief) -> dict[str, str]:
    """Every slot's value for this brief; '' means the item does not have that fact."""
    return dict(_slot_values(brief))


@lru_cache(maxsize=4096)
def _slot_values(brief: CopyBrief) -> tuple[tuple[str, str], ...]:
    """Cached: the corpus and the pipeline fill many frames for the same brief."""
    locale = brief.locale
    title = _title(brief)
    points = [
        _cap_words(p.strip(" .。;；"), POINT_SLOT_MAX)
        for p in (
            sanitize.neutralise(sp, sanitize.SELLING_POINT_MAX) for sp in brief.selling_points
        )
    ]
    points = [p for p in points if p]
    pct = _discount_pct(brief)
    list_price = brief.list_price or 0.0
    values = {
        "title": title,
        "short_title": _short_title(title) if title else "",
        "brand": sanitize.neutralise(brief.brand, sanitize.BRAND_MAX),
        "category": _category(brief),
        "price": format_money(brief.price, brief.currency, locale) if brief.price > 0 else "",
        "list_price": format_money(list_price, brief.currency, locale) if pct else "",
        "discount_pct": f"{pct}%" if pct else "",
        "saving": format_money(list_price - brief.price, brief.currency, locale) if pct else "",
    }
    for index in range(3):
        values[f"point{index + 1}"] = points[index] if index < len(points) else ""
    return tuple(values.items())


def available_slots(brief: CopyBrief) -> tuple[str, ...]:
    """The slot names this brief can fill, in SLOT_NAMES order (what the prompt lists)."""
    values = slot_values(brief)
    return tuple(name for name in SLOT_NAMES if values[name])


def frame_slots(frame: str) -> list[str]:
    """Slot names in `frame`, in order of appearance (repeats kept)."""
    return [m.group(1) for m in SLOT_RE.finditer(frame)]


def _capitalise_if_sentence_start(before: str, value: str) -> str:
    if value[:1].islower() and _SENTENCE_START_RE.search(before):
        return value[:1].upper() + value[1:]
    return value


def fill_slots_detailed(frame: str, brief: CopyBrief) -> FillResult:
    """Fill `frame` from `brief`, or say why it cannot be filled."""
    if "{" not in frame and "}" not in frame:
        return FillResult(FilledFrame(frame, frame, ()))
    values = dict(_slot_values(brief))
    attributes = {k: v for k, v in brief.attributes}
    out: list[str] = []
    used: list[str] = []
    position = 0
    for match in SLOT_RE.finditer(frame):
        name = match.group(1)
        if name.startswith(ATTR_PREFIX):
            value = sanitize.neutralise(attributes.get(name[len(ATTR_PREFIX) :], ""), 60)
        elif name in values:
            value = values[name]
        else:
            return FillResult(None, f"unknown slot {{{name}}}")
        if not value:
            return FillResult(None, f"the item has no {{{name}}}")
        out.append(frame[position : match.start()])
        before = "".join(out)
        if brief.locale == "en-US":
            value = _capitalise_if_sentence_start(before, value)
        out.append(value)
        used.append(name)
        position = match.end()
    out.append(frame[position:])
    leftovers = SLOT_RE.sub("", frame)
    if "{" in leftovers or "}" in leftovers:
        return FillResult(None, "malformed slot (a stray brace)")
    text = "".join(out)
    return FillResult(FilledFrame(text, frame, tuple(dict.fromkeys(used))))


def fill_slots(frame: str, brief: CopyBrief) -> FilledFrame | None:
    """The filled copy, or None when the frame names an unknown slot or a missing fact."""
    return fill_slots_detailed(frame, brief).filled


# Currency amounts and percentages: "$32", "32.50 USD", "¥99", "99元", "20%", "20 percent", "8折".
# A number starts only where a number starts (not inside "1,299" or a digit run) and its runs
# are possessive: a long run of digits is scanned once, not once per position (quadratic:
# 10,000 digits took 20 s).
_NUMBER = r"\d++(?:[.,]\d++)*+"
_NUMBER_START = r"(?<!\d)(?<!\d[.,])"
_AMOUNT_RE = re.compile(
    rf"[$€£¥￥]\s?({_NUMBER})"
    rf"|{_NUMBER_START}({_NUMBER})\s?(?:%|％|percent\b|per\s?cent\b)"
    rf"|{_NUMBER_START}({_NUMBER})\s?(?:元|美元|欧元|英镑|usd\b|cny\b|rmb\b|eur\b|gbp\b|dollars?\b)"
    rf"|(\d(?:\.\d)?)\s?折",
    re.IGNORECASE,
)


def _true_figures(brief: CopyBrief) -> list[float]:
    figures = [brief.price]
    pct = _discount_pct(brief)
    if pct and brief.list_price is not None:
        figures += [brief.list_price, brief.list_price - brief.price, float(pct)]
        figures.append(round((100 - pct) / 10, 1))  # Chinese 折: 20% off = 8折
    return figures


def unslotted_amounts(frame: str, brief: CopyBrief) -> list[str]:
    """Currency amounts and percentages written outside slots that are not the item's figures.

    The demo model never sees a raw figure in training, so any it writes is invented; a
    production LLM writing the true price in plain text is left alone.
    """
    text = SLOT_RE.sub(" ", frame)
    figures = _true_figures(brief)
    wrong: list[str] = []
    for match in _AMOUNT_RE.finditer(text):
        number = next(g for g in match.groups() if g is not None)
        try:
            value = float(number.replace(",", ""))
        except ValueError:
            wrong.append(match.group(0))
            continue
        if not any(abs(value - figure) < 0.011 for figure in figures):
            wrong.append(match.group(0).strip())
    return wrong
