"""Plain data types of the prediction domain.

The gRPC layer converts protos into these, so the domain logic (features, model, training,
scoring) stays testable without gRPC or a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The platform vocabulary, re-exported for feature code; its order is the feature order.
from copyloop.common.vocabulary import CHANNELS as CHANNELS
from copyloop.common.vocabulary import PRICE_BANDS as PRICE_BANDS

DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet", "app", "")


@dataclass(frozen=True)
class UserFeatures:
    """What the profile service knows about a shopper at request time."""

    user_id: str
    segments: tuple[str, ...] = ()
    category_affinity: dict[str, float] = field(default_factory=dict)
    brand_affinity: dict[str, float] = field(default_factory=dict)
    price_band: str = ""
    events_30d: int = 0
    recency_days: float = 0.0
    monetary: float = 0.0
    cold_start: bool = False


@dataclass(frozen=True)
class ItemFeatures:
    """A catalog item as the model sees it; hashable so its encoding can be cached."""

    item_id: str
    category_path: tuple[str, ...] = ()
    brand: str = ""
    price: float = 0.0
    list_price: float = 0.0
    popularity: float = 0.0


@dataclass(frozen=True)
class CopyFeatures:
    """One copy variant (creative) shown with an item."""

    creative_id: str
    text: str
    locale: str = ""


@dataclass(frozen=True)
class ContextFeatures:
    """Where and when the copy is shown."""

    channel: str = ""
    hour: int = 0
    device: str = ""
    locale: str = ""


@dataclass(frozen=True)
class TrainingExample:
    """One logged impression and what the shopper then did.

    `propensity` is the probability with which the serving policy chose this copy among
    itself and `alternatives` (the other copy texts it could have shown); 0 = unknown. Training
    weights by its inverse and off-policy estimates divide by it.
    """

    user: UserFeatures
    item: ItemFeatures
    copy: CopyFeatures
    context: ContextFeatures
    clicked: bool
    converted: bool
    timestamp: float
    propensity: float = 0.0
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoreResult:
    """Predicted outcome of showing one (item, copy) to one shopper in one context.

    `model_version` says which model produced the numbers; a cold-start prior reports
    `prior:cold-start` so callers can tell a guess from a trained prediction.
    """

    p_ctr: float
    p_cvr: float
    p_ctcvr: float
    copy_quality: float | None
    top_features: list[tuple[str, float]]
    model_version: str = ""
