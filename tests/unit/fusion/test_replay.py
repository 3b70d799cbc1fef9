"""Replay of logged A/B tests through the bandit: oracle share, priors, determinism."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from copyloop.fusion import bandit
from copyloop.fusion.replay import (
    EQUAL_SPLIT,
    Policy,
    ReplayArm,
    ReplayTest,
    replay,
    replay_test,
)


def _tests(
    count: int, ctrs: Sequence[float], prior: Sequence[float] | None = None
) -> list[ReplayTest]:
    """`count` copies of one test; `prior` None = every arm guessed at the mean CTR."""
    guess = prior or [sum(ctrs) / len(ctrs)] * len(ctrs)
    return [
        ReplayTest(
            f"t{n}",
            tuple(
                ReplayArm(f"a{i}", c, p) for i, (c, p) in enumerate(zip(ctrs, guess, strict=True))
            ),
        )
        for n in range(count)
    ]


CTRS = (0.02, 0.05, 0.03)


def test_equal_split_share_is_mean_over_best() -> None:
    result = replay(_tests(5, CTRS), [Policy("random", EQUAL_SPLIT)], 300, [0])["random"]
    assert result.share == pytest.approx((sum(CTRS) / 3) / max(CTRS))
    assert result.tests == 5


def test_bandit_random_mode_is_close_to_mean_over_best() -> None:
    result = replay(_tests(40, CTRS), [Policy("r", bandit.SelectionMode.RANDOM)], 300, [0])["r"]
    assert result.share == pytest.approx((sum(CTRS) / 3) / max(CTRS), abs=0.02)


def test_perfect_strong_prior_approaches_the_oracle_and_a_flat_one_does_not() -> None:
    tests = _tests(10, CTRS, prior=CTRS)
    policies = [
        Policy("perfect", pseudo_count=1e6),
        Policy("flat", pseudo_count=1e6, use_prior=False),
    ]
    results = replay(tests, policies, 500, [0])
    assert results["perfect"].share > 0.99
    # an equally strong but flat prior can hardly learn in 500 impressions: near an equal split
    assert results["flat"].share < 0.8


def test_thompson_learns_a_clear_winner_from_clicks() -> None:
    tests = _tests(10, (0.02, 0.12))
    results = replay(tests, [Policy("ts"), Policy("ab", EQUAL_SPLIT)], 2000, [0, 1])
    assert results["ts"].share > 0.9
    assert results["ab"].share == pytest.approx(0.07 / 0.12)
    assert results["ts"].drawn_share > results["ab"].drawn_share


def test_deterministic_per_seed_with_common_click_draws() -> None:
    test = _tests(1, CTRS)[0]
    first = replay_test(test, Policy("ts"), 400, seed=7)
    assert replay_test(test, Policy("ts"), 400, seed=7) == first
    assert replay_test(test, Policy("ts"), 400, seed=8) != first
    # the oracle sees the same click draws whatever the policy
    other = replay_test(test, Policy("ab", EQUAL_SPLIT), 400, seed=7)
    assert other.oracle_clicks == first.oracle_clicks
    assert sum(first.shows) == 400


def test_fast_thompson_picks_what_bandit_choose_picks() -> None:
    """The replay's Thompson path skips only the propensity rounds, drawn after the choice."""
    arms = [
        bandit.VariantArm("a", 0.02, 300, 6, 6.0),
        bandit.VariantArm("b", 0.03, 200, 7, 6.0),
        bandit.VariantArm("c", 0.025, 50, 1, 1.25),
    ]
    fast, exact = Policy("fast"), Policy("exact", exact_propensity=True)
    picks = set()
    for seed in range(200):
        pick = fast.pick(arms, 0, random.Random(seed))
        assert pick == exact.pick(arms, 0, random.Random(seed))
        picks.add(pick)
    assert picks == {"a", "b", "c"}  # the check covered every arm


@dataclass(frozen=True)
class RecordingPolicy(Policy):
    """A real Thompson policy that also keeps the arms it was shown."""

    seen: list[list[bandit.VariantArm]] = field(default_factory=list, compare=False)
    pooled: list[Mapping[str, bandit.LiftStats] | None] = field(default_factory=list, compare=False)

    def pick(
        self,
        arms: Sequence[bandit.VariantArm],
        step: int,
        rng: random.Random,
        groups: Mapping[str, bandit.LiftStats] | None = None,
    ) -> str:
        self.seen.append(list(arms))
        self.pooled.append(groups)
        return super().pick(arms, step, rng, groups)


def test_counts_passed_to_the_bandit_are_what_was_served() -> None:
    test = _tests(1, CTRS, prior=(0.01, 0.02, 0.04))[0]
    policy = RecordingPolicy("rec")
    outcome = replay_test(test, policy, 300, seed=1)
    for step, arms in enumerate(policy.seen):
        assert sum(a.impressions for a in arms) == step
        for arm, logged in zip(arms, test.arms, strict=True):
            assert arm.p_ctr == logged.prior_ctr
            assert arm.expected_clicks == pytest.approx(logged.prior_ctr * arm.impressions)
            assert arm.clicks <= arm.impressions
    final = policy.seen[-1]
    assert tuple(a.impressions for a in final) != outcome.shows  # the last pick is not in it
    assert sum(a.clicks for a in final) <= outcome.clicks


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match="two arms"):
        ReplayTest("t", (ReplayArm("a", 0.1, 0.1),))
    with pytest.raises(ValueError, match="prior_ctr"):
        ReplayArm("a", 0.1, 0.0)
    with pytest.raises(ValueError, match="budget"):
        replay_test(_tests(1, CTRS)[0], Policy("ts"), 0, seed=0)
    with pytest.raises(ValueError, match="unique"):
        replay(_tests(1, CTRS), [Policy("x"), Policy("x", EQUAL_SPLIT)], 10, [0])
    with pytest.raises(ValueError):
        Policy("bad", mode="softmax")


def test_pooled_test_group_holds_the_sum_of_its_arms() -> None:
    test = _tests(1, CTRS, prior=(0.01, 0.02, 0.04))[0]
    policy = RecordingPolicy("pooled", pool_test=True)
    replay_test(test, policy, 200, seed=2)
    for arms, groups in zip(policy.seen, policy.pooled, strict=True):
        assert {a.group for a in arms} == {test.test_id}
        assert groups is not None
        pooled = groups[test.test_id]
        assert pooled.impressions == sum(a.impressions for a in arms)
        assert pooled.clicks == sum(a.clicks for a in arms)
        assert pooled.expected_clicks == pytest.approx(sum(a.expected_clicks for a in arms))
    assert RecordingPolicy("flat").pooled == []
