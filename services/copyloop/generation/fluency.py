"""Are the copywriter's own words words? A small model sampling sub-word tokens can glue pieces
into things no reader knows ("What'sing made", "Set.99.99"); every fact is filled from the item
after decoding, so what is left to check is the frame's own wording.

English words are looked up in wordfreq's frequency lists (a maintained lexicon built from
Wikipedia, subtitles, news, books and the web): a word rarer than `MIN_ZIPF` (about once per
hundred million words) is taken for a non-word. Two slips a frequency floor cannot see are
caught too: a rare word one edit away from a far commoner one ("Sime to grab", "Surry:"), as a
spelling checker reads it (Norvig's edit-distance-1 candidates, ranked by wordfreq), and a
possessive on a word that cannot own anything ("The's new in ..."). English words of one or two
letters form a closed class, so a pair of letters outside it ("Th coming back") is a fragment,
however often it occurs as an abbreviation. Only the frame outside the slots is read, so
brand names and product titles, which are often invented words, never count. Chinese copy is
made of characters that are all words of some kind; its failures are caught by the other checks
(language, claims, repetition).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from functools import cache

from wordfreq import zipf_frequency

from copyloop.generation.grammar import EN_DANGLING, EN_POSSESSIVE_PRONOUNS, frame_grammar
from copyloop.generation.grammar import warm_up as grammar_warm_up
from copyloop.generation.slots import SLOT_RE

__all__ = ["MIN_ZIPF", "non_words"]

MIN_ZIPF = 1.0
# A word rarer than this (about once per million words) is checked for a likely misspelling:
# a neighbour one edit away at least `_TYPO_GAP` zipf (100x) commoner and itself common.
_TYPO_CHECK_BELOW = 3.0
_TYPO_GAP = 2.0
_TYPO_NEIGHBOUR_MIN = 4.5
_LETTERS = string.ascii_lowercase
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_HASHTAG = re.compile(r"#\w+")
_SHORT_FORMS = frozenset({"s", "t", "ll", "re", "ve", "d", "m"})  # a lone contraction tail
# The English words of one or two letters copy uses (a closed class), and common short forms.
_SHORT_WORDS = frozenset(
    {"a", "i", "am", "an", "as", "at", "be", "by", "do", "go", "he", "hi", "if", "in", "is"}
    | {"it", "me", "my", "no", "of", "oh", "ok", "on", "or", "so", "to", "tv", "up", "us", "we"}
    | {"x", "xl", "xs"}
)
# Words that cannot take a possessive 's: the articles, determiners, conjunctions and
# possessive pronouns the shape rules know, prepositions and demonstratives.
_NO_POSSESSIVE = (
    EN_DANGLING
    | EN_POSSESSIVE_PRONOUNS
    | {"to", "of", "for", "with", "in", "on", "at", "by", "from", "as", "so"}
    | {"his", "her", "this", "these", "those", "each", "any", "some", "no"}
)


@cache
def _zipf(word: str) -> float:
    return float(zipf_frequency(word, "en"))


def _edits1(word: str) -> set[str]:
    """Every string one deletion, transposition, replacement or insertion away."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return {
        *(a + b[1:] for a, b in splits if b),
        *(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1),
        *(a + c + b[1:] for a, b in splits if b for c in _LETTERS),
        *(a + c + b for a, b in splits for c in _LETTERS),
    }


@cache
def _misspelt(word: str) -> bool:
    """A rare word with a far commoner neighbour one edit away: a slip, not a choice."""
    own = _zipf(word)
    if own >= _TYPO_CHECK_BELOW or not word.isalpha() or len(word) < 3:
        return False
    floor = max(_TYPO_NEIGHBOUR_MIN, own + _TYPO_GAP)
    return any(_zipf(n) >= floor for n in _edits1(word) if n != word)


@cache
def _known(word: str) -> bool:
    if word in _SHORT_FORMS:
        return True
    base = word.removesuffix("'s")
    if base != word and base in _NO_POSSESSIVE:
        return False
    if len(base) <= 2 and base.isalpha():
        return base in _SHORT_WORDS
    if zipf_frequency(word, "en") < MIN_ZIPF:
        return False
    return not _misspelt(base) or base in _grammar_words()


@cache
def _grammar_words() -> frozenset[str]:
    """The frame grammar's English words: chosen by people, so never a slip ("pleaser")."""
    return frame_grammar().vocabulary.get("en-US", frozenset())


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
    _known("copy")
    grammar_warm_up()
