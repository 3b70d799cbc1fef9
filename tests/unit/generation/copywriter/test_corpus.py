"""Demo-model corpus: deterministic delexicalised frames over every channel and locale."""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter

from copyloop.demo.catalog import generate_catalog
from copyloop.generation.copywriter import phrases
from copyloop.generation.copywriter.corpus import (
    COVERING_SLOTS,
    build_corpus,
    choose_style,
    write_copy,
)
from copyloop.generation.length import effective_max_chars
from copyloop.generation.prompts import CHANNELS, LOCALES, TONES, render_prompt
from copyloop.generation.prompts.brief import ANGLES
from copyloop.generation.slots import SLOT_RE, fill_slots, frame_slots

FIGURE_RE = re.compile(r"\d|[$€£¥￥%％]|percent|折")


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
    for channel in CHANNELS:  # several angles per channel, not one template
        assert len({e.style for e in corpus if e.brief.channel == channel}) >= 5


def test_frames_never_carry_a_figure_outside_slots() -> None:
    for example in _corpus(1500):
        assert not FIGURE_RE.search(SLOT_RE.sub("", example.copy)), example.copy
    for banks in (phrases.HOOKS, phrases.SHORT_HOOKS):
        for locale in LOCALES:
            for angle in ANGLES:
                for frame in banks[locale][angle]:
                    assert not FIGURE_RE.search(SLOT_RE.sub("", frame)), frame
                    assert COVERING_SLOTS & set(frame_slots(frame)), frame


def test_every_frame_fills_fits_the_limit_and_contains_must_include() -> None:
    corpus = _corpus()
    assert any(e.brief.must_include for e in corpus)
    too_long = 0
    for example in corpus:
        brief = example.brief
        filled = fill_slots(example.copy, brief)
        assert filled is not None, example
        assert COVERING_SLOTS & set(filled.slots), example  # names the item
        limit = effective_max_chars(brief.channel, brief.locale, brief.max_chars)
        too_long += len(filled.text) > limit  # only a hook + must-include that cannot fit
        for phrase in brief.must_include:
            assert phrase.lower() in example.copy.lower(), example
    assert too_long <= 0.03 * len(corpus)


def test_chinese_frames_are_chinese_and_english_frames_are_not() -> None:
    def has_han(text: str) -> bool:
        return any("\u4e00" <= ch <= "\u9fff" for ch in text)

    corpus = _corpus()
    zh = [e.copy for e in corpus if e.brief.locale == "zh-CN"]
    en = [e.copy for e in corpus if e.brief.locale == "en-US"]
    assert sum(map(has_han, zh)) >= 0.95 * len(zh)
    assert not any(map(has_han, en))


def test_sms_carries_opt_out_and_urgency_only_when_asked() -> None:
    for example in _corpus():
        if example.brief.channel == "sms":
            assert ("STOP" if example.brief.locale == "en-US" else "退订") in example.copy
        if example.style == "urgency":
            assert example.brief.angle == "urgency"
        if example.brief.angle:
            assert example.style == example.brief.angle


def test_angles_follow_the_segment() -> None:
    brief = next(e.brief for e in _corpus() if e.brief.list_price is not None)
    rng = random.Random(0)

    def counts(segment: str) -> Counter[str]:
        free = dataclasses.replace(brief, angle="", audience_segment=segment, tone="friendly")
        return Counter(choose_style(free, rng) for _ in range(600))

    assert counts("bargain_hunter").most_common(1)[0][0] == "value"
    assert counts("gift_shopper").most_common(1)[0][0] == "gift"
    assert counts("trend_seeker").most_common(1)[0][0] == "novelty"
    assert "urgency" not in counts("")
    value = write_copy(dataclasses.replace(brief, channel="push"), "value", random.Random(1))
    assert {"price", "discount_pct", "list_price", "saving"} & set(frame_slots(value))


def test_frames_are_diverse() -> None:
    corpus = [e for e in _corpus(1500) if e.brief.channel in ("push", "ad_copy")]
    frames = Counter(e.copy for e in corpus)
    assert len(frames) >= 0.8 * len(corpus)
    assert sum(c for _, c in frames.most_common(3)) <= 0.05 * len(corpus)


def test_prompts_are_rendered_by_the_shared_prompt_builder() -> None:
    example = _corpus(5)[0]
    text = render_prompt(example.brief).text
    assert f"task: {example.brief.channel} " in text
    assert f"<<{example.brief.item_title}>>" in text
    assert "slots: {title}" in text


def test_frames_claim_nothing_the_item_does_not_support() -> None:
    """Filled frames pass the claim checker (urgency frames need a promotion: not checked)."""
    from copyloop.generation.claims import ItemFacts, check_claims

    for example in _corpus(400):
        if example.style == "urgency":
            continue
        brief = example.brief
        findings = check_claims(example.filled, ItemFacts.from_brief(brief), brief.locale)
        assert not findings, (example.filled, findings)
