"""Loads demo catalog and events into a running ProfileService over gRPC, the way a shop's
integration would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from itertools import islice

from copyloop.common.protoconv import epoch_to_ts
from copyloop.demo.catalog import DemoItem
from copyloop.demo.shoppers import DemoEvent
from copyloop.v1 import common_pb2, profile_pb2, profile_pb2_grpc

EVENT_TYPES = {
    "view": profile_pb2.EVENT_TYPE_VIEW,
    "click": profile_pb2.EVENT_TYPE_CLICK,
    "add_to_cart": profile_pb2.EVENT_TYPE_ADD_TO_CART,
    "purchase": profile_pb2.EVENT_TYPE_PURCHASE,
    "search": profile_pb2.EVENT_TYPE_SEARCH,
    "impression": profile_pb2.EVENT_TYPE_IMPRESSION,
}


def item_to_proto(item: DemoItem) -> common_pb2.Item:
    return common_pb2.Item(
        item_id=item.item_id,
        title=item.title,
        brand=item.brand,
        category_path=list(item.category_path),
        price=item.price,
        list_price=item.list_price,
        currency_code=item.currency,
        attributes=dict(item.attributes),
        selling_points=list(item.selling_points),
        tags=list(item.tags),
        stock=item.stock,
    )


def event_to_proto(event: DemoEvent) -> profile_pb2.Event:
    return profile_pb2.Event(
        event_id=event.event_id,
        user_id=event.user_id,
        type=EVENT_TYPES[event.type],
        item_id=event.item_id,
        event_time=epoch_to_ts(event.event_time),
        quantity=event.quantity,
        price=event.price,
        query=event.query,
    )


async def load_catalog(
    stub: profile_pb2_grpc.ProfileServiceStub,
    items: Sequence[DemoItem],
    metadata: Sequence[tuple[str, str]],
    batch: int = 500,
) -> int:
    written = 0
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        await stub.UpsertItems(
            profile_pb2.UpsertItemsRequest(
                items=[item_to_proto(i) for i in chunk], idempotency_key=f"demo-catalog-{start}"
            ),
            metadata=metadata,
        )
        written += len(chunk)
    return written


async def stream_events(
    stub: profile_pb2_grpc.ProfileServiceStub,
    events: Iterable[DemoEvent],
    metadata: Sequence[tuple[str, str]],
    chunk_size: int = 1000,
) -> profile_pb2.IngestSummary:
    async def chunks() -> AsyncIterator[profile_pb2.IngestEventStreamRequest]:
        iterator = iter(events)
        while chunk := list(islice(iterator, chunk_size)):
            yield profile_pb2.IngestEventStreamRequest(events=[event_to_proto(e) for e in chunk])

    # grpc ships no type stubs, so the call's reply is Any to mypy until bound to its type.
    reply: profile_pb2.IngestEventStreamResponse = await stub.IngestEventStream(
        chunks(), metadata=metadata
    )
    return reply.summary
