"""Look-alike letters folded to the Latin letters they imitate, before any claim or compliance
check matches text.

"Bеst" written with a Cyrillic е (U+0435), "#1" with a full-width digit or "cure" with a
zero-width space inside are the same claims to a shopper's eye; matched on raw code points
they pass every banned-term pattern. NFKC already folds compatibility forms (full-width,
mathematical letters, ligatures); this module adds the Cyrillic and Greek letters Unicode's
confusables data (UTS #39, confusables.txt) maps to a single Latin letter, and drops the
invisible format characters that split a word without showing.

The map is small and explicit rather than a dependency: copy is en-US or zh-CN, so Cyrillic
and Greek in it are either look-alikes or noise, and Chinese characters are never touched.
Folding keeps one output character per input character (or none for invisible ones), so a
caller can map positions back.
"""

from __future__ import annotations

import unicodedata

# Cyrillic and Greek letters whose glyphs are (near-)identical to a Latin letter, from
# confusables.txt (single-letter targets only). Upper and lower case both listed: callers
# case-fold afterwards, but a capital "В" imitates "B", while a small "в" does not imitate "b".
_LOOKALIKES: dict[str, str] = {
    # Cyrillic capitals
    "А": "A",
    "В": "B",
    "Е": "E",
    "Ѕ": "S",
    "І": "I",
    "Ј": "J",
    "К": "K",
    "М": "M",
    "Н": "H",
    "О": "O",
    "Р": "P",
    "С": "C",
    "Т": "T",
    "Х": "X",
    "Ү": "Y",
    "Ԁ": "D",
    "Ԛ": "Q",
    "Ԝ": "W",
    "Ӏ": "I",
    "Һ": "H",
    # Cyrillic small letters
    "а": "a",
    "е": "e",
    "ё": "e",
    "о": "o",
    "р": "p",
    "с": "c",
    "у": "y",
    "х": "x",
    "ѕ": "s",
    "і": "i",
    "ї": "i",
    "ј": "j",
    "ԁ": "d",
    "ԛ": "q",
    "ԝ": "w",
    "һ": "h",
    "ӏ": "l",
    "ү": "y",
    "ɡ": "g",
    # Greek capitals
    "Α": "A",
    "Β": "B",
    "Ε": "E",
    "Ζ": "Z",
    "Η": "H",
    "Ι": "I",
    "Κ": "K",
    "Μ": "M",
    "Ν": "N",
    "Ο": "O",
    "Ρ": "P",
    "Τ": "T",
    "Υ": "Y",
    "Χ": "X",
    # Greek small letters
    "α": "a",
    "ο": "o",
    "ρ": "p",
    "ν": "v",
    "ι": "i",
    "κ": "k",
    "υ": "u",
    "χ": "x",
    "ϲ": "c",
    "ϳ": "j",
    # Latin letters outside ASCII that read as ASCII ones
    "ı": "i",
    "ȷ": "j",
    "ꞵ": "b",
}
# Invisible characters that split a word without showing (zero-width space and joiners, soft
# hyphen, word joiner, BOM...): every format (Cf) character. Only the matching form loses them.


def _fold_char(char: str) -> str:
    mapped = _LOOKALIKES.get(char)
    if mapped is not None:
        return mapped
    if not char.isascii() and unicodedata.category(char) == "Cf":
        return ""
    return char


_TABLE: dict[int, str] = {ord(k): v for k, v in _LOOKALIKES.items()}


def fold_confusables(text: str) -> str:
    """`text` with look-alike letters replaced by the Latin letters they imitate and invisible
    format characters removed. Apply after NFKC (which folds full-width and styled letters)."""
    if text.isascii():
        return text
    text = text.translate(_TABLE)
    if any(unicodedata.category(c) == "Cf" for c in text if not c.isascii()):
        text = "".join(_fold_char(c) for c in text)
    return text


def fold_char(char: str) -> str:
    """One character folded (for callers that keep a position map): its Latin look-alike, ""
    for an invisible format character, else the character itself."""
    return _fold_char(char)


def skeleton(text: str) -> str:
    """Matching form: NFKC, look-alikes folded, case-folded."""
    return fold_confusables(unicodedata.normalize("NFKC", text)).casefold()
