"""Near-duplicate removal within a batch and against the pool."""

from __future__ import annotations

from copyloop.generation.dedupe import char_ngrams, dedupe, similarity


def test_near_duplicates_are_dropped_keeping_the_first() -> None:
    texts = [
        "Get 33% off the Galaxy Explorer Rocket Set today!",
        "Get 33% off the Galaxy Explorer Rocket Set now!",
        "Glow-in-the-dark stickers make bedtime a space mission.",
    ]
    kept, drops = dedupe(texts)
    assert kept == [0, 2]
    assert [(d.index, d.duplicate_of) for d in drops] == [(1, 0)]
    assert 0.7 <= drops[0].similarity < 1


def test_near_duplicates_in_chinese() -> None:
    a = "银河探索者火箭积木限时特惠，快来抢购！"
    b = "银河探索者火箭积木限时特惠，赶快抢购吧"
    c = "夜光贴纸让孩子的夜晚变成太空之旅"
    assert char_ngrams(a) == char_ngrams(a + "!!")  # punctuation ignored
    assert similarity(a, b) >= 0.7 > similarity(a, c)
    assert dedupe([a, b, c])[0] == [0, 2]


def test_dedupe_threshold_is_configurable_and_case_insensitive() -> None:
    texts = [
        "Blast off with the rocket",
        "BLAST OFF with the rocket!",
        "Blast off with the big rocket",
    ]
    assert dedupe(texts, threshold=1.0)[0] == [0, 2]
    assert dedupe(texts, threshold=0.5)[0] == [0]


def test_dedupe_against_existing_texts() -> None:
    kept, drops = dedupe(
        ["Blast off with the rocket", "Something else entirely"],
        keep_first_of=["Blast off with the rocket!"],
    )
    assert kept == [1] and drops[0].duplicate_of == -1
