"""Edge validation shared by every service: one check per kind of value, so a request that a
store could not hold is INVALID_ARGUMENT at the door instead of INTERNAL at the database.

What each kind of value must be:
- text: no NUL characters (PostgreSQL refuses them in text and JSON) and no longer than the
  column it lands in (PostgreSQL refuses that too; SQLite would quietly store it);
- numbers: finite (NaN and infinities poison sums and JSON), and within sane ranges (prices up
  to 1e9, quantities within int32, which is what the store's integer column holds);
- enums: one of the numbers the proto defines (proto3 passes unknown numbers through);
- timestamps: between 1970-01-01 and 9999-12-31 with valid nanos;
- page tokens: keys this service could have issued;
- JSON-bound values: finite numbers and NUL-free strings all the way down.

`scan` applies the type checks to every field of a request message generically (with per-field
length limits from the proto field's full name), so a field added to a proto is checked without
anyone remembering to; the messages.py of each service adds the field-specific rules.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from copyloop.common.errors import Violations

NUL = "\x00"
MAX_PRICE = 1e9  # a unit price; the profile's totals are clamped from here (profiles.py)
MAX_MAGNITUDE = 1e12  # any other request number: far beyond a real value, far below overflow
INT32_MAX = 2**31 - 1
MIN_TIME_S = 0  # 1970-01-01T00:00:00Z: stored epoch seconds are never negative
MAX_TIME_S = 253_402_300_799  # 9999-12-31T23:59:59Z: the last second a datetime can hold
DEFAULT_MAX_TEXT = 10_000  # any string field without a tighter limit
MAX_PAGE_KEY = 256  # a page token's key: the longest key any listing pages by
MAX_SCAN_VIOLATIONS = 100  # a request this broken has told its sender enough
MAX_JSON_DEPTH = 32
MAX_EXCLUDED = 10_000  # ids an ItemFilter may exclude
OFF_LOOP_BYTES = 64 * 1024  # requests this big are checked on a worker thread

_TIMESTAMP = "google.protobuf.Timestamp"

# Column sizes of the types in common.proto, where they land in any service's store. Keyed by
# the proto field's full name (map entries: "<Message>.<Field>Entry.key" / ".value").
COMMON_TEXT_LIMITS: dict[str, int] = {
    "copyloop.v1.Item.item_id": 128,
    "copyloop.v1.Item.title": 500,
    "copyloop.v1.Item.brand": 256,
    "copyloop.v1.Item.category_path": 256,
    "copyloop.v1.Item.AttributesEntry.key": 128,
    "copyloop.v1.Item.AttributesEntry.value": 1000,
    "copyloop.v1.Item.selling_points": 500,
    "copyloop.v1.Item.tags": 128,
    "copyloop.v1.ItemFilter.categories": 256,
    "copyloop.v1.ItemFilter.exclude_item_ids": 128,
    "copyloop.v1.ItemFilter.tags": 128,
    "copyloop.v1.Context.placement": 128,
    "copyloop.v1.Context.locale": 16,
    "copyloop.v1.UserProfile.user_id": 128,
    "copyloop.v1.UserProfile.recent_item_ids": 128,
    "copyloop.v1.UserProfile.segments": 128,
    "copyloop.v1.AffinityScore.key": 256,
}


class Limits:
    """Per-field text limits (proto full name -> characters) and the default for the rest."""

    def __init__(
        self, texts: Mapping[str, int] | None = None, default_text: int = DEFAULT_MAX_TEXT
    ) -> None:
        self.texts = dict(texts or {})
        self.default_text = default_text
        self.facts: dict[FieldDescriptor, _FieldFacts] = {}  # the walk's per-field cache

    def text(self, f: FieldDescriptor) -> int:
        return self.texts.get(f.full_name, self.default_text)


def limits(*tables: Mapping[str, int], default_text: int = DEFAULT_MAX_TEXT) -> Limits:
    """COMMON_TEXT_LIMITS overlaid with a service's own tables."""
    merged: dict[str, int] = dict(COMMON_TEXT_LIMITS)
    for table in tables:
        merged.update(table)
    return Limits(merged, default_text)


# ---- one check per kind of value ----------------------------------------------------------


def text_problem(value: str, max_len: int, required: bool = False) -> str | None:
    if required and not value.strip():
        return "required"
    if len(value) > max_len:
        return f"at most {max_len} characters"
    if NUL in value:
        return "must not contain NUL characters"
    return None


def check_text(v: Violations, path: str, value: str, max_len: int, required: bool = False) -> bool:
    problem = text_problem(value, max_len, required)
    return v.check(problem is None, path, problem or "")


def number_problem(value: float, lo: float = 0.0, hi: float = MAX_MAGNITUDE) -> str | None:
    if not math.isfinite(value):
        return "must be a finite number"
    if not lo <= value <= hi:
        return f"must be between {lo:g} and {hi:g}"
    return None


def check_number(
    v: Violations, path: str, value: float, lo: float = 0.0, hi: float = MAX_MAGNITUDE
) -> bool:
    problem = number_problem(value, lo, hi)
    return v.check(problem is None, path, problem or "")


def check_int(v: Violations, path: str, value: int, lo: int = 0, hi: int = INT32_MAX) -> bool:
    return v.check(lo <= value <= hi, path, f"must be between {lo} and {hi}")


def enum_problem(value: int, enum: EnumDescriptor, required: bool = False) -> str | None:
    if value not in enum.values_by_number:
        return f"unknown {enum.name} value {value}"
    if required and value == 0:
        return f"required: a {enum.name}"
    return None


def check_enum(
    v: Violations, path: str, value: int, enum: EnumDescriptor, required: bool = False
) -> bool:
    problem = enum_problem(value, enum, required)
    return v.check(problem is None, path, problem or "")


def time_problem(seconds: int, nanos: int = 0) -> str | None:
    if not MIN_TIME_S <= seconds <= MAX_TIME_S:
        return "must be between 1970-01-01 and 9999-12-31"
    if not 0 <= nanos <= 999_999_999:
        return "nanos must be between 0 and 999999999"
    return None


def check_timestamp(v: Violations, path: str, ts: Any) -> bool:
    """A google.protobuf.Timestamp within what the stores and datetime can hold."""
    problem = time_problem(ts.seconds, ts.nanos)
    return v.check(problem is None, path, problem or "")


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why a value cannot go into a JSON column on every backend (PostgreSQL rejects NaN,
    infinities and NUL characters that SQLite would store), or None."""
    if depth > MAX_JSON_DEPTH:
        return "nested too deeply"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "must be a finite number"
    if isinstance(value, int):
        return None
    if isinstance(value, str):
        return "must not contain NUL characters" if NUL in value else None
    if isinstance(value, Mapping):
        for k, item in value.items():
            problem = json_problem(str(k), depth + 1) or json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list | tuple):
        for item in value:
            problem = json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"cannot be stored as JSON ({type(value).__name__})"


def finite_or(value: float, default: float = 0.0, hi: float = MAX_MAGNITUDE) -> float:
    """A stored or computed number made safe to add to and to serialise: NaN -> default,
    anything beyond +-hi (infinities included) -> +-hi."""
    if math.isnan(value):
        return default
    return max(-hi, min(hi, value))


def check_item_filter(v: Violations, f: Any, prefix: str) -> None:
    """An ItemFilter as ProfileService applies it (profile's ListItems and RecallItems, and
    fusion's Recommend, which forwards it): prices within [0, MAX_PRICE], min <= max, at most
    MAX_EXCLUDED excluded ids."""
    for name in ("min_price", "max_price"):
        check_number(v, f"{prefix}.{name}", getattr(f, name), 0.0, MAX_PRICE)
    if f.min_price and f.max_price:
        v.check(f.min_price <= f.max_price, f"{prefix}.max_price", "must be >= min_price")
    v.check(
        len(f.exclude_item_ids) <= MAX_EXCLUDED,
        f"{prefix}.exclude_item_ids",
        f"at most {MAX_EXCLUDED:,}",
    )


# ---- page tokens --------------------------------------------------------------------------


def page_key_problem(after: object, pattern: re.Pattern[str] | None = None) -> str | None:
    """A decoded page token's key must be one this service could have issued; anything else is
    a forged or corrupted token."""
    if not isinstance(after, str):
        return "is not a token this service issued"
    if len(after) > MAX_PAGE_KEY or NUL in after:
        return "is not a token this service issued"
    if pattern is not None and after and not pattern.fullmatch(after):
        return "is not a token this service issued"
    return None


# ---- the generic walk ---------------------------------------------------------------------
# Hot: an ingest batch of 10,000 events walks ~150,000 fields, so the walk keeps per-field
# facts in a cache keyed by descriptor and builds a field path only when something is wrong.

_STRING = FieldDescriptor.TYPE_STRING
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_ENUM = FieldDescriptor.TYPE_ENUM
_UNSIGNED64 = (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64)
_BIGINT_MAX = 2**63 - 1  # what a BIGINT column holds
_SKIP, _TEXT, _NUMBER, _ENUMERATED, _UNSIGNED, _MESSAGE, _TIME, _MAP = range(8)


class _FieldFacts:
    """What the walk needs to know of a field, computed once per (limits, field)."""

    __slots__ = ("entry", "enum_name", "enum_numbers", "kind", "max_len", "name", "repeated")

    def __init__(self, f: FieldDescriptor, lim: Limits) -> None:
        self.name = f.name
        self.repeated = f.is_repeated
        self.max_len = lim.text(f)
        self.enum_numbers: frozenset[int] = frozenset()
        self.enum_name = ""
        self.entry: tuple[_FieldFacts, _FieldFacts] | None = None
        sub = f.message_type
        if sub is not None:
            if sub.GetOptions().map_entry:
                self.kind = _MAP
                by_name = sub.fields_by_name
                self.entry = (_FieldFacts(by_name["key"], lim), _FieldFacts(by_name["value"], lim))
            else:
                self.kind = _TIME if sub.full_name == _TIMESTAMP else _MESSAGE
        elif f.type == _STRING:
            self.kind = _TEXT
        elif f.type in _FLOATS:
            self.kind = _NUMBER
        elif f.type == _ENUM and f.enum_type is not None:
            self.kind = _ENUMERATED
            self.enum_numbers = frozenset(f.enum_type.values_by_number)
            self.enum_name = f.enum_type.name
        elif f.type in _UNSIGNED64:
            self.kind = _UNSIGNED
        else:
            self.kind = _SKIP  # int32/int64/bool/bytes: any value fits their columns


def _facts(f: FieldDescriptor, lim: Limits) -> _FieldFacts:
    found = lim.facts.get(f)
    if found is None:
        found = lim.facts[f] = _FieldFacts(f, lim)
    return found


def scan(msg: Message, v: Violations, lim: Limits, prefix: str = "") -> None:
    """Checks every set field of the message, recursively: text (length, NUL), numbers
    (finite, magnitude), enums (known numbers), timestamps (1970..9999). Stops once
    MAX_SCAN_VIOLATIONS are collected."""
    _walk(msg, v, lim, [prefix] if prefix else [])


def first_problem(msg: Message, lim: Limits, prefix: str = "") -> tuple[str, str] | None:
    """(field, description) of the first thing `scan` finds wrong, or None (one-by-one
    rejections, e.g. events in an ingest batch)."""
    v = Violations()
    scan(msg, v, lim, prefix)
    return (v.items[0].field, v.items[0].description) if v.items else None


def _path(parts: list[str], last: str) -> str:
    out = ""
    for part in [*parts, last]:
        out += part if not out or part.startswith("[") or out.endswith(".") else "." + part
    return out


def _walk(msg: Message, v: Violations, lim: Limits, parts: list[str]) -> None:
    for f, value in msg.ListFields():
        if len(v.items) >= MAX_SCAN_VIOLATIONS:
            return
        facts = _facts(f, lim)
        kind = facts.kind
        if kind == _SKIP:
            continue
        if kind == _MESSAGE:
            if facts.repeated:
                for n, element in enumerate(value):
                    parts.append(f"{facts.name}[{n}]")
                    _walk(element, v, lim, parts)
                    parts.pop()
            else:
                parts.append(facts.name)
                _walk(value, v, lim, parts)
                parts.pop()
        elif kind == _TIME:
            for n, element in enumerate(value) if facts.repeated else ((-1, value),):
                problem = time_problem(element.seconds, element.nanos)
                if problem:
                    v.add(_path(parts, _label(facts.name, n)), problem)
        elif kind == _MAP:
            assert facts.entry is not None
            key_facts, value_facts = facts.entry
            for key, item in value.items():
                label = f"{facts.name}[{_short(key)}]"
                problem = _scalar_problem(key_facts, key)
                if problem:
                    v.add(_path(parts, label + ".key"), problem)
                if value_facts.kind in (_MESSAGE, _TIME):
                    parts.append(label)
                    _walk(item, v, lim, parts)
                    parts.pop()
                else:
                    problem = _scalar_problem(value_facts, item)
                    if problem:
                        v.add(_path(parts, label), problem)
        elif facts.repeated:
            for n, element in enumerate(value):
                problem = _scalar_problem(facts, element)
                if problem:
                    v.add(_path(parts, f"{facts.name}[{n}]"), problem)
                    if len(v.items) >= MAX_SCAN_VIOLATIONS:
                        return
        else:
            problem = _scalar_problem(facts, value)
            if problem:
                v.add(_path(parts, facts.name), problem)


def _label(name: str, n: int) -> str:
    return name if n < 0 else f"{name}[{n}]"


def _scalar_problem(facts: _FieldFacts, value: Any) -> str | None:
    kind = facts.kind
    if kind == _TEXT:
        if len(value) > facts.max_len:
            return f"at most {facts.max_len} characters"
        return "must not contain NUL characters" if NUL in value else None
    if kind == _NUMBER:
        if -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:  # False for NaN too
            return None
        return number_problem(value, -MAX_MAGNITUDE, MAX_MAGNITUDE)
    if kind == _ENUMERATED:
        return None if value in facts.enum_numbers else f"unknown {facts.enum_name} value {value}"
    if kind == _UNSIGNED:
        return None if value <= _BIGINT_MAX else f"must be between 0 and {_BIGINT_MAX}"
    return None


def _short(key: object) -> str:
    """A map key as shown in a field path: printable, at most 32 characters."""
    text = str(key).replace(NUL, "\\0")
    return text if len(text) <= 32 else text[:29] + "..."


# ---- applying the checks to every RPC of a servicer ---------------------------------------

S = TypeVar("S", bound=type)
RequestCheck = Callable[[Message], None]


def checked_by(check: RequestCheck) -> Callable[[S], S]:
    """Class decorator for a servicer: every RPC method runs `check(request)` before its body,
    so no RPC (including one added later) skips the edge checks. Client-streaming RPCs get
    their chunks checked by the method itself (the request is an iterator here)."""

    def decorate(cls: S) -> S:
        for name, method in list(vars(cls).items()):
            if name.startswith("_") or (
                not inspect.iscoroutinefunction(method) and not (inspect.isasyncgenfunction(method))
            ):
                continue
            setattr(cls, name, _guard(method, check))
        return cls

    return decorate


def _guard(method: Callable[..., Any], check: RequestCheck) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: Any) -> Any:
            if isinstance(request, Message):
                await _run_check(check, request)
            async for reply in method(self, request, context):
                yield reply

        return stream

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Any) -> Any:
        if isinstance(request, Message):
            await _run_check(check, request)
        return await method(self, request, context)

    return unary


async def _run_check(check: RequestCheck, request: Message) -> None:
    """Small requests are checked inline; a big one (thousands of items) on a worker thread,
    so the event loop keeps answering health checks and other calls meanwhile."""
    if request.ByteSize() < OFF_LOOP_BYTES:
        check(request)
    else:
        await asyncio.to_thread(check, request)
