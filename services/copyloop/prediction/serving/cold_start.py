"""The prior that scores before any model is trained.

`ColdStartPrior` needs no data at all: channel base rates nudged by item popularity and the
shopper's category affinity. Its results say `prior:cold-start` so no one mistakes them for a
trained prediction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from copyloop.prediction.features.types import (
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    UserFeatures,
)
from copyloop.prediction.model.predictions import Predictions

COLD_START_VERSION = "prior:cold-start"

# Industry-typical starting points; only used until the first model is trained.
_CHANNEL_CTR = {
    "ad_copy": 0.02,
    "product_description": 0.05,
    "push": 0.03,
    "sms": 0.015,
    "email_subject": 0.025,
    "social_post": 0.012,
    "promo_banner": 0.01,
}
_DEFAULT_CTR = 0.02
_DEFAULT_CVR = 0.05


class ColdStartPrior:
    """Scores without a trained model: channel base rate x (1 + popularity and affinity lift).

    The lifts are bounded guesses (at most x2.5), enough to rank popular, on-taste items first.
    """

    def predict(
        self,
        user: UserFeatures,
        context: ContextFeatures,
        candidates: Sequence[tuple[ItemFeatures, CopyFeatures]],
    ) -> Predictions:
        base = _CHANNEL_CTR.get(context.channel, _DEFAULT_CTR)
        p_ctr = np.empty(len(candidates))
        p_cvr = np.full(len(candidates), _DEFAULT_CVR)
        for row, (item, _copy) in enumerate(candidates):
            popularity_lift = 0.5 * math.tanh(math.log1p(max(item.popularity, 0.0)) / 5.0)
            affinity = max(
                (user.category_affinity.get(c, 0.0) for c in item.category_path), default=0.0
            )
            affinity_lift = max(0.0, min(affinity, 1.0))
            p_ctr[row] = base * (1.0 + popularity_lift) * (1.0 + affinity_lift)
        return Predictions(p_ctr, p_cvr)
