"""The platform's shared vocabulary: channels, locales and price bands, written once.

Domains speak these plain names (no protobuf types); `copyloop.common.protoconv` maps them to
and from the `copyloop.v1` enums at the edge. The order of each tuple is stable: model features
one-hot encode in this order, so only ever append.
"""

from __future__ import annotations

from typing import Final

CHANNELS: Final[tuple[str, ...]] = (
    "ad_copy",
    "product_description",
    "push",
    "sms",
    "email_subject",
    "social_post",
    "promo_banner",
)
"""Where copy is shown; each name is the proto enum `CHANNEL_<NAME>` in lower case."""

DEFAULT_CHANNEL: Final = "ad_copy"

LOCALES: Final[tuple[str, ...]] = ("en-US", "zh-CN")
"""The locales copy is written, checked and explained in."""

DEFAULT_LOCALE: Final = "en-US"

PRICE_BANDS: Final[tuple[str, ...]] = ("", "budget", "mid", "premium", "luxury")
"""A shopper's price band; "" is unknown (a cold-start profile)."""


def locale_or_default(locale: str) -> str:
    """The locale itself when the platform supports it, else the default."""
    return locale if locale in LOCALES else DEFAULT_LOCALE


def describe(names: tuple[str, ...]) -> str:
    """`a, b or c`: for validation messages that list the allowed values."""
    shown = [n for n in names if n]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
