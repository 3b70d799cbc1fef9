"""Plain Python values (dicts from CSV/JSONL rows, short enum names like "push") to the
protobuf messages the services take. Rows from a CSV are all strings and rows from JSONL are
typed, so every converter accepts both; a bad value raises InputError naming the field."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf import timestamp_pb2

from copyloop.v1 import common_pb2, fusion_pb2, generation_pb2, profile_pb2

if TYPE_CHECKING:
    # Stub-only generic: the wrapper of enum E is _EnumTypeWrapper[E.ValueType].
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

_V = TypeVar("_V", bound=int)

__all__ = [
    "EVENT_FIELDS",
    "ITEM_FIELDS",
    "InputError",
    "enum_label",
    "event_from_dict",
    "item_from_dict",
    "parse_arm_pins",
    "parse_arm_strategy",
    "parse_channel",
    "parse_event_type",
    "parse_feedback_type",
    "parse_objective",
    "parse_tone",
    "pin_arm_versions",
    "to_timestamp",
]

ITEM_FIELDS = (
    "item_id",
    "title",
    "brand",
    "category_path",
    "price",
    "list_price",
    "currency_code",
    "stock",
    "selling_points",
    "tags",
    "attributes",
)
EVENT_FIELDS = (
    "event_id",
    "user_id",
    "type",
    "item_id",
    "event_time",
    "quantity",
    "price",
    "query",
    "request_id",
    "creative_id",
)
CATEGORY_SEPARATOR = ">"
LIST_SEPARATOR = "|"
# Epoch values above this are read as milliseconds (seconds would be past the year 5000).
EPOCH_MS_THRESHOLD = 1e11


class InputError(ValueError):
    """A value the SDK cannot turn into a request field; the message starts with the field."""


# ------------------------------------------------------------------------------------ enums


def _enum(wrapper: _EnumTypeWrapper[_V], prefix: str, value: str | int, what: str) -> _V:
    if isinstance(value, int):
        for number in wrapper.values():
            if number == value and number != 0:
                return number
        raise InputError(f"{what}: unknown value {value}")
    choices = [
        n.removeprefix(prefix).lower() for n, _ in wrapper.items() if not n.endswith("UNSPECIFIED")
    ]
    if not value.strip():
        raise InputError(f"{what}: required; one of {', '.join(choices)}")
    name = value.strip().upper().replace("-", "_").replace(" ", "_")
    name = name if name.startswith(prefix) else prefix + name
    try:
        number = wrapper.Value(name)
    except ValueError:
        raise InputError(f"{what}: unknown value {value!r}; one of {', '.join(choices)}") from None
    if number == 0:
        raise InputError(f"{what}: required; one of {', '.join(choices)}")
    return number


def parse_channel(value: str | int) -> common_pb2.Channel.ValueType:
    """ "push", "CHANNEL_PUSH", "ad_copy", "ad-copy" -> common_pb2.CHANNEL_*."""
    return _enum(common_pb2.Channel, "CHANNEL_", value, "channel")


def parse_tone(value: str | int) -> generation_pb2.Tone.ValueType:
    return _enum(generation_pb2.Tone, "TONE_", value, "tone")


def parse_event_type(value: str | int) -> profile_pb2.EventType.ValueType:
    return _enum(profile_pb2.EventType, "EVENT_TYPE_", value, "type")


def parse_feedback_type(value: str | int) -> fusion_pb2.FeedbackType.ValueType:
    return _enum(fusion_pb2.FeedbackType, "FEEDBACK_TYPE_", value, "type")


def parse_arm_strategy(value: str | int) -> fusion_pb2.ArmStrategy.ValueType:
    return _enum(fusion_pb2.ArmStrategy, "ARM_STRATEGY_", value, "strategy")


def parse_objective(value: str | int) -> fusion_pb2.RankingObjective.ValueType:
    return _enum(fusion_pb2.RankingObjective, "RANKING_OBJECTIVE_", value, "objective")


def enum_label(wrapper: _EnumTypeWrapper[_V], number: _V, prefix: str) -> str:
    """CHANNEL_PUSH -> "push" for display."""
    try:
        return wrapper.Name(number).removeprefix(prefix).lower()
    except ValueError:
        return str(number)


# ------------------------------------------------------------------------------------ scalars


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _float(name: str, value: Any, default: float = 0.0) -> float:
    if _blank(value):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: not a number: {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name}: must be a finite number")
    return number


def _int(name: str, value: Any, default: int = 0) -> int:
    if _blank(value):
        return default
    if isinstance(value, bool):
        raise InputError(f"{name}: not a whole number: {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: not a whole number: {value!r}") from None
    if not number.is_integer():
        raise InputError(f"{name}: not a whole number: {value!r}")
    return int(number)


def _str(name: str, value: Any) -> str:
    if _blank(value):
        return ""
    if isinstance(value, (dict, list)):
        raise InputError(f"{name}: expected text, got {type(value).__name__}")
    return str(value).strip()


def _list(name: str, value: Any, separator: str) -> list[str]:
    """A list as JSON array or as one string split on `separator`."""
    if _blank(value):
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [part.strip() for part in value.split(separator) if part.strip()]
    raise InputError(f"{name}: expected a list or '{separator}'-separated text")


def _attributes(value: Any) -> dict[str, str]:
    if _blank(value):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise InputError("attributes: not a JSON object") from None
    if not isinstance(value, Mapping):
        raise InputError("attributes: expected a JSON object of name -> value")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def to_timestamp(value: Any, name: str = "event_time") -> timestamp_pb2.Timestamp:
    """ISO 8601 (naive times are UTC) or epoch seconds (milliseconds above 1e11)."""
    if _blank(value):
        raise InputError(f"{name}: required (ISO 8601 or epoch seconds)")
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise InputError(f"{name}: not ISO 8601 or epoch seconds: {text!r}") from None
            seconds = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(seconds):
        raise InputError(f"{name}: must be a finite time")
    if abs(seconds) > EPOCH_MS_THRESHOLD:
        seconds /= 1000.0
    ts = timestamp_pb2.Timestamp()
    whole = math.floor(seconds)
    ts.seconds, ts.nanos = whole, round((seconds - whole) * 1e9) % 1_000_000_000
    return ts


def _check_keys(row: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = [k for k in row if k not in allowed]
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise InputError(f"unknown {what} field(s) {names}; expected: {', '.join(allowed)}")


# ------------------------------------------------------------------------------------ messages


def item_from_dict(row: Mapping[str, Any]) -> common_pb2.Item:
    """A catalog row -> Item. category_path: list or "A > B"; selling_points and tags: list or
    "a | b"; attributes: object or JSON text. Validation of required values is the server's."""
    _check_keys(row, ITEM_FIELDS, "item")
    return common_pb2.Item(
        item_id=_str("item_id", row.get("item_id")),
        title=_str("title", row.get("title")),
        brand=_str("brand", row.get("brand")),
        category_path=_list("category_path", row.get("category_path"), CATEGORY_SEPARATOR),
        price=_float("price", row.get("price")),
        list_price=_float("list_price", row.get("list_price")),
        currency_code=_str("currency_code", row.get("currency_code")).upper(),
        stock=_int("stock", row.get("stock")),
        selling_points=_list("selling_points", row.get("selling_points"), LIST_SEPARATOR),
        tags=_list("tags", row.get("tags"), LIST_SEPARATOR),
        attributes=_attributes(row.get("attributes")),
    )


def event_from_dict(row: Mapping[str, Any]) -> profile_pb2.Event:
    """A behaviour-event row -> Event; `type` is view, click, add_to_cart, purchase, search or
    impression."""
    _check_keys(row, EVENT_FIELDS, "event")
    return profile_pb2.Event(
        event_id=_str("event_id", row.get("event_id")),
        user_id=_str("user_id", row.get("user_id")),
        type=parse_event_type(_str("type", row.get("type"))),
        item_id=_str("item_id", row.get("item_id")),
        event_time=to_timestamp(row.get("event_time")),
        quantity=_int("quantity", row.get("quantity")),
        price=_float("price", row.get("price")),
        query=_str("query", row.get("query")),
        request_id=_str("request_id", row.get("request_id")),
        creative_id=_str("creative_id", row.get("creative_id")),
    )


# ------------------------------------------------------------------------ experiment arms


def parse_arm_pins(values: Iterable[str], option: str) -> dict[str, str]:
    """ "ARM_ID=VERSION" strings (a CLI option given once per arm) -> {arm_id: version}."""
    pins: dict[str, str] = {}
    for value in values:
        arm_id, sep, version = value.partition("=")
        arm_id, version = arm_id.strip(), version.strip()
        if not sep or not arm_id or not version:
            raise InputError(f"{option}: expected ARM_ID=VERSION, e.g. v2=2; got {value!r}")
        if arm_id in pins:
            raise InputError(f"{option}: arm {arm_id!r} given twice")
        pins[arm_id] = version
    return pins


def pin_arm_versions(
    arms: Sequence[fusion_pb2.Arm],
    copywriter_versions: Mapping[str, str] | None = None,
    template_versions: Mapping[str, str] | None = None,
) -> list[fusion_pb2.Arm]:
    """Copies of `arms` serving only copy of the copywriter model version and prompt template
    version named for their arm id; an id that is not an arm raises InputError."""
    copywriter_versions = copywriter_versions or {}
    template_versions = template_versions or {}
    known = {a.arm_id for a in arms}
    for name, pins in (
        ("copywriter_versions", copywriter_versions),
        ("template_versions", template_versions),
    ):
        unknown = sorted(set(pins) - known)
        if unknown:
            raise InputError(
                f"{name}: no arm {', '.join(map(repr, unknown))}; arms: {', '.join(sorted(known))}"
            )
    pinned = []
    for arm in arms:
        copy = fusion_pb2.Arm()
        copy.CopyFrom(arm)
        if arm.arm_id in copywriter_versions:
            copy.copywriter_version = copywriter_versions[arm.arm_id]
        if arm.arm_id in template_versions:
            copy.prompt_template_version = template_versions[arm.arm_id]
        pinned.append(copy)
    return pinned
