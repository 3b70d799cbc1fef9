"""The copy brief: what the prompt builder, the demo-model corpus and the pipeline share.

Kept as a plain frozen dataclass (no gRPC types) so the demo model's training corpus and the
serving path build prompts from the very same object.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNELS: tuple[str, ...] = (
    "ad_copy",
    "product_description",
    "push",
    "sms",
    "email_subject",
    "social_post",
    "promo_banner",
)
LOCALES: tuple[str, ...] = ("en-US", "zh-CN")
TONES: tuple[str, ...] = ("friendly", "professional", "playful", "urgent", "luxury", "informative")
# Marketing angles the copy can take. "urgency" only when a promotion really is time-limited:
# it is never chosen for a segment, only set explicitly by the caller.
ANGLES: tuple[str, ...] = (
    "value",  # the discount or the price
    "quality",  # craft, materials, the brand
    "social_proof",  # what other shoppers do (no invented numbers)
    "urgency",  # a real, time-limited promotion only
    "novelty",  # new, different, a discovery
    "gift",  # a present for someone
    "benefit",  # convenience, the outcome for the shopper
)
# Preferred angle order per audience segment (demo segments and their market aliases).
_SEGMENT_ANGLES: dict[str, tuple[str, ...]] = {
    "bargain_hunter": ("value", "benefit", "social_proof", "quality", "novelty", "gift"),
    "deal_seeker": ("value", "benefit", "social_proof", "quality", "novelty", "gift"),
    "loyal_high_value": ("quality", "benefit", "novelty", "social_proof", "gift", "value"),
    "loyal": ("quality", "benefit", "novelty", "social_proof", "gift", "value"),
    "quality_seeker": ("quality", "benefit", "social_proof", "novelty", "gift", "value"),
    "gift_shopper": ("gift", "quality", "novelty", "benefit", "social_proof", "value"),
    "trend_seeker": ("novelty", "social_proof", "quality", "benefit", "gift", "value"),
    "trend_follower": ("novelty", "social_proof", "quality", "benefit", "gift", "value"),
    "impulse_buyer": ("novelty", "value", "benefit", "social_proof", "gift", "quality"),
    "new_user": ("benefit", "social_proof", "value", "quality", "novelty", "gift"),
    "new_visitor": ("benefit", "social_proof", "value", "quality", "novelty", "gift"),
}
_DEFAULT_ANGLES: tuple[str, ...] = (
    "benefit",
    "quality",
    "value",
    "social_proof",
    "novelty",
    "gift",
)


def angles_for_segment(segment: str) -> tuple[str, ...]:
    """Angles to try for a segment, best first; never "urgency" (that needs a real promotion)."""
    return _SEGMENT_ANGLES.get(segment.strip().lower(), _DEFAULT_ANGLES)


@dataclass(frozen=True)
class CopyBrief:
    """Everything the copywriter (model or fallback) may know about one piece of copy."""

    item_title: str
    brand: str
    category_path: tuple[str, ...]  # e.g. ("Toys", "Building Sets")
    price: float
    list_price: float | None  # > price means a discount
    currency: str  # "USD", "CNY"
    selling_points: tuple[str, ...]
    attributes: tuple[tuple[str, str], ...]  # sorted (key, value) pairs
    channel: str  # one of CHANNELS
    locale: str  # one of LOCALES
    tone: str  # one of TONES
    audience_segment: str = ""  # e.g. "bargain_hunter", "new_user", "loyal_high_value"
    audience_summary: str = ""  # e.g. "likes Toys, LEGO; price band mid"
    max_chars: int = 0  # 0 = channel default
    must_include: tuple[str, ...] = ()
    angle: str = ""  # one of ANGLES; "" = the copywriter chooses


def validate_brief(brief: CopyBrief) -> list[tuple[str, str]]:
    """Return (field, problem) pairs; empty when the brief is usable.

    Returned rather than raised so the gRPC layer can turn them into BadRequest field
    violations, while `build_messages` raises on them.
    """
    problems: list[tuple[str, str]] = []
    if brief.channel not in CHANNELS:
        problems.append(("channel", f"unknown channel {brief.channel!r}; expected {CHANNELS}"))
    if brief.locale not in LOCALES:
        problems.append(("locale", f"unknown locale {brief.locale!r}; expected one of {LOCALES}"))
    if brief.tone not in TONES:
        problems.append(("tone", f"unknown tone {brief.tone!r}; expected one of {TONES}"))
    if brief.angle and brief.angle not in ANGLES:
        problems.append(("angle", f"unknown angle {brief.angle!r}; expected one of {ANGLES}"))
    if not brief.item_title.strip():
        problems.append(("item_title", "must not be empty"))
    if brief.max_chars < 0:
        problems.append(("max_chars", "must be >= 0 (0 = channel default)"))
    if brief.price < 0:
        problems.append(("price", "must be >= 0"))
    if brief.list_price is not None and brief.list_price < 0:
        problems.append(("list_price", "must be >= 0"))
    return problems
