"""Drop near-duplicate variants.

Sampling several variants from one prompt often yields the same sentence with one word
changed; showing both wastes a bandit arm. Similarity is the Jaccard index of character
n-grams of a normalised form, which needs no tokenizer and works the same for Chinese
(unigrams + bigrams, one or two characters per word) and English (trigrams).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from copyloop.generation.length import is_cjk

DEFAULT_THRESHOLD = 0.7


def normalise_for_similarity(text: str) -> str:
    """Case-folded, width-folded letters and digits only (punctuation/emoji/space ignored)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in folded if unicodedata.category(c)[0] in ("L", "N"))


def char_ngrams(text: str, n: int | None = None) -> frozenset[str]:
    """Character n-grams of the normalised text.

    Mostly-CJK text uses unigrams plus bigrams (one changed character in a short Chinese
    line otherwise costs too many bigrams); other text uses trigrams. `n` forces one size.
    """
    norm = normalise_for_similarity(text)
    if not norm:
        return frozenset()
    if n is not None:
        sizes: tuple[int, ...] = (n,)
    elif sum(1 for c in norm if is_cjk(c)) * 2 >= len(norm):
        sizes = (1, 2)
    else:
        sizes = (3,)
    grams = {norm[i : i + k] for k in sizes for i in range(len(norm) - k + 1)}
    return frozenset(grams) if grams else frozenset([norm])


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def similarity(text_a: str, text_b: str) -> float:
    """Near-duplicate similarity in [0, 1]."""
    return jaccard(char_ngrams(text_a), char_ngrams(text_b))


@dataclass(frozen=True)
class DuplicateDrop:
    index: int  # position in the input list
    duplicate_of: int  # position of the kept variant it resembles
    similarity: float


def dedupe(
    texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD, keep_first_of: Sequence[str] = ()
) -> tuple[list[int], list[DuplicateDrop]]:
    """Indices to keep (in input order) and what was dropped.

    Put the best variant first: of a near-duplicate group the earliest survives. Texts in
    `keep_first_of` (already accepted elsewhere) are compared against but never returned;
    a drop caused by one of them has duplicate_of = -1 - its position there.
    """
    kept: list[int] = []
    drops: list[DuplicateDrop] = []
    grams = [char_ngrams(t) for t in texts]
    anchors = [char_ngrams(t) for t in keep_first_of]
    for i, g in enumerate(grams):
        match: tuple[int, float] | None = None
        for j, anchor in enumerate(anchors):
            score = jaccard(g, anchor)
            if score >= threshold:
                match = (-1 - j, score)
                break
        if match is None:
            for k in kept:
                score = jaccard(g, grams[k])
                if score >= threshold:
                    match = (k, score)
                    break
        if match is None:
            kept.append(i)
        else:
            drops.append(DuplicateDrop(i, duplicate_of=match[0], similarity=round(match[1], 4)))
    return kept, drops
