"""copyloop.profile.messages: event conversion. Ingest checks each event with a quick look at
its fields and runs the generic request walk only when that look finds something, so the
quick look must never pass an event the walk would name, and must name what the walk names."""

from __future__ import annotations

import itertools
import random
import time

from google.protobuf.timestamp_pb2 import Timestamp

from copyloop.common import validation
from copyloop.common.protoconv import epoch_to_ts
from copyloop.profile import messages
from copyloop.profile.profiles import EventIn
from copyloop.profile.store import Rejection
from copyloop.v1 import common_pb2, profile_pb2

P = profile_pb2
NOW = time.time()


def clean(**over: object) -> P.Event:
    fields: dict[str, object] = dict(
        event_id="e1",
        user_id="u1",
        type=P.EVENT_TYPE_VIEW,
        item_id="toy-1",
        event_time=epoch_to_ts(NOW - 60),
    )
    fields.update(over)
    return P.Event(**fields)  # type: ignore[arg-type]


# One change each, at and just past every limit the walk checks.
BAD_TEXT = ["x" * 128, "x" * 129, "x" * 10_000, "x" * 10_001, "a\x00b", "\x00", ""]
VARIANTS: list[dict[str, object]] = [
    *({name: text} for name in ("event_id", "user_id", "item_id") for text in BAD_TEXT),
    *({name: text} for name in ("query", "request_id", "creative_id") for text in BAD_TEXT),
    *({"type": n} for n in (0, 1, 6, 7, 99, -1)),
    *({"price": p} for p in (0.0, 1e12, 1e12 + 1, -1e12, -1e13, float("nan"), float("inf"))),
    {"quantity": -5},
    {"quantity": 2**40},
    {"event_time": Timestamp(seconds=-1)},
    {"event_time": Timestamp(seconds=2**40)},
    {"event_time": Timestamp(seconds=100, nanos=-1)},
    {"context": common_pb2.Context(channel=common_pb2.CHANNEL_PUSH, locale="en-US")},
    {"context": common_pb2.Context(channel=99)},  # type: ignore[arg-type]
    {"context": common_pb2.Context(locale="x" * 17)},
    {"context": common_pb2.Context(placement="a\x00")},
    {"context": common_pb2.Context(device=42)},  # type: ignore[arg-type]
    {"context": common_pb2.Context(request_time=epoch_to_ts(-5))},
]


def test_quick_event_check_names_exactly_what_the_generic_walk_names() -> None:
    events = [clean()]
    events += [clean(**v) for v in VARIANTS]
    # Two problems at once: the walk names the first in field order, and so must the check.
    events += [
        clean(**a, **b) for a, b in itertools.combinations(VARIANTS, 2) if a.keys() != b.keys()
    ]
    rng = random.Random(5)
    events += [
        clean(**a, **b, **c)
        for a, b, c in (rng.sample(VARIANTS, 3) for _ in range(300))
        if len({*a, *b, *c}) == 3
    ]
    named = 0
    for ev in events:
        expected = validation.first_problem(ev, messages.LIMITS)
        assert messages.event_scan_problem(ev) == expected, ev
        named += expected is not None
    assert named > len(events) // 2  # the corpus is mostly broken events


def test_clean_events_convert_and_bad_ones_are_rejected_one_by_one() -> None:
    batch = [
        clean(event_id="ok", price=12.5, quantity=0, context=common_pb2.Context(channel=3)),
        clean(event_id="nul", user_id="u\x00"),
        clean(event_id="blank", type=P.EVENT_TYPE_SEARCH, item_id="", query="  "),
        clean(event_id="future", event_time=epoch_to_ts(NOW + 3 * 86_400)),
        clean(event_id="cost", price=-1.0),
    ]
    valid, rejected = messages.split_events(batch, offset=10)
    assert valid == [
        (
            10,
            EventIn(
                "ok",
                "u1",
                "view",
                "toy-1",
                valid[0][1].event_time,
                1,
                12.5,
                "",
                "",
                "",
                "CHANNEL_PUSH",
            ),
        )
    ]
    assert abs(valid[0][1].event_time - (NOW - 60)) < 1e-3
    assert [(r.index, r.event_id, r.field) for r in rejected] == [
        (11, "nul", "user_id"),
        (12, "blank", "query"),
        (13, "future", "event_time"),
        (14, "cost", "price"),
    ]
    assert rejected[0] == Rejection(
        11, "nul", "user_id", "user_id: must not contain NUL characters"
    )
