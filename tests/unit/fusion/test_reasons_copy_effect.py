"""The content-effect model in fusion: its copy quality tilts the prior of one item's copies
(and is washed out by the copy's own clicks), and a material predicted gain is a reason."""

from __future__ import annotations

import math
import random

import pytest

from copyloop.fusion import bandit
from copyloop.fusion.reasons import ReasonConfig, ReasonEvidence, reasons_for
from copyloop.v1.prediction_pb2 import CandidateScore


def _q(ratio: float) -> float:
    """The copy quality of a copy predicted to draw `ratio` x a typical copy's clicks."""
    return ratio / (1.0 + ratio)


def test_multipliers_are_centred_on_the_item_and_capped() -> None:
    m = bandit.copy_effect_multipliers([_q(1.1), _q(1.0), _q(1.0 / 1.1)])
    assert m == pytest.approx([1.1, 1.0, 1.0 / 1.1])
    assert math.prod(m) == pytest.approx(1.0)  # the item's copies tilt, the item does not move
    wide = bandit.copy_effect_multipliers([_q(3.0), _q(1.0 / 3.0)])
    assert wide == pytest.approx([bandit.COPY_EFFECT_MAX, 1.0 / bandit.COPY_EFFECT_MAX])


def test_no_model_or_a_degraded_score_is_neutral() -> None:
    assert bandit.copy_effect_multipliers([0.5, 0.5, 0.5]) == [1.0, 1.0, 1.0]
    assert bandit.copy_effect_multipliers([0.0, 0.0]) == [1.0, 1.0]  # prior scores carry 0
    assert bandit.copy_effect_multipliers([_q(1.2)]) == [1.0]  # one copy: nothing to compare
    # a copy without a quality stays neutral; the others are compared among themselves
    assert bandit.copy_effect_multipliers([_q(1.2), 0.0, _q(1.0)]) == pytest.approx(
        [math.sqrt(1.2), 1.0, 1.0 / math.sqrt(1.2)]
    )
    assert bandit.copy_effect(0.5, [0.5, 0.5]) == pytest.approx(0.0)
    assert bandit.copy_effect(0.0, [0.6]) == 0.0


def test_the_tilt_moves_the_copy_choice_and_data_washes_it_out() -> None:
    arms = [bandit.VariantArm("a", 0.02), bandit.VariantArm("b", 0.02)]
    tilted = bandit.with_copy_effect(arms, [_q(1.2), _q(1.0)])
    assert tilted[0].p_ctr > tilted[1].p_ctr
    picks = [
        bandit.choose_variant(tilted, 50.0, random.Random(seed), propensity_draws=0).creative_id
        for seed in range(300)
    ]
    assert picks.count("a") > picks.count("b")
    greedy = bandit.choose(bandit.SelectionMode.GREEDY, tilted, random.Random(0))
    assert greedy.creative_id == "a"
    # after plenty of data that says both copies draw the same 2%, the tilt is gone: expected
    # clicks are scaled with the prior, so the lift is measured against the tilted pCTR
    seen = [bandit.VariantArm(a.creative_id, 0.02, 200_000, 4_000, 4_000.0) for a in arms]
    washed = bandit.with_copy_effect(seen, [_q(1.2), _q(1.0)])
    means = [p.mean for p in bandit.lift_posteriors(washed)]
    assert means[0] == pytest.approx(means[1], rel=0.005)
    assert means[0] == pytest.approx(0.02, rel=0.005)
    with pytest.raises(ValueError):
        bandit.with_copy_effect(arms, [0.5])


def test_copy_effect_is_the_predicted_gain_over_the_other_copies() -> None:
    assert bandit.copy_effect(_q(1.1), [_q(1.0)]) == pytest.approx(0.10)
    scores = [CandidateScore(copy_quality=_q(1.1)), CandidateScore(copy_quality=_q(1.1))]
    # the chosen score is left out by identity, not by value: an equal twin still counts
    assert bandit.copy_effect_among(scores[0], scores) == pytest.approx(0.0)
    scores.append(CandidateScore(copy_quality=_q(1.1 / 1.2)))
    assert bandit.copy_effect_among(scores[0], scores) == pytest.approx(math.sqrt(1.2) - 1)
    assert bandit.copy_effect(_q(1.0), [_q(1.1), _q(1.0 / 1.1)]) == pytest.approx(0.0)
    assert bandit.copy_effect(_q(1.0), [_q(1.25)]) == pytest.approx(-0.2)


BASE = ReasonEvidence(item_category="Toys", item_price=40.0)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en-US", "this wording is predicted to beat the item's other copy (+8% clicks)"),
        ("zh-CN", "这条文案预计比该商品的其他文案多8%的点击"),
    ],
)
def test_a_material_predicted_gain_is_a_reason(locale: str, expected: str) -> None:
    evidence = ReasonEvidence(item_category="Toys", item_price=40.0, copy_effect=0.08)
    assert reasons_for(evidence, locale=locale) == [expected]


def test_no_model_a_small_or_a_negative_effect_is_no_reason() -> None:
    for effect in (0.0, 0.049, -0.2):
        evidence = ReasonEvidence(item_category="Toys", item_price=40.0, copy_effect=effect)
        assert reasons_for(evidence) == []
    assert reasons_for(BASE) == []
    lenient = ReasonConfig(min_copy_effect=0.01)
    small = ReasonEvidence(item_category="T", copy_effect=0.02)
    assert len(reasons_for(small, config=lenient)) == 1


def test_it_ranks_after_the_shopper_specific_reasons() -> None:
    evidence = ReasonEvidence(
        item_category="Toys",
        item_brand="Acme",
        item_price=40.0,
        item_list_price=50.0,
        user_top_brands=[("Acme", 0.3)],
        user_top_categories=[("Toys", 0.4)],
        copy_effect=0.12,
    )
    reasons = reasons_for(evidence, limit=5)
    assert reasons[:3] == [
        "from Acme, a brand you like",
        "matches your interest in Toys",
        "this wording is predicted to beat the item's other copy (+12% clicks)",
    ]
    assert reasons[3] == "20% off"
