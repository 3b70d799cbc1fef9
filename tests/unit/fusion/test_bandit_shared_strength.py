"""The bandit shares strength: a creative's prior shrinks toward its (segment, angle) lift, every
choice carries its propensity, and with no group data it is plain Thompson sampling."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from copyloop.fusion.bandit import (
    LiftStats,
    SelectionMode,
    VariantArm,
    choose,
    choose_variant,
    group_key,
    lift_posteriors,
    prior_from_prediction,
    thompson_choices,
    thompson_propensities,
    thompson_propensity,
    update,
)


def test_without_groups_the_posterior_mean_is_the_beta_posterior_mean() -> None:
    arm = VariantArm("a", 0.04, impressions=300, clicks=21, expected_clicks=12.0)
    (posterior,) = lift_posteriors([arm], pseudo_count=50)
    beta = update(prior_from_prediction(0.04, 50), 300, 21)
    assert posterior.mean == pytest.approx(beta.mean, rel=0.02)


def test_an_unseen_creative_borrows_its_angle_s_observed_lift() -> None:
    groups = {
        group_key("deal", "value"): LiftStats(2_000, 120, 60.0),  # clicks 2x what was expected
        group_key("deal", "quality"): LiftStats(2_000, 30, 60.0),  # half
    }
    arms = [
        VariantArm("new-value", 0.03, group=group_key("deal", "value")),
        VariantArm("new-quality", 0.03, group=group_key("deal", "quality")),
        VariantArm("no-angle", 0.03),
    ]
    value, quality, plain = (p.mean for p in lift_posteriors(arms, 50, groups, 10.0))
    assert value > plain > quality
    assert value == pytest.approx(0.03 * (10 + 120) / (10 + 60))  # k*lift_g/k: prior is the group
    assert plain == pytest.approx(0.03)
    picks = Counter(
        choose_variant(arms, 50, random.Random(seed), groups, 10.0).creative_id
        for seed in range(400)
    )
    assert picks["new-value"] > 0.6 * 400 and picks["new-quality"] < 0.1 * 400


def test_a_creative_s_own_counts_are_not_counted_twice_in_its_group() -> None:
    key = group_key("deal", "value")
    own = LiftStats(1_000, 60, 30.0)
    arm = VariantArm("only", 0.03, own.impressions, own.clicks, own.expected_clicks, key)
    alone = lift_posteriors([arm], 50, {key: own}, 10.0)[0]
    assert alone.group_mean == pytest.approx(1.0)  # the group holds nothing but this creative
    assert alone.mean == pytest.approx(0.03 * (1.5 + 60) / (1.5 + 30.0))


def test_own_evidence_outweighs_the_group_once_there_is_enough() -> None:
    key = group_key("deal", "value")
    groups = {key: LiftStats(10_000, 600, 300.0)}  # the angle does 2x for this segment
    weak = VariantArm("weak", 0.03, 5_000, 60, 150.0, key)  # but this creative does 0.4x
    (posterior,) = lift_posteriors([weak], 50, groups, 10.0)
    assert posterior.mean < 0.03 * 0.5


def test_thompson_propensity_matches_how_often_the_choice_is_made() -> None:
    groups = {group_key("s", "value"): LiftStats(400, 18, 12.0)}
    arms = [
        VariantArm("a", 0.03, 80, 4, 2.4, group_key("s", "value")),
        VariantArm("b", 0.03, 80, 2, 2.4, group_key("s", "quality")),
        VariantArm("c", 0.028),
    ]
    rng = random.Random(11)
    choices = [choose_variant(arms, 50, rng, groups, 10.0) for _ in range(3_000)]
    counts = Counter(c.creative_id for c in choices)
    for cid in ("a", "b", "c"):
        mean_propensity = sum(c.propensity for c in choices if c.creative_id == cid) / counts[cid]
        assert mean_propensity == pytest.approx(counts[cid] / 3_000, abs=0.05)
    assert all(0 < c.propensity <= 1 for c in choices)
    assert len(choices[0].posterior_means) == 3


def test_choices_for_many_slots_at_once_behave_like_each_slot_alone() -> None:
    """The vectorised round Recommend uses: the same posterior means as `choose_variant`, and
    each slot's choice made as often as `choose_variant` makes it."""
    key = group_key("s", "value")
    groups = {key: LiftStats(400, 30, 12.0)}
    slots = [
        [VariantArm("a", 0.03, 80, 6, 2.4, key), VariantArm("b", 0.03), VariantArm("c", 0.02)],
        [VariantArm("d", 0.04, group=key), VariantArm("e", 0.05, 300, 3, 15.0, key)],
        [VariantArm("f", 0.05)],
    ]
    batched = [thompson_choices(slots, random.Random(s), 50, groups, 10.0) for s in range(3_000)]
    for n, arms in enumerate(slots):
        alone = [choose_variant(arms, 50, random.Random(s), groups, 10.0) for s in range(3_000)]
        assert batched[0][n].posterior_means == pytest.approx(alone[0].posterior_means)
        ours = Counter(b[n].creative_id for b in batched)
        theirs = Counter(c.creative_id for c in alone)
        for arm in arms:
            assert ours[arm.creative_id] / 3_000 == pytest.approx(
                theirs[arm.creative_id] / 3_000, abs=0.04
            )
    assert {b[2].propensity for b in batched} == {1.0}  # a single option is certain
    assert batched[0][0].propensity == 0.0  # left for thompson_propensities
    with pytest.raises(ValueError):
        thompson_choices([[]], random.Random(0))


def test_propensities_of_many_slots_at_once_match_each_slot_alone() -> None:
    """The batched estimate (one vectorised draw for every served item) gives each slot what
    estimating it alone gives: slots do not share rounds or group draws."""
    key = group_key("s", "value")
    groups = {key: LiftStats(400, 30, 12.0)}  # the angle does 2.5x: its arms win more
    slots = [
        ([VariantArm("a", 0.03, 80, 6, 2.4, key), VariantArm("b", 0.03)], "a"),
        ([VariantArm("c", 0.02), VariantArm("d", 0.04), VariantArm("e", 0.03)], "c"),
        ([VariantArm("f", 0.05)], "f"),  # one option: chosen for sure
        ([VariantArm("g", 0.03, group=key), VariantArm("h", 0.03)], "h"),
    ]
    batched = thompson_propensities(slots, random.Random(3), 50, groups, 10.0, draws=20_000)
    alone = [
        thompson_propensity(arms, cid, random.Random(4), 50, groups, 10.0, draws=20_000)
        for arms, cid in slots
    ]
    assert batched == pytest.approx(alone, abs=0.02)
    assert batched[2] == 1.0
    assert batched[0] > 0.6 and batched[3] < 0.4  # the grouped arm's lift shows in each slot
    assert thompson_propensities(slots, random.Random(3), draws=0) == [0.0, 0.0, 1.0, 0.0]


def test_propensity_of_random_greedy_and_a_single_option() -> None:
    arms = [VariantArm(c, 0.02 + i / 100) for i, c in enumerate("abcd")]
    rng = random.Random(0)
    assert choose(SelectionMode.RANDOM, arms, rng).propensity == pytest.approx(0.25)
    greedy = choose(SelectionMode.GREEDY, arms, rng)
    assert greedy.creative_id == "d" and greedy.propensity == 1.0
    assert choose(SelectionMode.THOMPSON, arms[:1], rng).propensity == 1.0


def test_choices_are_reproducible_for_a_seed() -> None:
    groups = {group_key("s", "gift"): LiftStats(100, 5, 3.0)}
    arms = [VariantArm("a", 0.03, group=group_key("s", "gift")), VariantArm("b", 0.031)]
    first = [choose_variant(arms, 50, random.Random(s), groups) for s in range(50)]
    again = [choose_variant(arms, 50, random.Random(s), groups) for s in range(50)]
    assert first == again


def test_no_group_key_without_an_angle() -> None:
    assert group_key("deal", "") == "" and group_key("deal", "value") == "deal|value"
