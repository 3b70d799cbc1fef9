"""Thompson sampling with a pCTR prior: converges on data, explores without it, reproducible."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from copyloop.fusion.bandit import (
    BetaPosterior,
    SelectionMode,
    VariantArm,
    choose,
    choose_greedy,
    choose_random,
    choose_variant,
    prior_from_prediction,
    update,
)


def test_prior_mean_is_predicted_ctr_and_strength_is_pseudo_count() -> None:
    prior = prior_from_prediction(0.04, pseudo_count=50)
    assert prior.mean == pytest.approx(0.04)
    assert prior.alpha + prior.beta == pytest.approx(50)
    assert prior.alpha == pytest.approx(2.0) and prior.beta == pytest.approx(48.0)


@pytest.mark.parametrize("p_ctr", [0.0, 1.0, -0.3, 7.0])
def test_prior_clamps_degenerate_predictions_into_a_valid_beta(p_ctr: float) -> None:
    prior = prior_from_prediction(p_ctr, pseudo_count=10)
    assert prior.alpha > 0 and prior.beta > 0
    assert 0.0 < prior.mean < 1.0
    prior.sample(random.Random(0))  # a draw is possible


def test_prior_rejects_nan_and_clamps_pseudo_count() -> None:
    with pytest.raises(ValueError):
        prior_from_prediction(float("nan"))
    weak = prior_from_prediction(0.5, pseudo_count=0.0)
    assert weak.alpha + weak.beta == pytest.approx(0.01)
    with pytest.raises(ValueError):
        BetaPosterior(0.0, 1.0)


def test_update_adds_clicks_to_alpha_and_misses_to_beta() -> None:
    post = update(BetaPosterior(2.0, 48.0), impressions=100, clicks=7)
    assert (post.alpha, post.beta) == (9.0, 141.0)
    # a click implies an impression: out-of-order reports never make beta shrink
    early = update(BetaPosterior(1.0, 1.0), impressions=2, clicks=3)
    assert (early.alpha, early.beta) == (4.0, 1.0)
    with pytest.raises(ValueError):
        update(BetaPosterior(1.0, 1.0), impressions=-1, clicks=0)


def test_converges_to_the_observed_winner_despite_equal_predictions() -> None:
    arms = [
        VariantArm("a", p_ctr=0.05, impressions=5000, clicks=100),  # 2% observed
        VariantArm("b", p_ctr=0.05, impressions=5000, clicks=500),  # 10% observed
        VariantArm("c", p_ctr=0.05, impressions=5000, clicks=250),  # 5% observed
    ]
    rng = random.Random(1)
    picks = Counter(choose_variant(arms, pseudo_count=50, rng=rng).creative_id for _ in range(1000))
    assert picks["b"] == 1000


def test_online_loop_shifts_traffic_to_the_truly_best_variant() -> None:
    """Simulated shoppers: model thinks all three are equal; true CTRs differ."""
    true_ctr = {"a": 0.02, "b": 0.05, "c": 0.10}
    stats = {k: [0, 0] for k in true_ctr}
    rng = random.Random(7)
    late_picks: Counter[str] = Counter()
    for step in range(4000):
        arms = [VariantArm(k, 0.05, *stats[k]) for k in true_ctr]
        choice = choose_variant(arms, pseudo_count=20, rng=rng)
        stats[choice.creative_id][0] += 1
        stats[choice.creative_id][1] += rng.random() < true_ctr[choice.creative_id]
        if step >= 3000:
            late_picks[choice.creative_id] += 1
    assert late_picks["c"] / 1000 > 0.8
    assert stats["a"][0] < stats["c"][0] / 4  # the worst arm got little traffic overall


def test_without_data_it_follows_the_prediction_but_still_explores() -> None:
    arms = [VariantArm("strong", p_ctr=0.08), VariantArm("weak", p_ctr=0.04)]
    rng = random.Random(3)
    choices = [choose_variant(arms, pseudo_count=20, rng=rng) for _ in range(2000)]
    share_strong = sum(c.creative_id == "strong" for c in choices) / len(choices)
    assert 0.6 < share_strong < 0.95  # mostly the model's favourite, not always
    assert all(c.explored == (c.creative_id == "weak") for c in choices)
    weak = next(c for c in choices if c.creative_id == "weak")
    assert weak.posterior_mean == pytest.approx(0.04)

    # a stronger prior means less exploration of the variant the model dislikes
    rng = random.Random(3)
    confident = [choose_variant(arms, pseudo_count=2000, rng=rng).creative_id for _ in range(2000)]
    assert confident.count("strong") / 2000 > 0.99


def test_same_seed_same_choices_other_seed_differs() -> None:
    arms = [VariantArm(f"v{i}", p_ctr=0.05) for i in range(4)]

    def run(seed: int) -> list[tuple[str, float]]:
        rng = random.Random(seed)
        return [
            (c.creative_id, c.sampled_ctr)
            for c in (choose_variant(arms, 20, rng) for _ in range(50))
        ]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_greedy_takes_highest_prediction_and_ignores_observed_data() -> None:
    arms = [
        VariantArm("model_favourite", p_ctr=0.09, impressions=1000, clicks=10),
        VariantArm("data_favourite", p_ctr=0.03, impressions=1000, clicks=150),
    ]
    choice = choose_greedy(arms, pseudo_count=20)
    assert choice.creative_id == "model_favourite"
    assert choice.sampled_ctr == pytest.approx(0.09)
    assert choice.explored  # the posterior says the other one is better


def test_random_mode_spreads_uniformly_and_dispatch_matches_modes() -> None:
    arms = [VariantArm(f"v{i}", p_ctr=0.01 * (i + 1)) for i in range(3)]
    rng = random.Random(5)
    picks = Counter(choose_random(arms, rng).creative_id for _ in range(3000))
    assert all(900 < picks[k] < 1100 for k in ("v0", "v1", "v2"))

    assert choose("greedy", arms, random.Random(0)).creative_id == "v2"
    assert choose(SelectionMode.THOMPSON, arms, random.Random(9)) == choose_variant(
        arms, 50, random.Random(9)
    )
    assert choose("random", arms, random.Random(4)) == choose_random(arms, random.Random(4))
    with pytest.raises(ValueError):
        choose("epsilon", arms, random.Random(0))
    with pytest.raises(ValueError):
        choose_variant([], 20, random.Random(0))
