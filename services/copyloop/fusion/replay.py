"""Offline replay of copy selection on logged A/B tests: how many clicks would a policy have got?

Each logged test is a set of arms (headlines shown with one image) with an observed CTR. The
replay serves `budget` impressions one at a time; the policy sees only the counts it has
gathered so far (and a predicted CTR per arm), picks an arm through the bandit code that
FusionService uses (`copyloop.fusion.bandit`), and a click is drawn from that arm's observed
CTR. The yardstick is the oracle that always shows the best arm by observed CTR.

Why the figures are comparable across policies: outcomes use common random numbers (the n-th
impression of an arm clicks or not identically under every policy for a given seed), and the
headline figure counts *expected* clicks (the observed CTR of each arm shown), which has the
same mean as the drawn clicks with less noise; drawn clicks are reported too.

Pure: no data loading and no service calls, so it is unit-tested on synthetic tests.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from copyloop.fusion import bandit

__all__ = [
    "EQUAL_SPLIT",
    "Policy",
    "PolicyResult",
    "ReplayArm",
    "ReplayTest",
    "TestOutcome",
    "replay",
    "replay_test",
    "summarise",
]

EQUAL_SPLIT = "equal_split"  # Policy.mode for round robin: what a classic A/B test does


@dataclass(frozen=True)
class ReplayArm:
    """One arm of a logged test: the CTR clicks are drawn from, and the policy's prior guess."""

    creative_id: str
    ctr: float
    prior_ctr: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.ctr <= 1.0:
            raise ValueError(f"{self.creative_id}: ctr {self.ctr} is not in [0, 1]")
        if not 0.0 < self.prior_ctr < 1.0:
            raise ValueError(f"{self.creative_id}: prior_ctr {self.prior_ctr} is not in (0, 1)")


@dataclass(frozen=True)
class ReplayTest:
    """A logged test (the arms that ran against each other) with at least two arms."""

    test_id: str
    arms: tuple[ReplayArm, ...]

    def __post_init__(self) -> None:
        if len(self.arms) < 2:
            raise ValueError(f"{self.test_id}: a test needs at least two arms")
        if len({a.creative_id for a in self.arms}) != len(self.arms):
            raise ValueError(f"{self.test_id}: creative ids must be unique")

    @property
    def best_ctr(self) -> float:
        return max(a.ctr for a in self.arms)

    @property
    def mean_ctr(self) -> float:
        return sum(a.ctr for a in self.arms) / len(self.arms)


@dataclass(frozen=True)
class Policy:
    """How a replayed test picks its arm each impression.

    `mode` is a bandit SelectionMode (Thompson, greedy, random) or EQUAL_SPLIT (round robin).
    With `use_prior` the arms carry the model's prior CTR; without it every arm carries the
    test's mean prior (a flat prior). `exact_propensity` calls `bandit.choose` literally,
    propensity estimate included; otherwise Thompson goes through `bandit.choose_variant` with
    no propensity draws, which picks the same arm from the same random state (the propensity
    rounds come after the choice) at 1/200 of the cost. With `pool_test` every arm of a test
    is in one bandit group, so the test's overall level (which the prior cannot know) is
    learned from all its clicks and each arm's lift shrinks toward it instead of toward 1.
    """

    name: str
    mode: str = bandit.SelectionMode.THOMPSON
    pseudo_count: float = bandit.DEFAULT_PSEUDO_COUNT
    group_strength: float = bandit.DEFAULT_GROUP_STRENGTH
    use_prior: bool = True
    exact_propensity: bool = False
    pool_test: bool = False

    def __post_init__(self) -> None:
        if self.mode != EQUAL_SPLIT:
            bandit.SelectionMode(self.mode)  # raises on an unknown mode

    def pick(
        self,
        arms: Sequence[bandit.VariantArm],
        step: int,
        rng: random.Random,
        groups: Mapping[str, bandit.LiftStats] | None = None,
    ) -> str:
        """The creative id to show at impression `step` (0-based); `groups` holds the pooled
        counts of the arms' groups, as FusionService's bandit state does."""
        if self.mode == EQUAL_SPLIT:
            return arms[step % len(arms)].creative_id
        if self.mode == bandit.SelectionMode.THOMPSON and not self.exact_propensity:
            return bandit.choose_variant(
                arms, self.pseudo_count, rng, groups, self.group_strength, propensity_draws=0
            ).creative_id
        return bandit.choose(
            self.mode, arms, rng, self.pseudo_count, groups, self.group_strength
        ).creative_id


@dataclass(frozen=True)
class TestOutcome:
    """One policy on one test: impressions per arm (test order), drawn and expected clicks, and
    the oracle's (best arm every time) for the same draws."""

    test_id: str
    policy: str
    shows: tuple[int, ...]
    clicks: int
    expected_clicks: float
    oracle_clicks: int
    oracle_expected_clicks: float


@dataclass(frozen=True)
class PolicyResult:
    """A policy summed over tests (and seeds): its clicks as a share of the oracle's."""

    policy: str
    tests: int
    clicks: int
    expected_clicks: float
    oracle_clicks: int
    oracle_expected_clicks: float

    @property
    def share(self) -> float:
        """Expected clicks over the oracle's: the headline figure (less noise than drawn)."""
        return self.expected_clicks / self.oracle_expected_clicks

    @property
    def drawn_share(self) -> float:
        return self.clicks / self.oracle_clicks if self.oracle_clicks else float("nan")


def _stable_seed(*parts: object) -> int:
    """A seed from names and numbers that is the same in every process (unlike hash())."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _outcomes(test: ReplayTest, budget: int, seed: int) -> np.ndarray:
    """Click (True) or not for the n-th impression of each arm: shared by every policy."""
    uniform = np.random.default_rng(_stable_seed("clicks", seed, test.test_id)).random(
        (len(test.arms), budget)
    )
    return uniform < np.asarray([a.ctr for a in test.arms])[:, None]


def replay_test(test: ReplayTest, policy: Policy, budget: int, seed: int) -> TestOutcome:
    """Serve `budget` impressions of one test under one policy, updating its counts as it goes
    (what FusionService's bandit state would hold: impressions, clicks, and the clicks the
    prior expected, i.e. the sum of p_ctr over the arm's impressions)."""
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    draws = _outcomes(test, budget, seed)
    outcomes: list[list[bool]] = draws.tolist()  # plain lists: cheaper to index per step
    if policy.use_prior:
        priors = [a.prior_ctr for a in test.arms]
    else:
        priors = [sum(a.prior_ctr for a in test.arms) / len(test.arms)] * len(test.arms)
    ids = [a.creative_id for a in test.arms]
    index = {c: i for i, c in enumerate(ids)}
    k = len(ids)
    shows = [0] * k
    clicks = [0] * k
    rng = random.Random(_stable_seed("policy", seed, test.test_id, policy.name))
    group = test.test_id if policy.pool_test else ""
    groups: dict[str, bandit.LiftStats] | None = None
    for step in range(budget):
        arms = [
            bandit.VariantArm(ids[i], priors[i], shows[i], clicks[i], priors[i] * shows[i], group)
            for i in range(k)
        ]
        if group:
            groups = {
                group: bandit.LiftStats(
                    step, sum(clicks), sum(p * n for p, n in zip(priors, shows, strict=True))
                )
            }
        i = index[policy.pick(arms, step, rng, groups)]
        clicks[i] += outcomes[i][shows[i]]
        shows[i] += 1
    best = max(range(k), key=lambda j: test.arms[j].ctr)
    return TestOutcome(
        test_id=test.test_id,
        policy=policy.name,
        shows=tuple(shows),
        clicks=sum(clicks),
        expected_clicks=sum(n * a.ctr for n, a in zip(shows, test.arms, strict=True)),
        oracle_clicks=int(draws[best].sum()),
        oracle_expected_clicks=budget * test.arms[best].ctr,
    )


def summarise(outcomes: Iterable[TestOutcome]) -> dict[str, PolicyResult]:
    """Per policy: clicks and oracle clicks summed over its test outcomes (any seeds)."""
    sums: dict[str, list[float]] = {}
    tests: dict[str, set[str]] = {}
    for o in outcomes:
        s = sums.setdefault(o.policy, [0, 0.0, 0, 0.0])
        s[0] += o.clicks
        s[1] += o.expected_clicks
        s[2] += o.oracle_clicks
        s[3] += o.oracle_expected_clicks
        tests.setdefault(o.policy, set()).add(o.test_id)
    return {
        name: PolicyResult(name, len(tests[name]), int(s[0]), s[1], int(s[2]), s[3])
        for name, s in sums.items()
    }


def replay(
    tests: Sequence[ReplayTest], policies: Sequence[Policy], budget: int, seeds: Sequence[int]
) -> dict[str, PolicyResult]:
    """Every policy on every test for every seed, summed per policy."""
    if len({p.name for p in policies}) != len(policies):
        raise ValueError("policy names must be unique")
    return summarise(replay_test(t, p, budget, s) for s in seeds for p in policies for t in tests)
