"""Feedback is never lost: outcomes reported while prediction and profile are down, across a
fusion restart, reach the training log and the profile exactly once when the targets are back.
Real servers and databases throughout; only the relay's backoff is shortened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.integration.fusion.loop import (
    F,
    dead_rows,
    follow_up,
    pending,
    recommend,
    report,
    restart_fusion,
    restart_prediction,
    restart_profile,
    rows,
    start_loop,
    wait_drained,
)

from copyloop.fusion.outbox import IMPRESSION, PREDICTION, OutboxMessage, enqueue, to_payload
from copyloop.platform import Platform
from copyloop.prediction import schema as prediction_schema
from copyloop.profile import schema as profile_schema
from copyloop.v1 import common_pb2, prediction_pb2


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    p = await start_loop(tmp_path)
    try:
        yield p
    finally:
        await p.stop(0)


def _url(tmp_path: Path, service: str) -> str:
    return f"sqlite:///{tmp_path / f'{service}.db'}"


async def test_no_outcome_is_lost_across_an_outage_and_a_fusion_restart(
    platform: Platform, tmp_path: Path
) -> None:
    impressions = await recommend(platform, [f"shopper-{u:05d}" for u in range(10)])
    assert len(impressions) == 30
    clicks = [follow_up(e, F.FEEDBACK_TYPE_CLICK, "click") for e in impressions[::2]]
    purchases = [follow_up(e, F.FEEDBACK_TYPE_PURCHASE, "purchase", 19.5) for e in impressions[::4]]

    # Both targets go down; fusion keeps answering and queues the feedback.
    await platform.prediction.stop(0)
    await platform.profile.stop(0)
    first = impressions[:20] + clicks[:5]
    reply = await report(platform, first)
    assert (reply.accepted, reply.duplicate, reply.rejected) == (len(first), 0, 0)
    assert pending(platform) > 0

    # Fusion restarts in the middle of the outage: the queue is in its database.
    await restart_fusion(platform)
    rest = impressions[20:] + clicks[5:] + purchases
    reply = await report(platform, rest)
    assert (reply.accepted, reply.rejected) == (len(rest), 0)
    # A client retry after the outage is a duplicate here, and still nothing is lost.
    retry = await report(platform, first[:4])
    assert (retry.accepted, retry.duplicate) == (0, 4)

    await restart_prediction(platform)
    await restart_profile(platform)
    await wait_drained(platform)
    assert dead_rows(platform) == 0

    imp_ids = {e.impression_id for e in impressions}
    logged = rows(
        _url(tmp_path, "prediction"),
        select(prediction_schema.impressions.c.impression_id),
    )
    assert sorted(r.impression_id for r in logged) == sorted(imp_ids)  # each exactly once
    outcome_rows = rows(
        _url(tmp_path, "prediction"),
        select(prediction_schema.outcomes.c.outcome_id, prediction_schema.outcomes.c.user_id),
    )
    assert sorted(r.outcome_id for r in outcome_rows) == sorted(
        e.event_id for e in clicks + purchases
    )
    assert all(r.user_id.startswith("shopper-") for r in outcome_rows)
    events = rows(
        _url(tmp_path, "profile"),
        select(profile_schema.events.c.event_id).where(
            profile_schema.events.c.event_id.like("fusion:%")
        ),
    )
    assert sorted(r.event_id for r in events) == sorted(
        f"fusion:{e.event_id}" for e in impressions + clicks + purchases
    )


async def test_one_target_down_does_not_hold_back_the_other(
    platform: Platform, tmp_path: Path
) -> None:
    impressions = await recommend(platform, ["shopper-00001", "shopper-00002"], n=2)
    await platform.prediction.stop(0)
    reply = await report(platform, impressions)
    assert reply.accepted == len(impressions)

    def profile_events() -> int:
        return len(
            rows(
                _url(tmp_path, "profile"),
                select(profile_schema.events.c.event_id).where(
                    profile_schema.events.c.event_id.like("fusion:%")
                ),
            )
        )

    # The profile's rows are delivered (and acknowledged) while prediction is still down; the
    # training-log rows wait for prediction.
    end = time.monotonic() + 30
    while pending(platform) > len(impressions) and time.monotonic() < end:
        await asyncio.sleep(0.1)
    assert pending(platform) == len(impressions)
    assert profile_events() == len(impressions)

    await restart_prediction(platform)
    await wait_drained(platform)
    logged = rows(
        _url(tmp_path, "prediction"), select(prediction_schema.impressions.c.impression_id)
    )
    assert len(logged) == len(impressions)


async def test_a_row_its_target_refuses_is_set_aside_and_the_rest_delivered(
    platform: Platform, tmp_path: Path
) -> None:
    good = [
        prediction_pb2.Impression(
            impression_id=f"direct-{n}",
            user_id="shopper-00001",
            context=common_pb2.Context(channel=common_pb2.CHANNEL_PUSH, locale="en-US"),
            candidate=prediction_pb2.ScoreCandidate(
                item=common_pb2.Item(item_id="demo-00001", title="t"), creative_id="c"
            ),
            impression_time=Timestamp(seconds=int(time.time())),
        )
        for n in range(3)
    ]
    bad = prediction_pb2.Impression(impression_id="direct-bad")  # no user, item or time
    queued = [good[0], bad, good[1], good[2]]
    with Session(platform.fusion.store.engine) as session, session.begin():
        enqueue(
            session,
            "tenant-a",
            [
                OutboxMessage(PREDICTION, IMPRESSION, i.impression_id, i.user_id, to_payload(i))
                for i in queued
            ],
        )
    platform.fusion.relay.wake()
    end = time.monotonic() + 30
    while pending(platform) and time.monotonic() < end:
        await asyncio.sleep(0.05)
    assert pending(platform) == 0 and dead_rows(platform) == 1
    logged = rows(
        _url(tmp_path, "prediction"), select(prediction_schema.impressions.c.impression_id)
    )
    assert sorted(r.impression_id for r in logged) == ["direct-0", "direct-1", "direct-2"]
