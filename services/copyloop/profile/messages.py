"""Conversion and validation between copyloop.v1 messages and ProfileService domain types."""

from __future__ import annotations

import math
import time

from copyloop.common.errors import Violations
from copyloop.common.protoconv import PRICE_BAND_ENUMS, dt_to_ts, epoch_to_ts, ts_to_epoch
from copyloop.profile.catalog import ITEM_ID, ItemData
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
    for name in ("min_price", "max_price"):
        value = getattr(f, name)
        violations.check(math.isfinite(value) and value >= 0, f"{prefix}.{name}", "must be >= 0")
    if f.min_price and f.max_price:
        violations.check(f.min_price <= f.max_price, f"{prefix}.max_price", "must be >= min_price")
    violations.check(
        len(f.exclude_item_ids) <= 10_000, f"{prefix}.exclude_item_ids", "at most 10,000"
    )
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
    if ev.quantity < 0:
        return reject("quantity", "must be >= 0")
    if not math.isfinite(ev.price) or ev.price < 0:
        return reject("price", "must be >= 0")
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
