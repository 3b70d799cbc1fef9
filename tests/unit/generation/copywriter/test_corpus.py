"""Demo-model corpus: deterministic, covers every channel and locale, obeys the brief."""

from __future__ import annotations

import random
from collections import Counter

from copyloop.demo.catalog import generate_catalog
from copyloop.generation.copywriter.corpus import build_corpus, choose_style, write_copy
from copyloop.generation.copywriter.phrases import STYLES
from copyloop.generation.length import effective_max_chars
from copyloop.generation.prompts import CHANNELS, LOCALES, TONES, render_prompt


def _corpus(n: int = 700, seed: int = 0):
    return build_corpus(generate_catalog(48, seed=7), n, seed=seed)


def test_same_seed_same_corpus_other_seed_differs() -> None:
    assert _corpus(200, seed=1) == _corpus(200, seed=1)
    assert [e.copy for e in _corpus(200, seed=1)] != [e.copy for e in _corpus(200, seed=2)]


def test_every_channel_locale_pair_and_tone_is_covered_evenly() -> None:
    corpus = _corpus()
    pairs = Counter((e.brief.channel, e.brief.locale) for e in corpus)
    assert set(pairs) == {(c, loc) for c in CHANNELS for loc in LOCALES}
    assert max(pairs.values()) - min(pairs.values()) <= 1
    assert {e.brief.tone for e in corpus} == set(TONES)
    for channel in CHANNELS:  # several styles per channel, not one template
        assert len({e.style for e in corpus if e.brief.channel == channel}) >= 4


def test_copy_fits_limit_and_contains_must_include() -> None:
    corpus = _corpus()
    assert any(e.brief.must_include for e in corpus)
    for example in corpus:
        brief = example.brief
        assert example.copy.strip()
        assert len(example.copy) <= effective_max_chars(
            brief.channel, brief.locale, brief.max_chars
        ), example
        for phrase in brief.must_include:
            assert phrase.lower() in example.copy.lower(), example


def test_chinese_copy_is_chinese_and_english_copy_is_not() -> None:
    def has_han(text: str) -> bool:
        return any("\u4e00" <= ch <= "\u9fff" for ch in text)

    corpus = _corpus()
    zh = [e.copy for e in corpus if e.brief.locale == "zh-CN"]
    en = [e.copy for e in corpus if e.brief.locale == "en-US"]
    assert sum(map(has_han, zh)) >= 0.95 * len(zh)
    assert not any(map(has_han, en))


def test_sms_carries_opt_out_and_discount_style_needs_a_discount() -> None:
    corpus = _corpus()
    for example in corpus:
        if example.brief.channel == "sms":
            assert (
                ("STOP" in example.copy)
                if example.brief.locale == "en-US"
                else ("退订" in example.copy)
            )
        if example.style == "discount":
            assert example.brief.list_price is not None
            assert example.brief.list_price > example.brief.price


def test_styles_follow_tone_and_audience_odds() -> None:
    brief = next(e.brief for e in _corpus() if e.brief.list_price is not None)
    rng = random.Random(0)
    urgent = Counter(
        choose_style(
            brief.__class__(**{**brief.__dict__, "tone": "urgent", "audience_segment": ""}), rng
        )
        for _ in range(600)
    )
    assert urgent.most_common(1)[0][0] == "urgency"
    assert set(urgent) <= set(STYLES)
    copy = write_copy(brief, "discount", random.Random(1))
    assert "%" in copy or "折" in copy or "was" in copy or "原价" in copy or "省" in copy


def test_prompts_are_rendered_by_the_shared_prompt_builder() -> None:
    example = _corpus(5)[0]
    text = render_prompt(example.brief).text
    assert f"task: {example.brief.channel}" in text
    assert f"<<{example.brief.item_title}>>" in text
