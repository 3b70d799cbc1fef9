"""The prior that scores before any model is trained.

`ColdStartPrior` needs no data at all: channel base rates nudged by item popularity and the
shopper's category affinity. Its results say `prior:cold-start` so no one mistakes them for a
trained prediction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from copyloop.prediction.features.prior import (
    CHANNEL_CTR,
    DEFAULT_CTR,
    DEFAULT_CVR,
    prior_ctr,
)
from copyloop.prediction.features.types import (
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    TrainingExample,
    UserFeatures,
)
from copyloop.prediction.model.predictions import Predictions

COLD_START_VERSION = "prior:cold-start"


class ColdStartPrior:
    """Scores without a trained model: channel base rate x (1 + popularity and affinity lift).

    The lifts are bounded guesses (at most x3), enough to rank popular, on-taste items first.
    """

    def predict(
        self,
        user: UserFeatures,
        context: ContextFeatures,
        candidates: Sequence[tuple[ItemFeatures, CopyFeatures]],
    ) -> Predictions:
        base = CHANNEL_CTR.get(context.channel, DEFAULT_CTR)
        p_cvr = np.full(len(candidates), DEFAULT_CVR)
        popularity = np.asarray([math.log1p(max(item.popularity, 0.0)) for item, _ in candidates])
        affinity = np.asarray(
            [
                max((user.category_affinity.get(c, 0.0) for c in item.category_path), default=0.0)
                for item, _ in candidates
            ]
        )
        p_ctr = prior_ctr(base, popularity, affinity)
        return Predictions(p_ctr, p_cvr)

    def predict_examples(self, examples: Sequence[TrainingExample]) -> Predictions:
        """The prior's scores for logged impressions, each in its own user and context: what
        was live before the first model, so the promotion gate can compare against it."""
        if not examples:
            return Predictions(np.empty(0), np.empty(0))
        parts = [self.predict(e.user, e.context, [(e.item, e.copy)]) for e in examples]
        return Predictions(
            np.concatenate([p.p_ctr for p in parts]), np.concatenate([p.p_cvr for p in parts])
        )
