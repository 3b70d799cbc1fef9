"""Catalog rules: what a valid item is, and when an item's version changes."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

ITEM_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_BATCH = 1000


@dataclass(frozen=True)
class ItemData:
    """An item's attributes as written by the shop (no version, no timestamps)."""

    item_id: str
    title: str
    brand: str = ""
    category_path: tuple[str, ...] = ()
    price: float = 0.0
    list_price: float = 0.0
    currency_code: str = "USD"
    attributes: dict[str, str] = field(default_factory=dict)
    selling_points: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    stock: int = 0

    @property
    def top_category(self) -> str:
        return self.category_path[0] if self.category_path else ""

    @property
    def leaf_category(self) -> str:
        return self.category_path[-1] if self.category_path else ""

    @property
    def discounted(self) -> bool:
        return self.list_price > self.price

    def content_hash(self) -> str:
        """Identical attributes -> identical hash -> no new version."""
        canonical: dict[str, Any] = {
            "title": self.title,
            "brand": self.brand,
            "category_path": list(self.category_path),
            "price": round(self.price, 6),
            "list_price": round(self.list_price, 6),
            "currency_code": self.currency_code,
            "attributes": dict(sorted(self.attributes.items())),
            "selling_points": list(self.selling_points),
            "tags": list(self.tags),
            "stock": self.stock,
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def item_violations(item: ItemData, prefix: str) -> list[tuple[str, str]]:
    """(field, description) for every rule the item breaks."""
    problems: list[tuple[str, str]] = []

    def bad(name: str, why: str) -> None:
        problems.append((f"{prefix}.{name}", why))

    if not ITEM_ID.match(item.item_id):
        bad("item_id", "required, 1-128 characters of [A-Za-z0-9_.:-]")
    if not item.title.strip():
        bad("title", "required")
    elif len(item.title) > 500:
        bad("title", "at most 500 characters")
    if len(item.brand) > 256:
        bad("brand", "at most 256 characters")
    if not math.isfinite(item.price) or item.price < 0:
        bad("price", "must be a finite number >= 0")
    if not math.isfinite(item.list_price) or item.list_price < 0:
        bad("list_price", "must be a finite number >= 0 (0 = none)")
    if item.currency_code and not CURRENCY.match(item.currency_code):
        bad("currency_code", "must be a 3-letter ISO 4217 code, e.g. USD")
    if item.stock < 0:
        bad("stock", "must be >= 0")
    if len(item.category_path) > 10 or any(
        not c.strip() or len(c) > 256 for c in item.category_path
    ):
        bad("category_path", "at most 10 non-empty levels of <= 256 characters")
    if len(item.attributes) > 100:
        bad("attributes", "at most 100 entries")
    if len(item.selling_points) > 20 or any(len(s) > 500 for s in item.selling_points):
        bad("selling_points", "at most 20 entries of <= 500 characters")
    if len(item.tags) > 50:
        bad("tags", "at most 50 entries")
    return problems
