"""AIP-158 pagination: page_size validation and opaque page tokens bound to the query.

A token carries the last key of the previous page plus a hash of the query's filter, so a token
reused with another filter is rejected instead of silently returning the wrong page.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from copyloop.common.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: str  # the last key of the previous page; "" for the first page


def query_hash(query: object) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]


def parse_page(page_size: int, page_token: str, query: object) -> PageRequest:
    violations: list[FieldViolation] = []
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        violations.append(FieldViolation("page_size", f"must be between 0 and {MAX_PAGE_SIZE}"))
    after = ""
    if page_token:
        try:
            data = json.loads(base64.urlsafe_b64decode(page_token.encode()).decode())
            after = str(data["after"])
            if data["q"] != query_hash(query):
                violations.append(FieldViolation("page_token", "was issued for a different filter"))
        except (ValueError, KeyError, TypeError):
            violations.append(FieldViolation("page_token", "is not a token this service issued"))
    if violations:
        raise InvalidArgument(violations)
    return PageRequest(size=page_size or DEFAULT_PAGE_SIZE, after=after)


def next_token(last_key: str, query: object) -> str:
    payload = json.dumps({"after": last_key, "q": query_hash(query)}).encode()
    return base64.urlsafe_b64encode(payload).decode()
