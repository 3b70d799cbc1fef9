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
    if not brief.item_title.strip():
        problems.append(("item_title", "must not be empty"))
    if brief.max_chars < 0:
        problems.append(("max_chars", "must be >= 0 (0 = channel default)"))
    if brief.price < 0:
        problems.append(("price", "must be >= 0"))
    if brief.list_price is not None and brief.list_price < 0:
        problems.append(("list_price", "must be >= 0"))
    return problems
