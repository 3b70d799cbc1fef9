"""Which creatives beat their prediction: each served creative's clicks against the clicks the
model expected of it (the sum of the pCTR it was served with), per shopper segment. The
winners are what the copywriter is fine-tuned on, so the ranking must not reward luck:

- the lift is observed over expected clicks, shrunk toward 1 ("the model was right") with a
  Gamma(a, a) prior worth `LIFT_PRIOR_CLICKS` expected clicks. With clicks ~ Poisson(lift x E)
  the posterior is Gamma(a + C, a + E): its mean (C + a) / (E + a) is the lift reported and
  ranked by, and its 2.5% and 97.5% quantiles are the 95% interval;
- a = 10 is the strength the bandit gives a (segment, angle) group (`bandit`): before a
  creative has about 10 expected clicks of its own its lift stays near 1, so three lucky clicks
  on 0.3 expected (raw lift 10) rank at 1.26, below a creative with 60 clicks on 40 expected
  (1.40).

Only pool creatives are listed: fusion's own stand-ins (a template when nothing else could be
served, the control arm's generic line, copy generated inline for one request) have ids that
name an item, not a text, so their counts say nothing about one piece of copy.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from scipy.special import gammaincinv

LIFT_PRIOR_CLICKS = 10.0
INTERVAL_LEVEL = 0.95
# Creative ids Recommend makes up for copy that is not a pool creative (recommend.py).
SYNTHETIC_PREFIXES = ("fallback:", "generic:", "gen:")


def shrunk_lift(clicks: int, expected_clicks: float, prior: float = LIFT_PRIOR_CLICKS) -> float:
    """The posterior mean lift (C + a) / (E + a): 1 without evidence, C / E with plenty."""
    return (clicks + prior) / (expected_clicks + prior)


def lift_interval(
    clicks: int,
    expected_clicks: float,
    prior: float = LIFT_PRIOR_CLICKS,
    level: float = INTERVAL_LEVEL,
) -> tuple[float, float]:
    """The central `level` interval of the lift's Gamma(a + C, rate a + E) posterior."""
    shape, rate = prior + clicks, prior + expected_clicks
    tail = (1.0 - level) / 2.0
    return (
        float(gammaincinv(shape, tail)) / rate,
        float(gammaincinv(shape, 1.0 - tail)) / rate,
    )


@dataclass(frozen=True)
class PerformanceKey:
    """Where a page ends in the listing's order (lift descending, then creative, segment)."""

    lift: float
    creative_id: str
    segment: str

    def encode(self) -> str:
        """The page token's key: JSON, so any id round-trips and the lift stays exact."""
        return json.dumps([self.lift, self.creative_id, self.segment], separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> PerformanceKey | None:
        """The key `encode` wrote, or None for anything else (a forged or corrupted token)."""
        try:
            lift, creative_id, segment = json.loads(text)
        except (ValueError, TypeError):
            return None
        if (
            not isinstance(lift, float | int)
            or isinstance(lift, bool)
            or not math.isfinite(lift)
            or not isinstance(creative_id, str)
            or not isinstance(segment, str)
        ):
            return None
        return cls(float(lift), creative_id, segment)


@dataclass(frozen=True)
class PerformanceQuery:
    """One page of the listing: filters, page size and where the previous page ended."""

    segment: str  # "" = every segment
    min_impressions: int  # >= 1
    size: int
    after: PerformanceKey | None = None


@dataclass(frozen=True)
class CreativePerformance:
    """One creative's results in one segment; `lift` as the store computed it (the page key)."""

    creative_id: str
    item_id: str
    segment: str
    angle: str
    impressions: int
    clicks: int
    expected_clicks: float
    lift: float

    @property
    def interval(self) -> tuple[float, float]:
        return lift_interval(self.clicks, self.expected_clicks)

    @property
    def key(self) -> PerformanceKey:
        return PerformanceKey(self.lift, self.creative_id, self.segment)


@dataclass(frozen=True)
class PerformancePage:
    creatives: list[CreativePerformance]
    more: bool  # another page follows the last creative of this one
