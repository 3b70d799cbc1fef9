"""Rule-based segment labels, configurable as data (JSON), never as code.

A rule is `{"label": "...", "all": [[figure, op, value], ...], "any": [...]}`; a label may name
a figure in braces (`"fan:{top_category}"`). Figures are those of ProfileView.figures():
event_count, view_count, click_count, cart_count, purchase_count, monetary_total,
discounted_purchase_share, price_band, mean_engaged_price, recency_days, frequency_30d,
top_category, top_category_share, tenure_days.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
    "in": lambda a, b: a in b,
}

DEFAULT_RULES: list[dict[str, Any]] = [
    {"label": "new_user", "all": [["event_count", "<", 5]]},
    {"label": "lapsed", "all": [["recency_days", ">=", 30]]},
    {
        "label": "loyal_high_value",
        "all": [["purchase_count", ">=", 3], ["monetary_total", ">=", 200]],
    },
    {
        "label": "bargain_hunter",
        "any": [["price_band", "==", "budget"], ["discounted_purchase_share", ">=", 0.5]],
        "all": [["event_count", ">=", 5]],
    },
    {"label": "premium_shopper", "any": [["price_band", "in", ["premium", "luxury"]]]},
    {"label": "window_shopper", "all": [["view_count", ">=", 15], ["purchase_count", "==", 0]]},
    {
        "label": "fan:{top_category}",
        "all": [["top_category_share", ">=", 0.6], ["event_count", ">=", 10]],
    },
]


@dataclass(frozen=True)
class SegmentRule:
    label: str
    all_of: tuple[tuple[str, str, Any], ...]
    any_of: tuple[tuple[str, str, Any], ...]

    def matches(self, figures: dict[str, Any]) -> bool:
        ok_all = all(_holds(figures, c) for c in self.all_of)
        ok_any = not self.any_of or any(_holds(figures, c) for c in self.any_of)
        return ok_all and ok_any

    def render_label(self, figures: dict[str, Any]) -> str:
        return self.label.format(**figures) if "{" in self.label else self.label


def _holds(figures: dict[str, Any], condition: tuple[str, str, Any]) -> bool:
    name, op, value = condition
    return OPERATORS[op](figures[name], value)


def parse_rules(raw: Sequence[dict[str, Any]], known_figures: set[str]) -> list[SegmentRule]:
    """Validates rules up front so a bad config fails at start-up, not on a request."""
    rules = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not entry.get("label"):
            raise ValueError(f"rule {i}: needs a non-empty 'label'")
        conditions: dict[str, tuple[tuple[str, str, Any], ...]] = {}
        for part in ("all", "any"):
            parsed = []
            for cond in entry.get(part, []):
                if not (isinstance(cond, list | tuple) and len(cond) == 3):
                    where = f"rule {i} ({entry['label']})"
                    raise ValueError(f"{where}: condition {cond!r} is not [figure, op, value]")
                name, op, value = cond
                if name not in known_figures:
                    raise ValueError(f"rule {i} ({entry['label']}): unknown figure {name!r}")
                if op not in OPERATORS:
                    raise ValueError(f"rule {i} ({entry['label']}): unknown operator {op!r}")
                parsed.append((name, op, value))
            conditions[part] = tuple(parsed)
        if not conditions["all"] and not conditions["any"]:
            raise ValueError(f"rule {i} ({entry['label']}): needs 'all' or 'any' conditions")
        rules.append(SegmentRule(entry["label"], conditions["all"], conditions["any"]))
    return rules


def load_rules(path: str, known_figures: set[str]) -> list[SegmentRule]:
    raw = json.loads(Path(path).read_text()) if path else DEFAULT_RULES
    return parse_rules(raw, known_figures)


def label(rules: Sequence[SegmentRule], figures: dict[str, Any]) -> list[str]:
    return [r.render_label(figures) for r in rules if r.matches(figures)]
