"""Per-channel length limits and boundary-aware cutting.

Copy is counted in characters (Unicode code points), because that is what SMS gateways,
push payload previews and ad platforms limit. Cuts prefer a sentence end, then a clause
end, then a word boundary, so a cut never leaves half an English word; CJK text may be
cut between any two characters, but clause punctuation is preferred.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# channel -> locale -> default maximum characters
CHANNEL_CHAR_LIMITS: dict[str, dict[str, int]] = {
    "sms": {"en-US": 160, "zh-CN": 70},
    "push": {"en-US": 90, "zh-CN": 50},
    "email_subject": {"en-US": 60, "zh-CN": 30},
    "promo_banner": {"en-US": 40, "zh-CN": 20},
    "ad_copy": {"en-US": 90, "zh-CN": 45},
    "social_post": {"en-US": 280, "zh-CN": 140},
    "product_description": {"en-US": 600, "zh-CN": 300},
}

SENTENCE_ENDS = frozenset(".!?。！？…")
CLAUSE_ENDS = frozenset(",;:，；：、—–")
# Punctuation that must not dangle at the end of a cut.
TRAILING_JUNK = " \t,;:-–—/，；：、(（[【"
# Closing marks that belong to the sentence they end.
CLOSERS = frozenset("\"')]}”’」』】）》")

# A cut keeps a sentence/clause boundary only if it keeps at least this share of the limit;
# otherwise a later, finer boundary keeps more of the text.
MIN_KEEP_FRACTION = 0.5


def channel_default_max_chars(channel: str, locale: str) -> int:
    """Default limit for a channel and locale (KeyError for an unknown channel/locale)."""
    return CHANNEL_CHAR_LIMITS[channel][locale]


def effective_max_chars(channel: str, locale: str, *requested: int) -> int:
    """The channel default, lowered by any positive requested limit (never raised by one)."""
    limit = channel_default_max_chars(channel, locale)
    for value in requested:
        if value and value > 0:
            limit = min(limit, value)
    return limit


def is_cjk(char: str) -> bool:
    """True for Han ideographs, kana, hangul and CJK punctuation (breakable anywhere)."""
    code = ord(char)
    return (
        0x3000 <= code <= 0x30FF  # CJK punctuation, hiragana, katakana
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x2FA1F
    )


def _is_joiner(char: str) -> bool:
    """Characters that glue to the previous one (combining marks, ZWJ, variation selectors)."""
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or char in ("\u200d", "\ufe0e", "\ufe0f")
        or 0x1F3FB <= ord(char) <= 0x1F3FF  # emoji skin-tone modifiers
    )


def _can_break_before(text: str, pos: int) -> bool:
    """Whether text[:pos] ends at a legal boundary (no half word, no split emoji)."""
    if pos <= 0 or pos >= len(text):
        return True
    before, after = text[pos - 1], text[pos]
    if _is_joiner(after) or before == "\u200d":
        return False
    # Keep amounts whole: "$|19.99", "19.99|%", "8|+" are not boundaries.
    if "Sc" in (unicodedata.category(before), unicodedata.category(after)) or after in "%‰°+":
        return False
    if before.isspace() or after.isspace():
        return True
    if is_cjk(before) or is_cjk(after):
        return True
    # Word-internal punctuation: 19.99, 1,299, don't, glow-in-the-dark.
    inner = ".,'’-"
    if before in inner and after.isalnum():
        return False
    if after in inner and before.isalnum():
        following = text[pos + 1] if pos + 1 < len(text) else " "
        return not following.isalnum()
    return not (before.isalnum() and after.isalnum())


def _tidy_end(text: str) -> str:
    return text.rstrip().rstrip(TRAILING_JUNK).rstrip()


def _sentence_cut(text: str, limit: int) -> int:
    """Largest cut <= limit right after a sentence end (with any closing quotes)."""
    best = 0
    for i in range(min(limit, len(text))):
        if text[i] not in SENTENCE_ENDS:
            continue
        end = i + 1
        while end < len(text) and end < limit and text[end] in CLOSERS:
            end += 1
        nxt = text[end] if end < len(text) else " "
        # "19.99" or "e.g" are not sentence ends; a CJK end needs no following space.
        if text[i] == "." and not (nxt.isspace() or is_cjk(nxt)):
            continue
        if end <= limit:
            best = end
    return best


def _clause_cut(text: str, limit: int) -> int:
    """Largest cut <= limit just before a clause separator."""
    best = 0
    for i in range(min(limit + 1, len(text))):
        if text[i] in CLAUSE_ENDS:
            if text[i] == "," and i + 1 < len(text) and text[i + 1].isdigit():
                continue  # thousands separator: 1,299
            best = i
    return best


def _word_cut(text: str, limit: int) -> int:
    for pos in range(min(limit, len(text)), 0, -1):
        if _can_break_before(text, pos):
            return pos
    return 0


@dataclass(frozen=True)
class LengthResult:
    """Outcome of fitting one text into a limit."""

    text: str
    max_chars: int
    original_chars: int
    truncated: bool
    cut_at: str  # "none" | "sentence" | "clause" | "word" | "char" | "nothing_fits"


def fit_to_length(text: str, max_chars: int) -> LengthResult:
    """Cut `text` to at most `max_chars` characters at the best boundary available."""
    original = len(text)
    text = text.strip()
    if max_chars <= 0:
        return LengthResult("", max_chars, original, bool(text), "nothing_fits")
    if len(text) <= max_chars:
        return LengthResult(text, max_chars, original, False, "none")
    min_keep = max(1, int(max_chars * MIN_KEEP_FRACTION))
    for kind, finder in (("sentence", _sentence_cut), ("clause", _clause_cut)):
        pos = finder(text, max_chars)
        candidate = _tidy_end(text[:pos]) if kind == "clause" else text[:pos].rstrip()
        if pos and len(candidate) >= min_keep:
            return LengthResult(candidate, max_chars, original, True, kind)
    pos = _word_cut(text, max_chars)
    candidate = _tidy_end(text[:pos])
    if candidate:
        at_cjk = is_cjk(text[pos - 1]) or (pos < len(text) and is_cjk(text[pos]))
        kind = "char" if at_cjk else "word"
        return LengthResult(candidate, max_chars, original, True, kind)
    return LengthResult("", max_chars, original, True, "nothing_fits")
