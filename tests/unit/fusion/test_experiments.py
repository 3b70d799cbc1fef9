"""Hashed assignment and report statistics, checked against known values and simulations."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from copyloop.fusion.experiments import (
    ArmCounts,
    assign,
    build_report,
    chi2_sf,
    hash_unit,
    probability_best,
    relative_lift,
    sample_ratio_test,
)

USERS = [f"user-{i}" for i in range(10_000)]


def test_hash_unit_is_uniform_in_unit_interval() -> None:
    units = np.array([hash_unit(u, "exp-1") for u in USERS])
    assert units.min() >= 0.0 and units.max() < 1.0
    counts, _ = np.histogram(units, bins=10, range=(0, 1))
    assert all(900 < c < 1100 for c in counts)  # 1000 expected, sd ~30


def test_fifty_fifty_split_of_ten_thousand_users_is_within_tolerance() -> None:
    counts = Counter(assign(u, "exp-1", [("control", 1.0), ("treatment", 1.0)]) for u in USERS)
    assert set(counts) == {"control", "treatment"}
    assert abs(counts["control"] - 5000) < 200  # 4 binomial sd
    assert not sample_ratio_test([counts["control"], counts["treatment"]], [1, 1]).mismatch


def test_unequal_weights_are_normalised_and_respected() -> None:
    arms = [("a", 2.0), ("b", 3.0), ("c", 5.0)]  # 20/30/50 %
    counts = Counter(assign(u, "exp-weights", arms) for u in USERS)
    for arm_id, share in (("a", 0.2), ("b", 0.3), ("c", 0.5)):
        assert abs(counts[arm_id] / len(USERS) - share) < 0.02
    users = [counts[a] for a, _ in arms]
    assert not sample_ratio_test(users, [w for _, w in arms]).mismatch
    assert sample_ratio_test(users, [1, 1, 1]).mismatch  # wrong configuration is detected


def test_assignment_is_sticky_and_independent_between_experiments() -> None:
    arms = [("a", 1.0), ("b", 1.0)]
    first = [assign(u, "exp-x", arms) for u in USERS[:2000]]
    assert first == [assign(u, "exp-x", arms) for u in USERS[:2000]]
    other = [assign(u, "exp-y", arms) for u in USERS[:2000]]
    same = sum(x == y for x, y in zip(first, other, strict=True)) / 2000
    assert 0.45 < same < 0.55  # not the same split reused for every experiment


def test_assignment_is_stable_across_processes_with_different_hash_seeds() -> None:
    arms = [["control", 1.0], ["bandit", 2.0], ["greedy", 1.0]]
    users = USERS[:300]
    code = (
        "import json,sys; from copyloop.fusion.experiments import assign; "
        "d=json.loads(sys.stdin.read()); "
        "arms=[tuple(a) for a in d['arms']]; "
        "print(json.dumps([assign(u, 'exp-proc', arms) for u in d['users']]))"
    )
    expected = [assign(u, "exp-proc", [tuple(a) for a in arms]) for u in users]
    for seed in ("1", "987654"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps({"arms": arms, "users": users}),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert json.loads(out.stdout) == expected


def test_assign_validates_arms() -> None:
    with pytest.raises(ValueError):
        assign("u", "e", [])
    with pytest.raises(ValueError):
        assign("u", "e", [("a", 1.0), ("b", 0.0)])
    with pytest.raises(ValueError):
        assign("u", "e", [("a", 1.0), ("a", 1.0)])


def test_arm_rates() -> None:
    arm = ArmCounts("a", users=100, impressions=2000, clicks=80, purchases=8, revenue=400.0)
    assert (arm.ctr, arm.cvr, arm.revenue_per_impression) == (0.04, 0.1, 0.2)
    empty = ArmCounts("b")
    assert (empty.ctr, empty.cvr, empty.revenue_per_impression) == (0.0, 0.0, 0.0)


def test_lift_matches_hand_computed_delta_method_interval() -> None:
    base = ArmCounts("base", impressions=10_000, clicks=500)  # 5%
    treat = ArmCounts("treat", impressions=10_000, clicks=600)  # 6%
    est = relative_lift(treat, base)
    assert est is not None
    se = math.sqrt(0.94 / (10_000 * 0.06) + 0.95 / (10_000 * 0.05))
    assert est.lift == pytest.approx(0.2)
    assert est.lower == pytest.approx(1.2 * math.exp(-1.959964 * se) - 1, rel=1e-5)
    assert est.upper == pytest.approx(1.2 * math.exp(1.959964 * se) - 1, rel=1e-5)
    assert 0.06 < est.lower < 0.2 < est.upper < 0.36


def test_lift_interval_covers_the_true_lift_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(42)
    p_base, p_treat, n = 0.05, 0.055, 20_000
    true_lift = p_treat / p_base - 1
    reps = 600
    covered = 0
    for cb, ct in zip(rng.binomial(n, p_base, reps), rng.binomial(n, p_treat, reps), strict=True):
        est = relative_lift(
            ArmCounts("t", impressions=n, clicks=int(ct)),
            ArmCounts("b", impressions=n, clicks=int(cb)),
        )
        assert est is not None
        covered += est.lower <= true_lift <= est.upper
    assert 0.92 <= covered / reps <= 0.98


def test_lift_edge_cases_stay_finite_or_undefined() -> None:
    base = ArmCounts("b", impressions=1000, clicks=20)
    zero = relative_lift(ArmCounts("t", impressions=1000, clicks=0), base)
    assert zero is not None and zero.lift == -1.0
    assert math.isfinite(zero.lower) and -1.0 < zero.lower < zero.upper < 0.0
    assert (
        relative_lift(ArmCounts("t", impressions=1000, clicks=5), ArmCounts("b", impressions=1000))
        is None
    )
    assert relative_lift(ArmCounts("t"), base) is None


def _exact_prob_b_beats_a(a_alpha: int, a_beta: int, b_alpha: int, b_beta: int) -> float:
    """Closed form of P(X_b > X_a) for Betas with integer b_alpha (Evan Miller's formula)."""

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    return sum(
        math.exp(
            log_beta(a_alpha + i, a_beta + b_beta)
            - math.log(b_beta + i)
            - log_beta(1 + i, b_beta)
            - log_beta(a_alpha, a_beta)
        )
        for i in range(b_alpha)
    )


def test_probability_best_matches_the_closed_form_within_001() -> None:
    a = ArmCounts("a", impressions=400, clicks=20)
    b = ArmCounts("b", impressions=400, clicks=28)
    exact = _exact_prob_b_beats_a(1 + 20, 1 + 380, 1 + 28, 1 + 372)
    p_a, p_b = probability_best([a, b])
    assert p_b == pytest.approx(exact, abs=0.01)
    assert p_a + p_b == pytest.approx(1.0)
    assert probability_best([a, b]) == probability_best([a, b])  # fixed seed


def test_probability_best_sums_to_one_and_ranks_arms() -> None:
    arms = [
        ArmCounts("x", impressions=5000, clicks=200),
        ArmCounts("y", impressions=5000, clicks=260),
        ArmCounts("z", impressions=5000, clicks=100),
    ]
    probs = probability_best(arms)
    assert sum(probs) == pytest.approx(1.0)
    assert probs[1] > 0.99 and probs[2] < 0.001
    equal = probability_best([ArmCounts("p"), ArmCounts("q")])  # no data: a coin flip
    assert equal[0] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("statistic", "dof", "expected"),
    [
        (3.841459, 1, 0.05),
        (5.991465, 2, 0.05),
        (6.634897, 1, 0.01),
        (16.918978, 9, 0.05),
        (0.0, 3, 1.0),
    ],
)
def test_chi2_survival_matches_table_values(statistic: float, dof: int, expected: float) -> None:
    assert chi2_sf(statistic, dof) == pytest.approx(expected, abs=1e-6)


def test_chi2_survival_matches_scipy_across_the_range() -> None:
    stats = pytest.importorskip("scipy.stats")
    for dof in (1, 2, 3, 5, 9):
        for x in (0.01, 0.5, 1.0, 3.0, 10.0, 40.0, 120.0):
            assert chi2_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


def test_srm_flags_sixty_forty_configured_as_fifty_fifty() -> None:
    result = sample_ratio_test([6000, 4000], [0.5, 0.5])
    assert result.chi_square == pytest.approx(400.0)
    assert result.p_value < 1e-80 and result.mismatch
    fine = sample_ratio_test([5050, 4950], [0.5, 0.5])
    assert fine.chi_square == pytest.approx(1.0)
    assert fine.p_value == pytest.approx(0.3173, abs=1e-4) and not fine.mismatch
    assert not sample_ratio_test([6000, 4000], [3, 2]).mismatch  # it was configured 60/40
    assert sample_ratio_test([0, 0], [1, 1]).p_value == 1.0


def test_build_report_combines_everything_with_first_arm_as_default_baseline() -> None:
    arms = [
        ArmCounts(
            "control", users=5000, impressions=20_000, clicks=800, purchases=80, revenue=4000.0
        ),
        ArmCounts(
            "bandit", users=5000, impressions=20_000, clicks=1000, purchases=110, revenue=6600.0
        ),
    ]
    report = build_report(arms)
    assert report.baseline_arm_id == "control"
    control, bandit = report.arms
    assert control.lift is not None and (
        control.lift.lift,
        control.lift.lower,
        control.lift.upper,
    ) == (0, 0, 0)
    assert bandit.lift is not None and bandit.lift.lift == pytest.approx(0.25)
    assert bandit.lift.lower > 0  # a clear win
    assert bandit.probability_best > 0.99
    assert bandit.counts.cvr == pytest.approx(
        0.11
    ) and bandit.counts.revenue_per_impression == pytest.approx(0.33)
    assert not report.srm.mismatch

    by_bandit = build_report(arms, baseline_arm_id="bandit")
    assert by_bandit.arms[0].lift is not None and by_bandit.arms[0].lift.lift == pytest.approx(-0.2)
    with pytest.raises(ValueError):
        build_report(arms, baseline_arm_id="nope")


def test_wilson_interval_is_honest_for_small_cells() -> None:
    from copyloop.fusion.experiments import wilson_interval

    lower, upper = wilson_interval(1, 2)
    assert 0.0 < lower < 0.5 < upper < 1.0  # one click in two impressions says little
    lower_big, upper_big = wilson_interval(500, 1000)
    assert lower < lower_big < 0.5 < upper_big < upper and upper_big - lower_big < 0.07
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low0, high0 = wilson_interval(0, 50)
    assert low0 == 0.0 and 0.0 < high0 < 0.1


def _arm_of_users(arm_id: str, users: list[tuple[int, int]]) -> ArmCounts:
    """An arm built from per-user (impressions, clicks), with the sums the store provides."""
    return ArmCounts(
        arm_id=arm_id,
        users=len(users),
        impressions=sum(n for n, _ in users),
        clicks=sum(c for _, c in users),
        shown_users=len(users),
        impressions_sq=float(sum(n * n for n, _ in users)),
        clicks_sq=float(sum(c * c for _, c in users)),
        impressions_clicks=float(sum(n * c for n, c in users)),
    )


def test_a_few_heavy_clickers_do_not_make_an_arm_significantly_better() -> None:
    # 50 users of 40 impressions per arm; in arm B three users click a lot, the rest like A.
    a = _arm_of_users("a", [(40, 1)] * 50)
    b = _arm_of_users("b", [(40, 1)] * 47 + [(40, 12)] * 3)
    assert b.design_effect > 3  # users, not impressions, carry the information
    clustered = relative_lift(b, a)
    naive = relative_lift(replace(b, shown_users=0), replace(a, shown_users=0))
    assert clustered is not None and naive is not None
    assert clustered.lift == pytest.approx(naive.lift)  # the same point estimate
    assert naive.lower > 0  # impression-level statistics call it a win ...
    assert clustered.lower < 0 < clustered.upper  # ... the clustered interval does not
    _, p_b = probability_best([a, b])
    _, naive_b = probability_best([replace(a, shown_users=0), replace(b, shown_users=0)])
    assert naive_b > 0.95 and p_b < naive_b


def test_homogeneous_users_keep_the_binomial_interval() -> None:
    rng = random.Random(3)
    users = [(40, sum(rng.random() < 0.05 for _ in range(40))) for _ in range(400)]
    arm = _arm_of_users("a", users)
    assert arm.design_effect == pytest.approx(1.0, abs=0.25)
    assert _arm_of_users("one", users[:1]).design_effect == 1.0  # one user: nothing to say
