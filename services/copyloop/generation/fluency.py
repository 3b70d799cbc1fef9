"""Are the copywriter's own words words? A small model sampling sub-word tokens can glue pieces
into things no reader knows ("What'sing made", "Set.99.99"); every fact is filled from the item
after decoding, so what is left to check is the frame's own wording.

English words are looked up in wordfreq's frequency lists (a maintained lexicon built from
Wikipedia, subtitles, news, books and the web): a word rarer than `MIN_ZIPF` (about once per
hundred million words) is taken for a non-word. Only the frame outside the slots is read, so
brand names and product titles, which are often invented words, never count. Chinese copy is
made of characters that are all words of some kind; its failures are caught by the other checks
(language, claims, repetition).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from wordfreq import zipf_frequency

from copyloop.generation.slots import SLOT_RE

__all__ = ["MIN_ZIPF", "non_words"]

MIN_ZIPF = 1.0
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_HASHTAG = re.compile(r"#\w+")
_SHORT_FORMS = frozenset({"s", "t", "ll", "re", "ve", "d", "m"})  # a lone contraction tail


@cache
def _known(word: str) -> bool:
    return word in _SHORT_FORMS or zipf_frequency(word, "en") >= MIN_ZIPF


def non_words(frame: str, locale: str, facts: Iterable[str] = ()) -> list[str]:
    """The words of `frame` (outside its {slots}) no English reader would know, in order;
    always [] for locales other than English. Words of `facts` (the item's title, brand,
    selling points: what a model writing plain text types itself) count as known."""
    if not locale.startswith("en"):
        return []
    own = _HASHTAG.sub(" ", SLOT_RE.sub(" ", frame))  # #giftideas is a tag, not a word
    named = {w.casefold() for fact in facts for w in _WORD.findall(fact)}
    strange = []
    for word in _WORD.findall(own):
        folded = word.replace("’", "'").casefold()
        if folded.removesuffix("'s") in named or _known(folded):
            continue
        strange.append(word)
    return strange


def warm_up() -> None:
    """Loads the English word list (about a second) and builds the frame grammar
    (`grammar.frame_grammar`), so the first check does not pay for them."""
    from copyloop.generation import grammar

    _known("copy")
    grammar.warm_up()
