"""Compliance rules per locale: banned claims, personal data, disclaimers, must-include."""

from __future__ import annotations

import pytest

from copyloop.generation.compliance import (
    CopyConstraints,
    check_compliance,
    contains_term,
    disclaimer_suffix,
    find_banned_terms,
    validate_constraints,
)
from copyloop.generation.pii import mask, redact_pii

NO_RULES = CopyConstraints()


def rules(report) -> list[str]:
    return [v.rule for v in report.violations]


# --- banned claims --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("全网最低价，快来抢购", "最"),
        ("销量第一的积木", "第一"),
        ("国家级认证品质", "国家级"),
        ("顶级工艺", "顶级"),
        ("极致体验", "极致"),
        ("独一无二的设计", "独一无二"),
        ("史无前例的优惠", "史无前例"),
        ("万能清洁剂", "万能"),
        ("祛痘100%有效", "100%有效"),
        ("祛痘１００％ 有效", "100%有效"),  # full-width digits and a space do not evade
    ],
)
def test_zh_absolute_claims_fail(text: str, term: str) -> None:
    report = check_compliance(text, "zh-CN", NO_RULES, 70)
    assert not report.passed
    assert ("banned_term", term) in [(v.rule, v.detail) for v in report.violations]
    assert report.text == text.strip()  # failing copy is reported, never cut into pieces


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("The #1 rocket set for kids", "#1"),
        ("America's Number One toy", "number one"),
        ("Fun guaranteed!", "guaranteed"),
        ("Best ever price", "best ever"),
        ("Try it risk-free today", "risk-free"),
        ("Cures boredom instantly", "cure"),
        ("A MIRACLE cream", "miracle"),
        ("100% effective formula", "100% effective"),
    ],
)
def test_en_banned_claims_fail(text: str, term: str) -> None:
    report = check_compliance(text, "en-US", NO_RULES, 160)
    assert not report.passed
    assert ("banned_term", term) in [(v.rule, v.detail) for v in report.violations]


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("第一次下单立减10元，最近上新", "zh-CN"),
        ("最后一天特惠", "zh-CN"),
        ("Secure checkout and a manicure kit", "en-US"),  # 'cure' inside words
        ("Set #12 of the series, 100% cotton", "en-US"),
        ("Our best seller is back", "en-US"),
    ],
)
def test_ordinary_words_that_contain_a_term_pass(text: str, locale: str) -> None:
    assert check_compliance(text, locale, NO_RULES, 160).passed


def test_text_made_only_of_banned_terms_fails_with_every_term() -> None:
    report = check_compliance("最顶级极致，第一！", "zh-CN", NO_RULES, 70)
    assert not report.passed
    assert {v.detail for v in report.violations} == {"最", "顶级", "极致", "第一"}
    en = check_compliance("#1 guaranteed miracle cure", "en-US", NO_RULES, 90)
    assert {v.detail for v in en.violations} == {"#1", "guaranteed", "miracle", "cure"}


def test_lists_apply_across_scripts() -> None:
    """Mixed-script copy: an English claim inside Chinese copy still fails."""
    assert "#1" in find_banned_terms("LEGO #1 热卖积木", "zh-CN")
    assert "最" in find_banned_terms("Brickwell 最好玩", "en-US")


def test_request_banned_terms_are_word_bounded_and_case_insensitive() -> None:
    constraints = CopyConstraints(banned_terms=("cheap", "清仓"))
    report = check_compliance("CHEAP rockets, 清仓大促", "en-US", constraints, 90)
    assert {(v.rule, v.detail) for v in report.violations} == {
        ("request_banned_term", "cheap"),
        ("request_banned_term", "清仓"),
    }
    assert check_compliance("Cheapskate-proof rockets", "en-US", constraints, 90).passed


# --- personal data --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Rocket set on sale. Mail jo.smith@example.com", "email"),
        ("Rocket set on sale. See https://shop.example.com/x?a=1", "url"),
        ("Rocket set on sale. See www.brickwell.com", "url"),
        ("Rocket set on sale. Call (555) 123-4567", "phone"),
        ("Rocket set on sale. Call +1 555-123-4567", "phone"),
        ("火箭积木特惠。加微信 abc_12345", "wechat_id"),
        ("火箭积木特惠。VX：rocket888", "wechat_id"),
        ("火箭积木特惠。QQ号：12345678", "qq_id"),
        ("火箭积木特惠。致电13812345678", "phone_cn_mobile"),
        ("火箭积木特惠。致电+86 138-1234-5678", "phone_cn_mobile"),
        ("火箭积木特惠。热线400-123-4567", "phone_cn_landline"),
        ("火箭积木特惠。热线010-12345678", "phone_cn_landline"),
        ("Rocket set on sale. Card 4111 1111 1111 1111", "long_digits"),
    ],
)
def test_personal_data_is_removed_and_reported(text: str, kind: str) -> None:
    locale = "zh-CN" if "火箭" in text else "en-US"
    report = check_compliance(text, locale, NO_RULES, 160)
    assert report.passed  # redaction alone is not a failure
    assert [r.kind for r in report.redactions] == [kind]
    assert report.text in ("Rocket set on sale.", "火箭积木特惠。")
    # The report does not leak the data itself.
    assert all(len(r.masked) <= 9 and "***" in r.masked for r in report.redactions)


def test_redaction_keeps_clauses_without_contact_data() -> None:
    result = redact_pii("火箭积木限时特惠，加微信abc_12345领券！快来抢购。")
    assert result.text == "火箭积木限时特惠，快来抢购。"
    result = redact_pii("Galaxy Rocket Set, 420 pieces. Call 555-123-4567 today! Only $19.99.")
    assert result.text == "Galaxy Rocket Set, 420 pieces. Only $19.99."


def test_numbers_that_are_not_personal_data_survive() -> None:
    text = "Model 42115 has 420 pieces at 19.99, ages 8+, 2024 edition"
    assert redact_pii(text).redactions == ()
    assert check_compliance(text, "en-US", NO_RULES, 160).text == text


def test_copy_that_is_only_contact_data_fails_as_empty() -> None:
    report = check_compliance("加微信 abc_12345，或拨打13812345678", "zh-CN", NO_RULES, 70)
    assert not report.passed and rules(report) == ["empty"]
    assert len(report.redactions) == 2


def test_mask_hides_the_middle() -> None:
    assert mask("13812345678") == "13***78"
    assert mask("12345") == "*****"


# --- disclaimer -----------------------------------------------------------------------------


def test_missing_disclaimer_is_appended_when_it_fits() -> None:
    en_rules = CopyConstraints(required_disclaimer="T&Cs apply.")
    en = check_compliance("Rocket set, now $19.99", "en-US", en_rules, 90)
    assert en.passed and en.disclaimer_added and en.text == "Rocket set, now $19.99. T&Cs apply."
    zh_rules = CopyConstraints(required_disclaimer="活动以页面为准")
    zh = check_compliance("火箭积木现价99元", "zh-CN", zh_rules, 50)
    assert zh.passed and zh.text == "火箭积木现价99元。活动以页面为准"
    zh2 = check_compliance("火箭积木现价99元！", "zh-CN", zh_rules, 50)
    assert zh2.text == "火箭积木现价99元！活动以页面为准"


def test_present_disclaimer_is_not_added_twice() -> None:
    constraints = CopyConstraints(required_disclaimer="T&Cs apply")
    report = check_compliance("Rocket set. t&cs  apply", "en-US", constraints, 90)
    assert report.passed and not report.disclaimer_added
    assert report.text == "Rocket set. t&cs apply"


def test_disclaimer_that_cannot_fit_is_a_violation() -> None:
    constraints = CopyConstraints(
        required_disclaimer="Terms and conditions apply, see store for details"
    )
    report = check_compliance("Rocket set now $19.99", "en-US", constraints, 40)
    assert not report.passed and rules(report) == ["disclaimer"]
    assert not report.disclaimer_added and report.text == "Rocket set now $19.99"


def test_disclaimer_suffix_only_adds_a_break_when_needed() -> None:
    assert disclaimer_suffix("Buy now!", "T&Cs apply", "en-US") == " T&Cs apply"
    assert disclaimer_suffix("Buy now", "T&Cs apply", "en-US") == ". T&Cs apply"
    assert disclaimer_suffix("快来买。", "以页面为准", "zh-CN") == "以页面为准"


# --- must include, length, empty, emoji, leaks -----------------------------------------------


def test_must_include_terms_are_checked_case_and_width_insensitively() -> None:
    constraints = CopyConstraints(must_include=("free shipping", "包邮"))
    report = check_compliance("FREE  Shipping on rockets", "en-US", constraints, 90)
    assert [(v.rule, v.detail) for v in report.violations] == [("must_include", "包邮")]
    assert check_compliance("Free shipping, 包邮", "en-US", constraints, 90).passed


def test_must_include_can_be_satisfied_by_the_disclaimer() -> None:
    constraints = CopyConstraints(must_include=("T&Cs",), required_disclaimer="T&Cs apply")
    assert check_compliance("Rocket set", "en-US", constraints, 90).passed


def test_too_long_copy_is_a_length_violation() -> None:
    report = check_compliance("x" * 91, "en-US", NO_RULES, 90)
    assert rules(report) == ["length"]


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_copy_fails(text: str) -> None:
    for locale in ("en-US", "zh-CN"):
        assert rules(check_compliance(text, locale, NO_RULES, 90)) == ["empty"]


@pytest.mark.parametrize("text", ["🚀🚀🎉", "!!! ... ？？", "🚀 ✨ 👨‍👩‍👧"])
def test_only_emoji_or_punctuation_fails(text: str) -> None:
    for locale in ("en-US", "zh-CN"):
        assert "no_text" in rules(check_compliance(text, locale, NO_RULES, 90))


def test_emoji_alongside_text_is_fine() -> None:
    assert check_compliance("Blast off 🚀", "en-US", NO_RULES, 90).passed
    assert check_compliance("火箭积木来啦🚀", "zh-CN", NO_RULES, 50).passed


@pytest.mark.parametrize(
    "text", ["product: <<Rocket>>", "Rocket <|end|>", "task: push\nGreat rocket"]
)
def test_echoed_prompt_markup_fails(text: str) -> None:
    assert "prompt_leak" in rules(check_compliance(text, "en-US", NO_RULES, 90))


def test_call_to_action_arrow_is_not_a_leak() -> None:
    assert check_compliance("火箭积木限时特惠，立即抢购>>", "zh-CN", NO_RULES, 50).passed


def test_contains_term_handles_cjk_and_words() -> None:
    assert contains_term("全场包邮", "包邮")
    assert contains_term("Free Shipping!", "free shipping")
    assert not contains_term("Securely", "cure")


def test_unsatisfiable_constraints_are_reported_per_field() -> None:
    constraints = CopyConstraints(
        must_include=("全网最低价", "call 13812345678", "free shipping"),
        banned_terms=("shipping",),
        required_disclaimer="100% guaranteed",
        max_chars=-1,
    )
    problems = validate_constraints(constraints, "zh-CN")
    fields = [field for field, _ in problems]
    assert fields.count("must_include") == 3
    assert "required_disclaimer" in fields and "max_chars" in fields
    assert validate_constraints(CopyConstraints(must_include=("包邮",)), "zh-CN") == []
