"""Conversion and validation between copyloop.v1 messages and ProfileService domain types."""

from __future__ import annotations

import math
import time

from google.protobuf.message import Message

from copyloop.common import validation
from copyloop.common.errors import Violations
from copyloop.common.protoconv import PRICE_BAND_ENUMS, dt_to_ts, epoch_to_ts
from copyloop.profile.catalog import ITEM_ID, MAX_BATCH, ItemData, item_violations
from copyloop.profile.domain import Profile
from copyloop.profile.profiles import DAY_S, EventIn
from copyloop.profile.store import ItemQuery, Rejection, StoredItem
from copyloop.v1 import common_pb2, profile_pb2

EVENT_TYPES: dict[int, str] = {
    profile_pb2.EVENT_TYPE_VIEW: "view",
    profile_pb2.EVENT_TYPE_CLICK: "click",
    profile_pb2.EVENT_TYPE_ADD_TO_CART: "add_to_cart",
    profile_pb2.EVENT_TYPE_PURCHASE: "purchase",
    profile_pb2.EVENT_TYPE_SEARCH: "search",
    profile_pb2.EVENT_TYPE_IMPRESSION: "impression",
}
MAX_EVENTS = 10_000
MAX_FUTURE_S = DAY_S
MAX_QUANTITY = validation.INT32_MAX  # events.quantity is an INTEGER column
# Where each request string lands (profile/schema.py); the rest of common.proto is shared.
LIMITS = validation.limits(
    {
        "copyloop.v1.UpsertItemsRequest.idempotency_key": 128,
        "copyloop.v1.GetItemsRequest.item_ids": 128,
        "copyloop.v1.Event.event_id": 128,
        "copyloop.v1.Event.user_id": 128,
        "copyloop.v1.Event.item_id": 128,
        "copyloop.v1.GetUserProfileRequest.user_id": 128,
        "copyloop.v1.RecallItemsRequest.user_id": 128,
        "copyloop.v1.DeleteUserRequest.user_id": 128,
        "copyloop.v1.DeleteUserRequest.idempotency_key": 128,
    }
)


def validate_request(request: Message) -> None:
    """The edge checks every ProfileService RPC runs first (see copyloop.common.validation);
    ingest batches are checked event by event instead, so one bad event rejects only itself."""
    if isinstance(request, profile_pb2.IngestEventsRequest | profile_pb2.IngestEventStreamRequest):
        return
    v = Violations()
    if isinstance(request, profile_pb2.UpsertItemsRequest):
        upsert_violations(request, v)
    validation.scan(request, edge := Violations(), LIMITS)
    named = {x.field for x in v.items}
    for x in edge.items:  # a field the catalog rules already named is not named twice
        if x.field not in named:
            v.add(x.field, x.description)
    v.raise_if_any()


def upsert_violations(request: profile_pb2.UpsertItemsRequest, v: Violations) -> None:
    """Every catalog rule an upsert breaks, so the client learns all of them at once."""
    v.check(1 <= len(request.items) <= MAX_BATCH, "items", f"1 to {MAX_BATCH} items required")
    seen: set[str] = set()
    for n, proto in enumerate(request.items):
        if len(v.items) >= validation.MAX_SCAN_VIOLATIONS:
            return
        item = item_from_proto(proto)
        problems = item_violations(item, f"items[{n}]")
        for field, why in problems:
            v.add(field, why)
        flagged = {field for field, _ in problems}
        for name in ("price", "list_price"):
            if f"items[{n}].{name}" not in flagged:
                validation.check_number(
                    v, f"items[{n}].{name}", getattr(item, name), 0.0, validation.MAX_PRICE
                )
        if item.item_id in seen:
            v.add(f"items[{n}].item_id", "duplicated in this request")
        seen.add(item.item_id)


def item_from_proto(item: common_pb2.Item) -> ItemData:
    return ItemData(
        item_id=item.item_id,
        title=item.title,
        brand=item.brand,
        category_path=tuple(item.category_path),
        price=item.price,
        list_price=item.list_price,
        currency_code=item.currency_code or "USD",
        attributes=dict(item.attributes),
        selling_points=tuple(item.selling_points),
        tags=tuple(item.tags),
        stock=item.stock,
    )


def item_to_proto(stored: StoredItem) -> common_pb2.Item:
    d = stored.data
    return common_pb2.Item(
        item_id=d.item_id,
        title=d.title,
        brand=d.brand,
        category_path=list(d.category_path),
        price=d.price,
        list_price=d.list_price,
        currency_code=d.currency_code,
        attributes=d.attributes,
        selling_points=list(d.selling_points),
        tags=list(d.tags),
        stock=d.stock,
        version=stored.version,
        update_time=dt_to_ts(stored.update_time),
    )


def query_from_filter(
    f: common_pb2.ItemFilter, violations: Violations, prefix: str = "filter"
) -> ItemQuery:
    validation.check_item_filter(violations, f, prefix)
    return ItemQuery(
        categories=tuple(f.categories),
        min_price=f.min_price,
        max_price=f.max_price,
        in_stock_only=f.in_stock_only,
        exclude_item_ids=tuple(f.exclude_item_ids),
        tags=tuple(f.tags),
    )


_EVENT = profile_pb2.Event.DESCRIPTOR
_TEXT_MAX = [
    LIMITS.text(_EVENT.fields_by_name[name])
    for name in ("event_id", "user_id", "item_id", "query", "request_id", "creative_id")
]
_EVENT_TYPE_NUMBERS = frozenset(profile_pb2.EventType.values())
_TYPE_RULE = "must be one of view, click, add_to_cart, purchase, search, impression"


def event_scan_problem(ev: profile_pb2.Event) -> tuple[str, str] | None:
    """What `validation.first_problem(ev, LIMITS)` says of an event (see `_scan_problem`)."""
    stamp = ev.event_time
    texts = (ev.event_id, ev.user_id, ev.item_id, ev.query, ev.request_id, ev.creative_id)
    return _scan_problem(ev, texts, ev.type, ev.price, stamp.seconds, stamp.nanos)


def _scan_problem(
    ev: profile_pb2.Event,
    texts: tuple[str, str, str, str, str, str],
    kind: int,
    price: float,
    seconds: int,
    nanos: int,
) -> tuple[str, str] | None:
    """The same answer as `validation.first_problem(ev, LIMITS)`, cheaply for a clean event:
    the generic walk cost more than the rest of ingest's per-event work, so it runs only when
    a look at the fields (read once by the caller) finds something it would name; the walk
    then names it, word for word. Context (field 11, walked last) is walked when set."""
    t0, t1, t2, t3, t4, t5 = texts
    m0, m1, m2, m3, m4, m5 = _TEXT_MAX
    if (
        len(t0) <= m0
        and len(t1) <= m1
        and len(t2) <= m2
        and len(t3) <= m3
        and len(t4) <= m4
        and len(t5) <= m5
        and validation.NUL not in t0 + t1 + t2 + t3 + t4 + t5
        and kind in _EVENT_TYPE_NUMBERS
        and -validation.MAX_MAGNITUDE <= price <= validation.MAX_MAGNITUDE
        and validation.time_problem(seconds, nanos) is None
    ):
        if ev.HasField("context"):
            return validation.first_problem(ev.context, LIMITS, "context")
        return None
    return validation.first_problem(ev, LIMITS)


def event_from_proto(index: int, ev: profile_pb2.Event, now: float) -> EventIn | Rejection:
    """A valid event, or the reason it is rejected (events are rejected one by one, not the
    whole batch, so one bad event cannot block a stream). Each field is read from the message
    once: reading a protobuf field builds a new Python object every time."""
    event_id = ev.event_id
    if not event_id or len(event_id) > 128:
        return _reject(index, event_id, "event_id", "required, at most 128 characters")
    user_id, item_id, query = ev.user_id, ev.item_id, ev.query
    request_id, creative_id = ev.request_id, ev.creative_id
    type_number, price, quantity = ev.type, ev.price, ev.quantity
    has_time = ev.HasField("event_time")
    stamp = ev.event_time
    seconds, nanos = stamp.seconds, stamp.nanos
    texts = (event_id, user_id, item_id, query, request_id, creative_id)
    problem = _scan_problem(ev, texts, type_number, price, seconds, nanos)
    if problem is not None:
        return _reject(index, event_id, *problem)
    if not user_id or len(user_id) > 128:
        return _reject(index, event_id, "user_id", "required, at most 128 characters")
    kind = EVENT_TYPES.get(type_number)
    if kind is None:
        return _reject(index, event_id, "type", _TYPE_RULE)
    if kind == "search":
        if not query.strip():
            return _reject(index, event_id, "query", "required for search events")
    elif not item_id:
        return _reject(index, event_id, "item_id", f"required for {kind} events")
    elif not ITEM_ID.match(item_id):
        return _reject(index, event_id, "item_id", "is not a valid item id")
    if not has_time or seconds <= 0:
        return _reject(index, event_id, "event_time", "required")
    t = seconds + nanos / 1e9  # protoconv.ts_to_epoch
    if t > now + MAX_FUTURE_S:
        return _reject(index, event_id, "event_time", "more than 1 day in the future")
    if not 0 <= quantity <= MAX_QUANTITY:
        return _reject(index, event_id, "quantity", f"must be between 0 and {MAX_QUANTITY}")
    if not math.isfinite(price) or not 0 <= price <= validation.MAX_PRICE:
        return _reject(
            index,
            event_id,
            "price",
            f"must be a finite number between 0 and {validation.MAX_PRICE:g}",
        )
    channel = ev.context.channel if ev.HasField("context") else common_pb2.CHANNEL_UNSPECIFIED
    return EventIn(
        event_id,
        user_id,
        kind,
        item_id,
        t,
        quantity or 1,
        price,
        query[:1000],
        request_id[:128],
        creative_id[:128],
        common_pb2.Channel.Name(channel) if channel else "",
    )


def _reject(index: int, event_id: str, field: str, why: str) -> Rejection:
    return Rejection(index, event_id, field, f"{field}: {why}")


def split_events(
    events: list[profile_pb2.Event], offset: int = 0
) -> tuple[list[tuple[int, EventIn]], list[Rejection]]:
    now = time.time()
    valid: list[tuple[int, EventIn]] = []
    rejected: list[Rejection] = []
    for i, ev in enumerate(events):
        parsed = event_from_proto(offset + i, ev, now)
        if isinstance(parsed, Rejection):
            rejected.append(parsed)
        else:
            valid.append((offset + i, parsed))
    return valid, rejected


def profile_to_proto(profile: Profile) -> common_pb2.UserProfile:
    v = profile.view
    s = v.state
    msg = common_pb2.UserProfile(
        user_id=v.user_id,
        cold_start=v.cold_start,
        category_affinities=[
            common_pb2.AffinityScore(key=a.key, score=a.score, share=a.share) for a in v.categories
        ],
        brand_affinities=[
            common_pb2.AffinityScore(key=a.key, score=a.score, share=a.share) for a in v.brands
        ],
        price_band=PRICE_BAND_ENUMS[v.price_band],
        mean_engaged_price=v.mean_engaged_price,
        recency_days=v.recency_days,
        frequency_30d=v.frequency_30d,
        monetary_total=s.monetary_total,
        purchase_count=s.purchase_count,
        recent_item_ids=list(s.recent_item_ids),
        segments=profile.segments,
        event_count=s.event_count,
    )
    if not v.cold_start:
        msg.first_event_time.CopyFrom(epoch_to_ts(s.first_time))
        msg.last_event_time.CopyFrom(epoch_to_ts(s.last_time))
    return msg
