"""copyloop.common.pagination: page tokens round-trip and are bound to their query."""

from __future__ import annotations

import pytest

from copyloop.common import pagination
from copyloop.common.errors import InvalidArgument


def test_page_tokens_round_trip_and_bind_to_query() -> None:
    token = pagination.next_token("item-7", {"cat": "Toys"})
    page = pagination.parse_page(10, token, {"cat": "Toys"})
    assert (page.size, page.after) == (10, "item-7")
    assert pagination.parse_page(0, "", {}).size == pagination.DEFAULT_PAGE_SIZE
    with pytest.raises(InvalidArgument):
        pagination.parse_page(10, token, {"cat": "Books"})
    with pytest.raises(InvalidArgument):
        pagination.parse_page(-1, "", {})
