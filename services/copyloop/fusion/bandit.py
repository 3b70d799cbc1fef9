"""Choosing one copy variant per item: Thompson sampling with a prior from the predicted CTR.

A new creative has no clicks yet, so a flat prior would make the bandit explore blindly; the
prediction service's pCTR is a far better first guess. The prior is a Beta whose mean is the
predicted CTR and whose strength (`pseudo_count`, in impressions) says how many real
impressions it takes before observed data outweighs the model. Greedy and random choosers
exist for experiment arms that compare the bandit against "no exploration" and "no
personalisation".
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_PSEUDO_COUNT",
    "BetaPosterior",
    "Choice",
    "SelectionMode",
    "VariantArm",
    "choose",
    "choose_greedy",
    "choose_random",
    "choose_variant",
    "prior_from_prediction",
    "update",
]

DEFAULT_PSEUDO_COUNT = 50.0
# pCTR is clamped into [P_MIN, P_MAX]: a Beta needs both parameters > 0, and a model saying
# "exactly 0" or "exactly 1" should not freeze a variant out of (or into) every choice.
P_MIN = 1e-4
P_MAX = 1.0 - 1e-4
# Smallest / largest allowed prior strength, so a config typo cannot give a degenerate Beta.
PSEUDO_MIN = 1e-2
PSEUDO_MAX = 1e7


@dataclass(frozen=True)
class BetaPosterior:
    """Beta(alpha, beta) belief about a variant's CTR."""

    alpha: float
    beta: float

    def __post_init__(self) -> None:
        if not (self.alpha > 0 and self.beta > 0 and math.isfinite(self.alpha + self.beta)):
            raise ValueError(
                f"Beta parameters must be finite and > 0, got ({self.alpha}, {self.beta})"
            )

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def sample(self, rng: random.Random) -> float:
        """One draw of the CTR from this belief."""
        return rng.betavariate(self.alpha, self.beta)


@dataclass(frozen=True)
class VariantArm:
    """One creative for an item: its predicted CTR and what was observed so far."""

    creative_id: str
    p_ctr: float
    impressions: int = 0
    clicks: int = 0


@dataclass(frozen=True)
class Choice:
    """The chosen creative; `explored` is True when it is not the best-by-posterior-mean arm."""

    creative_id: str
    sampled_ctr: float
    posterior_mean: float
    explored: bool


class SelectionMode(StrEnum):
    """How a variant is picked; experiment arms map their strategy onto one of these."""

    THOMPSON = "thompson"
    GREEDY = "greedy"
    RANDOM = "random"


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def prior_from_prediction(
    p_ctr: float, pseudo_count: float = DEFAULT_PSEUDO_COUNT
) -> BetaPosterior:
    """Beta prior with mean `p_ctr` worth `pseudo_count` impressions (alpha = p*n, beta = (1-p)*n).

    p is clamped into [1e-4, 1 - 1e-4] and n into [0.01, 1e7]; NaN is a caller bug and raises.
    """
    if math.isnan(p_ctr) or math.isnan(pseudo_count):
        raise ValueError("p_ctr and pseudo_count must be numbers, got NaN")
    p = _clamp(p_ctr, P_MIN, P_MAX)
    n = _clamp(pseudo_count, PSEUDO_MIN, PSEUDO_MAX)
    return BetaPosterior(alpha=p * n, beta=(1.0 - p) * n)


def update(posterior: BetaPosterior, impressions: int, clicks: int) -> BetaPosterior:
    """Posterior after `impressions` shows with `clicks` clicks.

    A click implies an impression, so clicks beyond impressions (reports arriving out of
    order) count as impressions too rather than making beta negative.
    """
    if impressions < 0 or clicks < 0:
        raise ValueError(f"counts must be >= 0, got impressions={impressions}, clicks={clicks}")
    shown = max(impressions, clicks)
    return BetaPosterior(posterior.alpha + clicks, posterior.beta + (shown - clicks))


def _posteriors(candidates: Sequence[VariantArm], pseudo_count: float) -> list[BetaPosterior]:
    if not candidates:
        raise ValueError("no candidate variants to choose from")
    return [
        update(prior_from_prediction(arm.p_ctr, pseudo_count), arm.impressions, arm.clicks)
        for arm in candidates
    ]


def _best_mean_index(posteriors: Sequence[BetaPosterior]) -> int:
    means = [p.mean for p in posteriors]
    return max(range(len(means)), key=means.__getitem__)  # first of equals: stable order


def choose_variant(
    candidates: Sequence[VariantArm], pseudo_count: float, rng: random.Random
) -> Choice:
    """Thompson sampling: draw a CTR from each posterior and show the highest draw."""
    posteriors = _posteriors(candidates, pseudo_count)
    draws = [p.sample(rng) for p in posteriors]
    chosen = max(range(len(draws)), key=draws.__getitem__)
    return Choice(
        creative_id=candidates[chosen].creative_id,
        sampled_ctr=draws[chosen],
        posterior_mean=posteriors[chosen].mean,
        explored=chosen != _best_mean_index(posteriors),
    )


def choose_greedy(
    candidates: Sequence[VariantArm], pseudo_count: float = DEFAULT_PSEUDO_COUNT
) -> Choice:
    """Argmax of the predicted CTR, ignoring observed data: the "model only, no bandit" arm."""
    posteriors = _posteriors(candidates, pseudo_count)
    chosen = max(range(len(candidates)), key=lambda i: candidates[i].p_ctr)
    return Choice(
        creative_id=candidates[chosen].creative_id,
        sampled_ctr=candidates[chosen].p_ctr,
        posterior_mean=posteriors[chosen].mean,
        explored=chosen != _best_mean_index(posteriors),
    )


def choose_random(
    candidates: Sequence[VariantArm], rng: random.Random, pseudo_count: float = DEFAULT_PSEUDO_COUNT
) -> Choice:
    """Uniformly random variant: the "no copy personalisation" arm."""
    posteriors = _posteriors(candidates, pseudo_count)
    chosen = rng.randrange(len(candidates))
    return Choice(
        creative_id=candidates[chosen].creative_id,
        sampled_ctr=posteriors[chosen].mean,
        posterior_mean=posteriors[chosen].mean,
        explored=chosen != _best_mean_index(posteriors),
    )


def choose(
    mode: SelectionMode | str,
    candidates: Sequence[VariantArm],
    rng: random.Random,
    pseudo_count: float = DEFAULT_PSEUDO_COUNT,
) -> Choice:
    """Dispatch on the selection mode an experiment arm asks for."""
    match SelectionMode(mode):
        case SelectionMode.THOMPSON:
            return choose_variant(candidates, pseudo_count, rng)
        case SelectionMode.GREEDY:
            return choose_greedy(candidates, pseudo_count)
        case SelectionMode.RANDOM:
            return choose_random(candidates, rng, pseudo_count)
    raise AssertionError(f"unhandled mode {mode}")  # pragma: no cover
