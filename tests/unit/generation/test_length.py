"""Length limits per channel and locale, and cutting copy to fit."""

from __future__ import annotations

import pytest

from copyloop.generation.length import (
    CHANNEL_CHAR_LIMITS,
    channel_default_max_chars,
    effective_max_chars,
    fit_to_length,
)
from copyloop.generation.prompts import CHANNELS


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
