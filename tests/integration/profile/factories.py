"""Message builders for the profile tests."""

from __future__ import annotations

import time

from copyloop.common.protoconv import epoch_to_ts
from copyloop.v1 import common_pb2, profile_pb2

NOW = time.time()


def item(item_id: str, **over: object) -> common_pb2.Item:
    fields: dict[str, object] = dict(
        item_id=item_id,
        title=f"Item {item_id}",
        brand="Acme",
        category_path=["Toys", "Puzzles"],
        price=20.0,
        list_price=0.0,
        currency_code="USD",
        stock=5,
        selling_points=["fun"],
    )
    fields.update(over)
    return common_pb2.Item(**fields)  # type: ignore[arg-type]


def event(
    event_id: str, user: str, kind: int, item_id: str = "", t: float | None = None, **over: object
) -> profile_pb2.Event:
    return profile_pb2.Event(
        event_id=event_id,
        user_id=user,
        type=kind,
        item_id=item_id,
        event_time=epoch_to_ts(NOW if t is None else t),
        **over,  # type: ignore[arg-type]
    )
