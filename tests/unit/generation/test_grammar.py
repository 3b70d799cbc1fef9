"""The grammar gate: copy must read as sentences. Slot frames in the demo copywriter's language
are held to its frame grammar (every run of three tokens, or a short sentence whole, must be
one the grammar writes); every text, plain or slotted, English or Chinese, to the sentence-shape
rules. The corpus the copywriter learns from must pass it, spliced sentences must not."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from copyloop.demo.catalog import generate_catalog
from copyloop.generation.compliance import CopyConstraints
from copyloop.generation.copywriter.corpus import build_corpus
from copyloop.generation.grammar import (
    frame_grammar,
    grammar_problems,
    item_facts,
    shape_problems,
)
from copyloop.generation.pipeline import (
    SOURCE_TEMPLATE_FALLBACK,
    RawOutput,
    fill_with_fallbacks,
    process_variants,
)
from copyloop.generation.prompts import CopyBrief
from copyloop.generation.review import review_copy

EN = CopyBrief(
    item_title="Classic Ground Coffee",
    brand="Hearthly",
    category_path=("Grocery", "Coffee & Tea"),
    price=9.99,
    list_price=12.99,
    currency="USD",
    selling_points=("small-batch roast", "resealable bag"),
    attributes=(),
    channel="push",
    locale="en-US",
    tone="friendly",
)
ZH = dataclasses.replace(EN, locale="zh-CN")


def _locale(frame: str) -> str:
    return "zh-CN" if any("\u4e00" <= ch <= "\u9fff" for ch in frame) else "en-US"


# Lines a marketer would publish: grammar sentences, recombinations where the grammar's
# sentences share words, and frames outside the grammar's vocabulary (a production model's),
# which only the shape rules judge.
GOOD = [
    "Meet {title}! Only {price}. Your cart is calling!",
    "{brand}: Save {discount_pct} on {title}. Reply STOP to opt out.",
    "Here's why shoppers pick {title}.",
    "{title}, now {price}.",
    "{discount_pct} off {title}! Now {price}.",
    "Gift idea: {title}. Yours for {price}.",
    "Have you seen {title} yet?",
    "The {title} everyone is asking about.",
    "Solid, simple, yours: {title}.",
    "🎉 Meet {title}! Just {price}. #newin #justlanded",
    "{title}: {point1} and {point2}. Shop now!",
    "{title}: a {point1} that keeps you cool.",  # not the grammar's words: shape rules only
    "Meet the {title}: {point1}, made for little builders.",
    "{brand} brings {point2} to bedtime adventures.",
    "Grab yours now!",
    "What are you waiting for?",
    "【{brand}】{title}仅需{price}。立即抢购！",
    "大家都在看的{title}。到手价{price}。快来看看吧～",
    "送礼好选择：{title}。",
    "{title}直降{discount_pct}，现价{price}。",
    "你见过{title}吗？快来看看吧～",
    "{title}，{point1}，{point2}。查看详情。",
    "🎁 把{title}送给重要的人。#送礼",
]

# Spliced or broken lines: what a small model sampling sub-word tokens writes.
BAD = [
    "Watch what {title}! Shop now.",
    "Learn more with {price}.",
    "Grab yours details.",
    "{brand} fans.",
    "What happens when {title}: {price}.",
    "{brand} fans. Discover it to {price}.",
    "Now {title} is what {price}.",
    "Ever like {title}!",
    "Save {discount_pct} on.",
    "Meet the the {title}.",
    "Gift idea: {title} and.",
    "{brand}: W new in {category} seriously.",
    "Treat someone to the.",
    "{title}, now {price}, .",
    "Shop now. ,{title}.",
    "Yours {title} today.",
    "Only {price} with your.",
    "Discover {title} from from {brand}.",
    "Just in: {title} by.",
    "{title}立减。",
    "把{title}送给。",
    "的{title}，现价{price}。",
    "{title}和和{brand}。",
    "{title}，，现价{price}。",
    "{title}现价现价{price}。",
    "送礼好{title}选择。",
    "大家都在{title}看的。",
    "{title}，让每天更。",
    "新发现{title}吗！",
]


@pytest.mark.parametrize("frame", GOOD)
def test_lines_a_marketer_would_publish_pass(frame: str) -> None:
    assert grammar_problems(frame, _locale(frame)) == []


@pytest.mark.parametrize("frame", BAD)
def test_spliced_or_broken_lines_fail(frame: str) -> None:
    assert grammar_problems(frame, _locale(frame)) != []


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("Watch the Galaxy Rocket lift off with the.", "en-US"),
        ("Grab yours details today.", "en-US"),
        ("Our best coffee yet , roasted fresh.", "en-US"),
        ("Roasted fresh and and sealed tight.", "en-US"),
        ("Better than.", "en-US"),
        ("Glowlab: W new in Coffee & Tea seriously.", "en-US"),
        ("经典研磨咖啡，把。", "zh-CN"),
        ("的经典研磨咖啡上新了。", "zh-CN"),
        ("经典研磨咖啡，。现价9.99美元", "zh-CN"),
    ],
)
def test_shape_rules_catch_broken_plain_text(text: str, locale: str) -> None:
    assert shape_problems(text, locale) != []


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("Our best coffee yet, roasted fresh and sealed tight.", "en-US"),
        ("The mug everyone is asking about.", "en-US"),  # a stranded preposition is English
        ("Yes, it is. Here's why.", "en-US"),
        ("Yours for $9.99 — what are you waiting for?", "en-US"),
        ("Go, go, go! 🚀", "en-US"),
        ("{brand}'s best, from the 1990s to 5x faster.", "en-US"),
        ("经典研磨咖啡，小批量烘焙，现价9.99美元。", "zh-CN"),
        ("品质是看得见的。了解更多参数。", "zh-CN"),
        ("试试看看，好好享受每一天！", "zh-CN"),
    ],
)
def test_shape_rules_leave_plain_copy_alone(text: str, locale: str) -> None:
    assert shape_problems(text, locale) == []


def test_every_frame_the_corpus_writes_passes() -> None:
    """The copywriter learns only these: a gate that refused them would refuse its best."""
    corpus = build_corpus(generate_catalog(24, seed=3), 1500, seed=5)
    failing = [
        (e.copy, problems)
        for e in corpus
        if (problems := grammar_problems(e.copy, e.brief.locale, shop_terms=e.brief.must_include))
    ]
    assert failing == []


def test_facts_typed_out_count_as_their_slot() -> None:
    # The model copied the name instead of writing {title}: still a grammar sentence.
    frame = "Meet Classic Ground Coffee! Only {price}."
    assert grammar_problems(frame, "en-US", item_facts(EN)) == []
    spliced = "Watch what Classic Ground Coffee! Only {price}."
    assert grammar_problems(spliced, "en-US", item_facts(EN)) != []


def test_plain_text_is_held_to_the_shape_rules_only() -> None:
    # A production model writes plain copy in its own words: no grammar of ours describes it.
    assert grammar_problems("Hearthly's Classic Ground Coffee, fresh as ever!", "en-US") == []
    assert grammar_problems("Hearthly's Classic Ground Coffee, fresh as the!", "en-US") != []


def test_a_fact_made_of_the_grammars_words_is_not_taken_out() -> None:
    brief = dataclasses.replace(EN, selling_points=("fast",))
    assert grammar_problems("Meet {title}. Act fast!", "en-US", item_facts(brief)) == []


def test_the_shops_terms_are_not_judged_by_the_grammar() -> None:
    frame = "Meet {title}! Free gift wrap. Only {price}."
    assert grammar_problems(frame, "en-US", shop_terms=("free gift wrap",)) == []
    assert grammar_problems("认识一下{title}，包邮到家。", "zh-CN", shop_terms=("包邮到家",)) == []


def test_the_grammar_has_both_locales() -> None:
    grammar = frame_grammar()
    assert grammar.speaks("Meet {title}!", "en-US") and grammar.speaks("认识一下{title}。", "zh-CN")
    assert not grammar.speaks("Meet {title}, little builders!", "en-US")


def test_the_pipeline_rejects_a_broken_frame_as_grammar_and_keeps_the_good_one() -> None:
    raws = [
        RawOutput("Watch what {title}! Learn more with {price}."),
        RawOutput("{discount_pct} off {title}! Only {price}."),
    ]
    result = process_variants(EN, CopyConstraints(), raws)
    assert [v.raw_index for v in result.variants] == [1]
    assert result.variants[0].text == "23% off Classic Ground Coffee! Only $9.99."
    (rejected,) = result.rejected
    assert rejected.raw_index == 0 and [v.rule for v in rejected.reasons] == ["grammar"]


def test_a_zh_broken_frame_is_rejected_too() -> None:
    raws = [RawOutput("送礼好{title}选择。"), RawOutput("送礼好选择：{title}。")]
    result = process_variants(ZH, CopyConstraints(), raws)
    assert [v.text for v in result.variants] == ["送礼好选择：Classic Ground Coffee。"]
    assert [v.rule for r in result.rejected for v in r.reasons] == ["grammar"]


def test_a_regenerated_frame_replaces_a_broken_one_else_a_template_does() -> None:
    broken = RawOutput("Hearthly fans. Discover it to {price}.")
    only_broken = process_variants(EN, CopyConstraints(), [broken])
    assert only_broken.variants == [] and only_broken.shortfall(1) == 1
    filled = fill_with_fallbacks(only_broken, EN, 1)
    assert [v.source for v in filled.variants] == [SOURCE_TEMPLATE_FALLBACK]
    regenerated = RawOutput("Save {discount_pct} on {title}.", attempt=1)
    again = process_variants(EN, CopyConstraints(), [broken, regenerated])
    assert [v.raw_index for v in again.variants] == [1]


def test_review_copy_reports_broken_sentences_as_grammar_findings() -> None:
    review = review_copy("Grab yours details.", EN, CopyConstraints())
    assert "grammar" in {f.check for f in review.findings} and not review.passed
    fine = review_copy("Classic Ground Coffee, now $9.99.", EN, CopyConstraints())
    assert "grammar" not in {f.check for f in fine.findings}
    # A name with a lone letter is the item's fact, not a stray piece of a word.
    vitamin = dataclasses.replace(EN, item_title="Vitamin C Serum")
    named = review_copy("Vitamin C Serum, now $9.99.", vitamin, CopyConstraints())
    assert "grammar" not in {f.check for f in named.findings}


def test_strict_holds_every_slot_frame_of_the_demo_copywriter_to_the_grammar() -> None:
    """A word outside the grammar lets a frame escape to the shape rules, unless the frame
    comes from the copywriter trained on the grammar (strict): then the runs decide."""
    frame = "Here happens when you! Only {title}."
    assert grammar_problems(frame, "en-US") == []
    assert grammar_problems(frame, "en-US", strict=True)
    assert grammar_problems("Grab {title}!", "en-US", strict=True) == []


def test_only_a_model_with_the_demo_manifest_is_held_strictly(tmp_path: Path) -> None:
    from copyloop.generation.copywriter.phrases import MANIFEST_NAME, trained_on_this_grammar

    assert not trained_on_this_grammar("") and not trained_on_this_grammar(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text('{"recipe": "copywriter-recipe-7"}')
    assert trained_on_this_grammar(tmp_path)
