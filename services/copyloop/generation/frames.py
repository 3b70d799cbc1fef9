"""The frame of a copy: its wording with the item's facts taken out.

"Galaxy Rocket, now $19.99" and "Teddy Bear, now $9.99" are one frame ("{title}, now {price}").
Copy that varies only in its facts reads as a template to shoppers, so the pool keeps different
frames and the copy-quality bench reports how much live copy sits in the commonest ones.
"""

from __future__ import annotations

import re
import unicodedata

from copyloop.generation.prompts import CopyBrief

_NUMBER = re.compile(r"[$¥￥]?\d+(?:[.,]\d+)*%?")
_SPACE = re.compile(r"\s+")


def frame_of(text: str, brief: CopyBrief) -> str:
    """The text, case- and width-folded, with title, brand, category, selling points,
    attribute values and every number replaced by a placeholder."""
    folded = unicodedata.normalize("NFKC", text).lower()
    facts = [
        ("{title}", brief.item_title),
        ("{brand}", brief.brand),
        *(("{point}", p) for p in brief.selling_points),
        *(("{attr}", v) for _, v in brief.attributes),
        *(("{category}", c) for c in brief.category_path),
    ]
    # Longest first, so a selling point that contains the brand is taken out whole.
    for slot, value in sorted(facts, key=lambda f: -len(f[1])):
        value = unicodedata.normalize("NFKC", value).lower().strip()
        if len(value) >= 2:
            folded = folded.replace(value, slot)
    folded = _NUMBER.sub("{n}", folded)
    return _SPACE.sub(" ", folded).strip()


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Distinct n-grams over all n-grams (words in English, characters in Chinese): the usual
    diversity figure for generated text; 1.0 = no n-gram repeats anywhere."""
    grams: list[tuple[str, ...]] = []
    for text in texts:
        units = _units(text)
        grams.extend(tuple(units[i : i + n]) for i in range(len(units) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def _units(text: str) -> list[str]:
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return [ch for ch in text if not ch.isspace()]
    return re.findall(r"\w+", text.lower())
