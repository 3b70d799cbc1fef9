"""AIP-158 pagination: page_size validation and opaque page tokens bound to the query.

A token carries the last key of the previous page plus a hash of the query's filter, so a token
reused with another filter is rejected instead of silently returning the wrong page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass

from copyloop.common.errors import FieldViolation, InvalidArgument
from copyloop.common.validation import page_key_problem

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: str  # the last key of the previous page; "" for the first page


def query_hash(query: object) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]


def parse_page(
    page_size: int, page_token: str, query: object, key_pattern: re.Pattern[str] | None = None
) -> PageRequest:
    """The page asked for. A token is opaque but not signed, so its key is checked like any
    input (`key_pattern`: what the listing's keys look like): a forged key is
    INVALID_ARGUMENT, never a query the store cannot run."""
    violations: list[FieldViolation] = []
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        violations.append(FieldViolation("page_size", f"must be between 0 and {MAX_PAGE_SIZE}"))
    after = ""
    if page_token:
        try:
            data = json.loads(base64.urlsafe_b64decode(page_token.encode()).decode())
            problem = page_key_problem(data["after"], key_pattern)
            if problem:
                violations.append(FieldViolation("page_token", problem))
            elif data["q"] != query_hash(query):
                violations.append(FieldViolation("page_token", "was issued for a different filter"))
            else:
                after = data["after"]
        except (ValueError, KeyError, TypeError):
            violations.append(FieldViolation("page_token", "is not a token this service issued"))
    if violations:
        raise InvalidArgument(violations)
    return PageRequest(size=page_size or DEFAULT_PAGE_SIZE, after=after)


def next_token(last_key: str, query: object) -> str:
    payload = json.dumps({"after": last_key, "q": query_hash(query)}).encode()
    return base64.urlsafe_b64encode(payload).decode()
