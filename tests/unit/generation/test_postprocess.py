"""Length cutting, near-duplicate removal, attribute coverage and the quality score."""

from __future__ import annotations

import dataclasses

import pytest

from copyloop.generation.coverage import attribute_coverage, distinctive_units, mentions
from copyloop.generation.dedupe import char_ngrams, dedupe, similarity
from copyloop.generation.length import (
    CHANNEL_CHAR_LIMITS,
    channel_default_max_chars,
    effective_max_chars,
    fit_to_length,
)
from copyloop.generation.prompts import CHANNELS, CopyBrief
from copyloop.generation.quality import (
    QualityWeights,
    fluency_score,
    quality_score,
    readability_score,
    tone_score,
)

# --- length ---------------------------------------------------------------------------------


def test_channel_limits_per_locale() -> None:
    assert set(CHANNEL_CHAR_LIMITS) == set(CHANNELS)
    expected = {
        "sms": (160, 70),
        "push": (90, 50),
        "email_subject": (60, 30),
        "promo_banner": (40, 20),
        "ad_copy": (90, 45),
        "social_post": (280, 140),
        "product_description": (600, 300),
    }
    for channel, (en, zh) in expected.items():
        assert channel_default_max_chars(channel, "en-US") == en
        assert channel_default_max_chars(channel, "zh-CN") == zh


def test_request_limit_only_lowers_the_default() -> None:
    assert effective_max_chars("push", "en-US", 0) == 90
    assert effective_max_chars("push", "en-US", 40) == 40
    assert effective_max_chars("push", "en-US", 400) == 90
    assert effective_max_chars("push", "zh-CN", 60, 30) == 30


def test_text_within_limit_is_untouched() -> None:
    result = fit_to_length("  Blast off!  ", 20)
    assert result.text == "Blast off!" and not result.truncated and result.cut_at == "none"


def test_cut_prefers_a_sentence_end() -> None:
    text = "Blast off with the Galaxy Explorer Rocket Set! 420 pieces of fun, now $19.99."
    result = fit_to_length(text, 60)
    assert result.text == "Blast off with the Galaxy Explorer Rocket Set!"
    assert result.cut_at == "sentence" and result.truncated and result.original_chars == len(text)


def test_cut_falls_back_to_a_clause_then_a_word() -> None:
    clause = fit_to_length("Galaxy Explorer Rocket Set, 420 pieces and glow stickers", 40)
    assert clause.text == "Galaxy Explorer Rocket Set" and clause.cut_at == "clause"
    word = fit_to_length("Blast off with the Galaxy Explorer Rocket Set and build fun", 40)
    assert word.text == "Blast off with the Galaxy Explorer" and word.cut_at == "word"


def test_sentence_boundary_that_keeps_too_little_is_skipped() -> None:
    result = fit_to_length("Wow. Blast off with the Galaxy Explorer Rocket Set today", 40)
    assert result.text.startswith("Wow. Blast off") and result.cut_at == "word"


@pytest.mark.parametrize("limit", range(1, 60))
def test_english_is_never_cut_mid_word(limit: int) -> None:
    text = "Brickwell's glow-in-the-dark rocket costs $19.99 (was 29.99%) for ages 8+ today"
    result = fit_to_length(text, limit)
    assert len(result.text) <= limit
    words = set(text.replace("(", " ").replace(")", " ").split())
    for token in result.text.replace("(", " ").replace(")", " ").split():
        assert token.rstrip(",.") in words or token in words, (limit, result.text)


def test_decimals_and_amounts_are_not_sentence_ends() -> None:
    assert fit_to_length("Price just $19.99. Order now.", 12).text == "Price just"
    assert fit_to_length("Now 19.99 dollars only for you", 12).text == "Now 19.99"


def test_chinese_cut_at_clause_punctuation() -> None:
    text = "银河探索者火箭拼装积木，420块颗粒，适合8岁以上。现价仅需99元，快来抢购吧！"
    assert fit_to_length(text, 30).text == "银河探索者火箭拼装积木，420块颗粒，适合8岁以上。"
    result = fit_to_length(text, 20)
    assert result.text == "银河探索者火箭拼装积木，420块颗粒" and result.cut_at == "clause"
    assert fit_to_length("火箭积木、夜光贴纸、拼装玩具礼物", 12).text == "火箭积木、夜光贴纸"


def test_chinese_without_punctuation_is_cut_at_a_character() -> None:
    result = fit_to_length("银河探索者火箭拼装积木四百二十块颗粒", 10)
    assert result.text == "银河探索者火箭拼装积" and result.cut_at == "char"


def test_emoji_sequences_are_not_split() -> None:
    family = "👨\u200d👩\u200d👧"
    result = fit_to_length(f"Hi {family} fun", 5)
    assert result.text == "Hi"
    assert fit_to_length("Go 👍🏽 now", 4).text == "Go"


def test_single_overlong_word_and_empty_input() -> None:
    assert fit_to_length("Supercalifragilisticexpialidocious", 10).cut_at == "nothing_fits"
    assert fit_to_length("Supercalifragilisticexpialidocious", 10).text == ""
    assert fit_to_length("", 10).text == ""
    assert fit_to_length("abc", 0).text == ""


# --- near-duplicates ------------------------------------------------------------------------


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


# --- coverage -------------------------------------------------------------------------------


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


# --- quality --------------------------------------------------------------------------------


def test_fluency_from_mean_token_logprob() -> None:
    assert fluency_score(0.0, 10) == (1.0, 0.0)
    assert fluency_score(-20.0, 10) == (0.5, -2.0)
    assert fluency_score(-100.0, 10)[0] == 0.0
    assert fluency_score(None, 10) == (None, None)
    assert fluency_score(-5.0, 0) == (None, None)


@pytest.mark.parametrize(
    ("locale", "tone", "matching", "clashing"),
    [
        ("en-US", "urgent", "Hurry, last chance: ends today!", "An exquisite, elegant piece."),
        ("en-US", "luxury", "An exquisite, timeless, elegant piece.", "Hurry, ends today!"),
        ("zh-CN", "playful", "哇，好玩又有趣的太空冒险！", "匠心工艺，典雅质感。"),
        ("zh-CN", "urgent", "限时特惠，立即抢购，仅剩今天！", "温暖陪伴，分享快乐。"),
    ],
)
def test_tone_score_prefers_the_requested_tone(
    locale: str, tone: str, matching: str, clashing: str
) -> None:
    assert tone_score(matching, locale, tone) > 0.8
    assert tone_score(clashing, locale, tone) < 0.3


def test_tone_without_any_cue_is_neutral() -> None:
    assert tone_score("Rocket set 420", "en-US", "urgent") == 0.25


def test_readability_penalises_long_sentences_shouting_and_repeated_marks() -> None:
    short = "Blast off today. Build your own rocket."
    long = " ".join(["word"] * 45) + "."
    assert readability_score(short, "en-US") == 1.0
    assert readability_score(long, "en-US") == 0.0
    assert readability_score("BUY THE ROCKET SET NOW", "en-US") < 1.0
    assert readability_score("Blast off!!!", "en-US") < 1.0
    assert readability_score("火箭积木来啦。快来抢购！", "zh-CN") == 1.0
    assert readability_score("火" * 60 + "。", "zh-CN") == 0.0
    assert readability_score("", "zh-CN") == 0.0


def test_quality_combines_reported_parts_with_weights() -> None:
    report = quality_score(
        "Hurry, ends today!",
        "en-US",
        "urgent",
        0.5,
        -10.0,
        10,
        QualityWeights(fluency=1, tone=1, readability=1, coverage=1),
    )
    assert report.fluency == 0.75 and report.mean_logprob == -1.0
    expected = (report.fluency + report.tone + report.readability + report.coverage) / 4
    assert report.overall == pytest.approx(expected, abs=1e-4)


def test_quality_without_logprobs_reweights_the_other_parts() -> None:
    report = quality_score(
        "Hurry, ends today!",
        "en-US",
        "urgent",
        0.5,
        weights=QualityWeights(fluency=10, tone=1, readability=1, coverage=1),
    )
    assert report.fluency is None
    assert report.overall == pytest.approx((report.tone + report.readability + 0.5) / 3, abs=1e-4)


def test_better_logprob_ranks_higher_all_else_equal() -> None:
    good = quality_score("Blast off today!", "en-US", "playful", 0.5, -5.0, 10)
    bad = quality_score("Blast off today!", "en-US", "playful", 0.5, -30.0, 10)
    assert good.overall > bad.overall
