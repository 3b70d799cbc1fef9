"""The cold-start prior's formula, shared by the prior that scores before any model and by the
model, which learns a correction on top of it (`ModelConfig.prior_offset`).

Why one formula in the feature layer: a model trained on the first few thousand impressions
(a hundred clicks) cannot learn from scratch what the prior already knows (the shopper's
category affinity, item popularity, the channel's base rate); measured in the closed loop, such
a model ranked far worse than the prior it replaced. Starting from the prior's logit, the model
only has to learn where the data disagrees.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# Industry-typical starting points; only used until the first model is trained, and as the
# offset a model learns its correction against.
CHANNEL_CTR = {
    "ad_copy": 0.02,
    "product_description": 0.05,
    "push": 0.03,
    "sms": 0.015,
    "email_subject": 0.025,
    "social_post": 0.012,
    "promo_banner": 0.01,
}
DEFAULT_CTR = 0.02
DEFAULT_CVR = 0.05


def prior_ctr(
    base_ctr: NDArray[np.float64] | float,
    log_popularity: NDArray[np.float64] | float,
    affinity: NDArray[np.float64] | float,
) -> NDArray[np.float64]:
    """Channel base rate x (1 + popularity lift) x (1 + affinity lift), each lift bounded
    (x1.5 and x2), so at most x3: enough to rank popular, on-taste items first. `log_popularity` is
    log1p(popularity), `affinity` the shopper's best affinity among the item's categories."""
    popularity_lift = 0.5 * np.tanh(
        np.maximum(np.asarray(log_popularity, dtype=np.float64), 0.0) / 5.0
    )
    affinity_lift = np.clip(np.asarray(affinity, dtype=np.float64), 0.0, 1.0)
    out: NDArray[np.float64] = (
        np.asarray(base_ctr, dtype=np.float64) * (1.0 + popularity_lift) * (1.0 + affinity_lift)
    )
    return out


def logit(p: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """log(p / (1 - p)), clipped away from 0 and 1."""
    clipped = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    out: NDArray[np.float64] = np.log(clipped / (1.0 - clipped))
    return out


def prior_logit(
    base_ctr: NDArray[np.float64] | float,
    log_popularity: NDArray[np.float64] | float,
    affinity: NDArray[np.float64] | float,
) -> NDArray[np.float64]:
    return logit(prior_ctr(base_ctr, log_popularity, affinity))
