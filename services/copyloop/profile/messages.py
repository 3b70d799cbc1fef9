"""Conversion and validation between copyloop.v1 messages and ProfileService domain types."""

from __future__ import annotations

import math
import time

from google.protobuf.message import Message

from copyloop.common import validation
from copyloop.common.errors import Violations
from copyloop.common.protoconv import PRICE_BAND_ENUMS, dt_to_ts, epoch_to_ts, ts_to_epoch
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


def event_from_proto(index: int, ev: profile_pb2.Event, now: float) -> EventIn | Rejection:
    """A valid event, or the reason it is rejected (events are rejected one by one, not the
    whole batch, so one bad event cannot block a stream)."""

    def reject(field: str, why: str) -> Rejection:
        return Rejection(index, ev.event_id, field, f"{field}: {why}")

    if not ev.event_id or len(ev.event_id) > 128:
        return reject("event_id", "required, at most 128 characters")
    problem = validation.first_problem(ev, LIMITS)
    if problem is not None:
        return reject(*problem)
    if not ev.user_id or len(ev.user_id) > 128:
        return reject("user_id", "required, at most 128 characters")
    kind = EVENT_TYPES.get(ev.type)
    if kind is None:
        return reject(
            "type", "must be one of view, click, add_to_cart, purchase, search, impression"
        )
    if kind == "search":
        if not ev.query.strip():
            return reject("query", "required for search events")
    elif not ev.item_id:
        return reject("item_id", f"required for {kind} events")
    elif not ITEM_ID.match(ev.item_id):
        return reject("item_id", "is not a valid item id")
    if not ev.HasField("event_time") or ev.event_time.seconds <= 0:
        return reject("event_time", "required")
    t = ts_to_epoch(ev.event_time)
    if t > now + MAX_FUTURE_S:
        return reject("event_time", "more than 1 day in the future")
    if not 0 <= ev.quantity <= MAX_QUANTITY:
        return reject("quantity", f"must be between 0 and {MAX_QUANTITY}")
    if not math.isfinite(ev.price) or not 0 <= ev.price <= validation.MAX_PRICE:
        return reject("price", f"must be a finite number between 0 and {validation.MAX_PRICE:g}")
    return EventIn(
        event_id=ev.event_id,
        user_id=ev.user_id,
        type=kind,
        item_id=ev.item_id,
        event_time=t,
        quantity=ev.quantity or 1,
        price=ev.price,
        query=ev.query[:1000],
        request_id=ev.request_id[:128],
        creative_id=ev.creative_id[:128],
        channel=common_pb2.Channel.Name(ev.context.channel) if ev.context.channel else "",
    )


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
