"""copyloop.profile.segments: rule-based segment labels, and rules validated against the known
profile figures."""

from __future__ import annotations

import pytest

from copyloop.profile.segments import DEFAULT_RULES, label, parse_rules
from copyloop.profile.settings import KNOWN_FIGURES


def test_segment_rules_label_and_validate() -> None:
    rules = parse_rules(DEFAULT_RULES, KNOWN_FIGURES)
    figures = dict.fromkeys(KNOWN_FIGURES, 0)
    figures.update(
        event_count=20,
        purchase_count=4,
        monetary_total=500.0,
        top_category="Toys",
        top_category_share=0.8,
        price_band="premium",
        recency_days=1.0,
    )
    assert label(rules, figures) == ["loyal_high_value", "premium_shopper", "fan:Toys"]
    with pytest.raises(ValueError, match="unknown figure"):
        parse_rules([{"label": "x", "all": [["nope", ">", 1]]}], KNOWN_FIGURES)
    with pytest.raises(ValueError, match="unknown operator"):
        parse_rules([{"label": "x", "all": [["event_count", "~", 1]]}], KNOWN_FIGURES)
    with pytest.raises(ValueError, match="needs 'all' or 'any'"):
        parse_rules([{"label": "x"}], KNOWN_FIGURES)
