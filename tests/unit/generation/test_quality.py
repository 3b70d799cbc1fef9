"""The quality score that orders variants: fluency, tone, readability."""

from __future__ import annotations

import pytest

from copyloop.generation.quality import (
    QualityWeights,
    fluency_score,
    quality_score,
    readability_score,
    tone_score,
)


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
