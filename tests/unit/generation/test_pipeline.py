"""The pipeline from raw LLM outputs to checked, ordered variants, and fallback filling."""

from __future__ import annotations

import dataclasses

import pytest

from copyloop.generation.claims import Promotion
from copyloop.generation.compliance import CopyConstraints, contains_term, find_banned_terms
from copyloop.generation.pipeline import (
    SOURCE_MODEL,
    SOURCE_MODEL_REGENERATED,
    SOURCE_TEMPLATE_FALLBACK,
    PipelineSettings,
    RawOutput,
    clean_model_output,
    fill_with_fallbacks,
    merge_constraints,
    process_variants,
)
from copyloop.generation.prompts import CopyBrief

BRIEF = CopyBrief(
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
ZH_BRIEF = dataclasses.replace(
    BRIEF,
    item_title="银河探索者火箭拼装积木",
    brand="砖艺",
    category_path=("玩具", "拼装积木"),
    price=99.0,
    list_price=129.0,
    currency="CNY",
    selling_points=("420块颗粒", "夜光贴纸"),
    locale="zh-CN",
)
NO_RULES = CopyConstraints()

GOOD = "Blast off with the Galaxy Explorer Rocket Set: 420 pieces of fun!"
GOOD_NEAR_DUP = "Blast off with the Galaxy Explorer Rocket Set: 420 pieces of fun today!"
OTHER = "Brickwell's glow-in-the-dark stickers make bedtime a space adventure."


def test_mixed_outputs_are_checked_ordered_and_explained() -> None:
    raws = [
        RawOutput(GOOD, cumulative_logprob=-10.0, num_output_tokens=20),
        RawOutput(GOOD_NEAR_DUP, cumulative_logprob=-30.0, num_output_tokens=20),
        RawOutput("The #1 rocket set, guaranteed fun!", -5.0, 10),
        RawOutput("", None, 0),
        RawOutput(OTHER, cumulative_logprob=-60.0, num_output_tokens=20),
        RawOutput("product: <<Galaxy Explorer Rocket Set>>", -3.0, 10),
    ]
    result = process_variants(BRIEF, NO_RULES, raws)
    assert [v.raw_index for v in result.variants] == [0, 4]
    assert all(v.source == SOURCE_MODEL and v.compliance.passed for v in result.variants)
    reasons = {r.raw_index: [v.rule for v in r.reasons] for r in result.rejected}
    assert reasons[1] == ["duplicate"]
    assert set(reasons[2]) == {"banned_term"}
    assert reasons[3] == ["empty"]
    assert "prompt_leak" in reasons[5]
    assert [r.raw_index for r in result.rejected] == [1, 2, 3, 5]
    dup = next(r for r in result.rejected if r.raw_index == 1)
    assert "raw #0" in dup.reasons[0].detail  # the better one of the pair survives
    assert result.shortfall(3) == 1 and result.shortfall(2) == 0


def test_variants_are_ordered_by_quality_and_report_every_part() -> None:
    raws = [RawOutput(OTHER, -60.0, 20), RawOutput(GOOD, -4.0, 20)]
    result = process_variants(BRIEF, NO_RULES, raws)
    assert [v.raw_index for v in result.variants] == [1, 0]
    best = result.variants[0]
    assert best.quality.overall >= result.variants[1].quality.overall
    assert best.quality.fluency == pytest.approx(0.95) and best.quality.mean_logprob == -0.2
    assert best.coverage.product_covered and best.coverage.covered_selling_points == ["420 pieces"]
    assert best.length is not None and not best.length.truncated


def test_regenerated_outputs_are_marked() -> None:
    raws = [RawOutput("#1 rocket", attempt=0), RawOutput(GOOD, -10.0, 20, attempt=1)]
    result = process_variants(BRIEF, NO_RULES, raws)
    assert [v.source for v in result.variants] == [SOURCE_MODEL_REGENERATED]
    assert result.rejected[0].source == SOURCE_MODEL


def test_long_output_is_cut_leaving_room_for_the_disclaimer() -> None:
    constraints = CopyConstraints(required_disclaimer="T&Cs apply")
    text = (
        "Blast off with the Galaxy Explorer Rocket Set, 420 pieces and glow-in-the-dark stickers!"
        " Now $19.99."
    )
    assert len(text.split("!")[0]) + len(". T&Cs apply") > 90  # a plain cut at 90 would not do
    result = process_variants(BRIEF, constraints, [RawOutput(text, -10.0, 30)])
    variant = result.variants[0]
    assert variant.text == "Blast off with the Galaxy Explorer Rocket Set. T&Cs apply"
    assert variant.compliance.disclaimer_added and variant.length.cut_at == "clause"
    assert len(variant.text) <= result.max_chars == 90


def test_chinese_output_is_cut_at_punctuation() -> None:
    text = (
        "银河探索者火箭拼装积木来啦，420块颗粒，夜光贴纸点亮太空梦，现价99元，"
        "快来抢购吧，错过再等一年哦！"
    )
    constraints = CopyConstraints(required_disclaimer="以页面为准")
    result = process_variants(ZH_BRIEF, constraints, [RawOutput(text, -8.0, 30)])
    variant = result.variants[0]
    assert (
        variant.text
        == "银河探索者火箭拼装积木来啦，420块颗粒，夜光贴纸点亮太空梦，现价99元，快来抢购吧。"
        "以页面为准"
    )
    assert len(variant.text) <= 50


def test_disclaimer_that_cannot_fit_rejects_the_output() -> None:
    constraints = CopyConstraints(
        required_disclaimer="Offer valid while supplies last, see store for terms", max_chars=40
    )
    result = process_variants(BRIEF, constraints, [RawOutput(GOOD, -5.0, 10)])
    assert result.variants == []
    assert [v.rule for v in result.rejected[0].reasons] == ["disclaimer"]


def test_personal_data_is_redacted_but_the_rest_survives() -> None:
    raw = RawOutput("Galaxy Explorer Rocket Set, 420 pieces! Call 555-123-4567 now.", -10.0, 20)
    result = process_variants(BRIEF, NO_RULES, [raw])
    variant = result.variants[0]
    assert variant.text == "Galaxy Explorer Rocket Set, 420 pieces!"
    assert [r.kind for r in variant.compliance.redactions] == ["phone"]


def test_output_that_names_nothing_of_the_item_is_rejected_for_coverage() -> None:
    generic = "Something fun for the whole family!"
    result = process_variants(BRIEF, NO_RULES, [RawOutput(generic, -2.0, 8)])
    assert [v.rule for v in result.rejected[0].reasons] == ["coverage"]
    relaxed = process_variants(
        BRIEF, NO_RULES, [RawOutput(generic)], PipelineSettings(min_coverage=0.0)
    )
    assert len(relaxed.variants) == 1


def test_unsupported_claims_and_ill_words_are_rejected_with_the_claim_named() -> None:
    raws = [
        RawOutput("Galaxy Explorer Rocket Set at half price!"),
        RawOutput("Galaxy Explorer Rocket Set: free shipping today only!"),
        RawOutput("Galaxy Explorer Rocket Set is awful and cheap junk."),
        RawOutput(GOOD),
    ]
    result = process_variants(BRIEF, NO_RULES, raws)
    assert [v.raw_index for v in result.variants] == [3]
    rules = {r.raw_index: {v.rule for v in r.reasons} for r in result.rejected}
    assert rules[0] == {"claim"} and rules[1] == {"claim"}
    assert "sentiment" in rules[2] or "banned_term" in rules[2]
    assert -1 <= result.variants[0].sentiment <= 1


def test_a_promotion_supports_what_the_item_alone_does_not() -> None:
    text = "Galaxy Explorer Rocket Set ships free this week."
    assert process_variants(BRIEF, NO_RULES, [RawOutput(text)]).variants == []
    promo = Promotion(offers=("free_shipping",))
    assert len(process_variants(BRIEF, NO_RULES, [RawOutput(text)], promotion=promo).variants) == 1


def test_brief_and_request_constraints_are_merged() -> None:
    brief = dataclasses.replace(BRIEF, must_include=("free shipping",), max_chars=70)
    constraints = CopyConstraints(
        must_include=("Brickwell",), banned_terms=("cheap",), max_chars=80
    )
    merged = merge_constraints(brief, constraints)
    assert merged.must_include == ("Brickwell", "free shipping") and merged.max_chars == 70
    raws = [
        RawOutput("Brickwell's Galaxy Explorer Rocket Set with free shipping!"),
        RawOutput("Galaxy Explorer Rocket Set with free shipping!"),
        RawOutput("Cheap Brickwell Galaxy Explorer Rocket Set, free shipping"),
    ]
    result = process_variants(brief, constraints, raws)
    assert [v.raw_index for v in result.variants] == [0]
    reasons = {r.raw_index: {(v.rule, v.detail) for v in r.reasons} for r in result.rejected}
    assert reasons[1] == {("must_include", "Brickwell")}
    assert reasons[2] == {("request_banned_term", "cheap")}


def test_near_duplicates_of_existing_creatives_are_rejected() -> None:
    raws = [RawOutput(GOOD), RawOutput(OTHER)]
    result = process_variants(BRIEF, NO_RULES, raws, existing_texts=[GOOD + "!"])
    assert [v.raw_index for v in result.variants] == [1]
    assert "existing #0" in result.rejected[0].reasons[0].detail


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('Copy: "Blast off!"<|end|>', "Blast off!"),
        ("“银河火箭来啦！”", "银河火箭来啦！"),
        ("1. Blast off today", "Blast off today"),
        ("文案：银河火箭", "银河火箭"),
        ('"Fun" rockets and "more"', '"Fun" rockets and "more"'),
        ("<|assistant|>\nBlast off </s>", "Blast off"),
    ],
)
def test_model_wrapping_is_cleaned(raw: str, clean: str) -> None:
    assert clean_model_output(raw) == clean


def test_invalid_brief_is_rejected() -> None:
    with pytest.raises(ValueError, match="channel"):
        process_variants(dataclasses.replace(BRIEF, channel="fax"), NO_RULES, [RawOutput(GOOD)])


def test_pipeline_is_deterministic() -> None:
    raws = [
        RawOutput(GOOD, -10.0, 20),
        RawOutput(OTHER, -12.0, 20),
        RawOutput(GOOD_NEAR_DUP, -11.0, 20),
    ]
    first = process_variants(BRIEF, NO_RULES, raws)
    second = process_variants(BRIEF, NO_RULES, list(raws))
    assert first == second


# --- fallbacks ------------------------------------------------------------------------------


def test_fill_with_fallbacks_tops_up_after_model_variants() -> None:
    constraints = CopyConstraints(must_include=("free shipping",))
    raws = [
        RawOutput("Galaxy Explorer Rocket Set with free shipping!", -5.0, 10),
        RawOutput("#1 rocket"),
    ]
    result = fill_with_fallbacks(process_variants(BRIEF, constraints, raws), BRIEF, wanted=3)
    assert [v.source for v in result.variants] == [SOURCE_MODEL] + [SOURCE_TEMPLATE_FALLBACK] * 2
    fallbacks = result.variants[1:]
    assert len({v.text for v in result.variants}) == 3
    for variant in fallbacks:
        assert variant.compliance.passed and variant.quality.fluency is None
        assert variant.raw_index is None and variant.template
        assert contains_term(variant.text, "free shipping") and len(variant.text) <= 90
    assert len(result.rejected) == 1  # the rejected output is still explained


def test_fill_is_a_no_op_when_enough_variants() -> None:
    result = process_variants(BRIEF, NO_RULES, [RawOutput(GOOD), RawOutput(OTHER)])
    assert fill_with_fallbacks(result, BRIEF, wanted=2) is result


@pytest.mark.parametrize("brief", [BRIEF, ZH_BRIEF], ids=["en", "zh"])
@pytest.mark.parametrize("channel", ["push", "promo_banner", "sms", "email_subject"])
def test_all_outputs_failing_still_yields_compliant_fallbacks(
    brief: CopyBrief, channel: str
) -> None:
    brief = dataclasses.replace(brief, channel=channel)
    disclaimer = "T&Cs apply" if brief.locale == "en-US" else "以页面为准"
    constraints = CopyConstraints(required_disclaimer=disclaimer)
    bad = [RawOutput("最好的火箭，全网第一！"), RawOutput("The #1 miracle rocket, guaranteed!")]
    result = process_variants(brief, constraints, bad)
    assert result.variants == [] and result.shortfall(2) == 2
    filled = fill_with_fallbacks(result, brief, wanted=2)
    assert [v.source for v in filled.variants] == [SOURCE_TEMPLATE_FALLBACK] * 2
    for variant in filled.variants:
        assert variant.compliance.passed and not find_banned_terms(variant.text, brief.locale)
        assert len(variant.text) <= filled.max_chars and variant.text.endswith(disclaimer)


def test_caller_loop_regenerate_then_fill() -> None:
    """The servicer's loop: first batch, regenerate the shortfall, then fall back."""
    wanted = 3
    first = [RawOutput("#1 rocket ever"), RawOutput(GOOD, -8.0, 20)]
    result = process_variants(BRIEF, NO_RULES, first)
    assert result.shortfall(wanted) == 2
    regenerated = [
        RawOutput(GOOD_NEAR_DUP, -9.0, 20, attempt=1),
        RawOutput(OTHER, -9.0, 20, attempt=1),
    ]
    result = process_variants(BRIEF, NO_RULES, first + regenerated)
    assert [v.source for v in result.variants] == [SOURCE_MODEL, SOURCE_MODEL_REGENERATED]
    result = fill_with_fallbacks(result, BRIEF, wanted)
    assert [v.source for v in result.variants][-1] == SOURCE_TEMPLATE_FALLBACK
    assert len(result.variants) == wanted


# --- slot frames ------------------------------------------------------------------------------


def test_frames_are_filled_before_the_checks() -> None:
    brief = dataclasses.replace(BRIEF, angle="value")
    frame = "{discount_pct} off {title}! Now {price}."
    result = process_variants(brief, NO_RULES, [RawOutput(frame)])
    variant = result.variants[0]
    assert variant.text == "33% off Galaxy Explorer Rocket Set! Now $19.99."
    assert variant.frame == frame and variant.angle == "value"
    assert variant.slots == ("discount_pct", "title", "price")
    assert variant.coverage.product_covered


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("{discount_pct} off {title}", "slot"),  # no discount on this item
        ("{title} by {brand}", "slot"),  # no brand
        ("{titel}, now {price}", "slot"),  # unknown slot
        ("{title}: just $32!", "raw_number"),  # an invented price
        ("{title}, 50% off today", "raw_number"),
    ],
)
def test_unfillable_frames_and_invented_figures_are_rejected(raw: str, rule: str) -> None:
    brief = dataclasses.replace(BRIEF, list_price=None, brand="")
    result = process_variants(brief, NO_RULES, [RawOutput(raw)])
    assert not result.variants
    assert [v.rule for v in result.rejected[0].reasons] == [rule]


def test_plain_text_passes_unchanged_and_states_true_figures() -> None:
    text = "Galaxy Explorer Rocket Set, now $19.99 (was $29.99)."
    result = process_variants(BRIEF, NO_RULES, [RawOutput(text)])
    assert result.variants[0].text == text
    assert result.variants[0].frame == text and result.variants[0].slots == ()


def test_one_variant_per_frame_even_when_the_facts_differ() -> None:
    raws = [
        RawOutput("Meet the {title}: {point1}, made for little builders.", -4.0, 12),
        RawOutput("Meet the {title}: {point2}, made for little builders.", -9.0, 12),
        RawOutput("{brand} brings {point2} to bedtime adventures.", -6.0, 10),
    ]
    result = process_variants(BRIEF, NO_RULES, raws)
    frames = [v.frame for v in result.variants]
    assert len(frames) == len(set(frames)) == 2
    same = [r for r in result.rejected if "same frame" in r.reasons[0].detail]
    assert len(same) == 1


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Galaxy Explorer Rocket Set. Reply STOP to opt out. Reply STOP to opt out.", "repetition"),
        ("Galaxy Explorer Rocket Set！Galaxy Explorer Rocket Set！", "repetition"),
        (
            "Galaxy Explorer Rocket Set is what Galaxy Explorer Rocket Set does, "
            "Galaxy Explorer Rocket Set",
            "repetition",
        ),
        ("Galaxy Explorer Rocket Set makes every day Galaxy Explorer Rocket Set!", "repetition"),
        # The short name is the name too: the line names the product twice.
        (
            "Galaxy Explorer Rocket Set! Yours for $19.99. Why wait? Explorer Rocket Set!",
            "repetition",
        ),
        ("Galaxy Explorer Rocket Set for just\ufffd420 pieces", "encoding"),
        ("Rocket fun: just $19.99. Your cart is what $19.99.", "repetition"),
    ],
)
def test_copy_no_marketer_would_publish_is_rejected(text: str, rule: str) -> None:
    result = process_variants(BRIEF, NO_RULES, [RawOutput(text)])
    assert result.variants == []
    assert [v.rule for v in result.rejected[0].reasons] == [rule]


def test_the_name_counts_without_its_variant() -> None:
    from dataclasses import replace

    from copyloop.generation.pipeline import unreadable_reason

    brief = replace(BRIEF, item_title="Endurance Bike Helmet, White")
    text = "Endurance Bike Helmet! Just Endurance Bike Helmet at Endurance Bike Helmet is calling!"
    found = unreadable_reason(text, brief)
    assert found is not None and found.rule == "repetition"
    assert unreadable_reason("Endurance Bike Helmet, White: now $17.99.", brief) is None
    long = (
        "Meet Endurance Bike Helmet. Light and vented, it keeps long summer rides cool, and its "
        "bright shell is easy to see at dusk. Endurance Bike Helmet, now $17.99."
    )
    assert len(long) > 100 and unreadable_reason(long, brief) is None


def test_a_long_line_cut_to_a_one_liner_is_checked_as_one() -> None:
    """Checked again after the length fit: what is shown must pass, not what was written."""
    from dataclasses import replace

    long = (
        "Galaxy Explorer Rocket Set: just $19.99. Only $19.99 for rocket fun that every young "
        "builder in the family will love for years of play."
    )
    assert len(long) > 100
    short = replace(BRIEF, max_chars=90)  # cut to 86 characters, both prices kept
    result = process_variants(short, NO_RULES, [RawOutput(long)])
    assert result.variants == []
    assert [v.rule for v in result.rejected[0].reasons] == ["repetition"]
