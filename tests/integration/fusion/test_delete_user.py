"""DeleteUser through fusion erases the user from every table of every service (JSON snapshots
included), on SQLite and on PostgreSQL, and late traffic cannot bring the user back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import MetaData, Table, create_engine, inspect, select
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.integration.fusion.loop import (
    F,
    follow_up,
    recommend,
    report,
    restart_prediction,
    start_loop,
    wait_drained,
)
from tests.support.grpc_helpers import auth

from copyloop.fusion import schema as fusion_schema
from copyloop.platform import Platform
from copyloop.v1 import (
    common_pb2,
    fusion_pb2_grpc,
    prediction_pb2,
    prediction_pb2_grpc,
    profile_pb2,
    profile_pb2_grpc,
)

SERVICES = ("profile", "generation", "prediction", "fusion")
GONE, KEPT = "shopper-00003", "shopper-00004"


@pytest.fixture(params=["sqlite", "postgres"])
def database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Every service's database: SQLite files, or one fresh PostgreSQL database each."""
    if request.param == "sqlite":
        yield {s: f"sqlite:///{tmp_path / f'{s}.db'}" for s in SERVICES}
        return
    admin = request.getfixturevalue("postgres_admin_url")
    created = {s: create_postgres_database(admin) for s in SERVICES}
    try:
        yield {s: url for s, (url, _) in created.items()}
    finally:
        for _, name in created.values():
            drop_postgres_database(admin, name)


@pytest.fixture
async def platform(database_urls: dict[str, str], tmp_path: Path) -> AsyncIterator[Platform]:
    p = await start_loop(tmp_path, database_urls=database_urls)
    try:
        yield p
    finally:
        await p.stop(0)


def occurrences(url: str, needle: str) -> list[str]:
    """Every (table.column) of the database whose value contains `needle`, over all rows and
    all columns (strings, JSON and bytes alike)."""
    engine = create_engine(url)
    found = []
    try:
        tables = inspect(engine).get_table_names()
        with engine.connect() as conn:
            for table in tables:
                t = Table(table, MetaData(), autoload_with=conn)
                for row in conn.execute(select(t)):
                    for column, value in row._mapping.items():
                        text = (
                            value.decode("utf-8", "replace")
                            if isinstance(value, bytes | memoryview)
                            else str(value)
                        )
                        if needle in text:
                            found.append(f"{table}.{column}")
    finally:
        engine.dispose()
    return sorted(set(found))


async def test_delete_user_erases_them_from_every_service(
    platform: Platform, database_urls: dict[str, str]
) -> None:
    shown = await recommend(platform, [GONE, KEPT, GONE], n=3)
    clicks = [follow_up(e, F.FEEDBACK_TYPE_CLICK, "click") for e in shown[::2]]
    assert (await report(platform, shown + clicks)).accepted == len(shown + clicks)
    await wait_drained(platform)
    # Everything about both users is in every service that keeps user data.
    for service in ("profile", "prediction", "fusion"):
        assert occurrences(database_urls[service], GONE), service
        assert occurrences(database_urls[service], KEPT), service

    # Feedback still queued for the user when the deletion comes is dropped, not delivered.
    await platform.prediction.stop(0)
    late_click = follow_up(shown[1], F.FEEDBACK_TYPE_CLICK, "late-click")
    assert (await report(platform, [late_click])).accepted == 1
    async with grpc.aio.insecure_channel(platform.fusion.address) as channel:
        fusion = fusion_pb2_grpc.FusionServiceStub(channel)
        reply = await fusion.DeleteUser(
            F.FusionServiceDeleteUserRequest(user_id=GONE), metadata=auth()
        )
        assert reply.deleted_impression_count == 6 and reply.deleted_outcome_count >= 6
        assert reply.deleted_assignment_count == 0 and reply.queued_deletion_count == 2
        assert reply.dropped_pending_count >= 1  # the late click, not yet in the training log
        again = await fusion.DeleteUser(
            F.FusionServiceDeleteUserRequest(user_id=GONE), metadata=auth()
        )
        assert again.deleted_impression_count == 0
        await restart_prediction(platform)
        await wait_drained(platform)

        for service in SERVICES:
            assert occurrences(database_urls[service], GONE) == [], service
        for service in ("profile", "prediction", "fusion"):
            assert occurrences(database_urls[service], KEPT), service  # others untouched

        # Late traffic about the deleted user's old impressions cannot bring them back.
        late = await fusion.ReportOutcome(
            F.ReportOutcomeRequest(events=[follow_up(shown[0], F.FEEDBACK_TYPE_CLICK, "after")]),
            metadata=auth(),
        )
        assert (late.accepted, late.rejected) == (0, 1)
    async with grpc.aio.insecure_channel(platform.prediction.address) as channel:
        prediction = prediction_pb2_grpc.PredictionServiceStub(channel)
        before = Timestamp(seconds=int(time.time()) - 60)
        replayed = await prediction.LogImpressions(
            prediction_pb2.LogImpressionsRequest(impressions=[_impression(GONE, before)]),
            metadata=auth(),
        )
        assert (replayed.accepted, replayed.erased) == (0, 1)
        early = await prediction.LogOutcomes(
            prediction_pb2.LogOutcomesRequest(
                outcomes=[
                    prediction_pb2.Outcome(
                        outcome_id="late-outcome",
                        impression_id="old-impression",
                        type=prediction_pb2.OUTCOME_TYPE_CLICK,
                        outcome_time=before,
                        user_id=GONE,
                    )
                ]
            ),
            metadata=auth(),
        )
        assert (early.accepted, early.erased) == (0, 1)
    async with grpc.aio.insecure_channel(platform.profile.address) as channel:
        profile = profile_pb2_grpc.ProfileServiceStub(channel)
        replay = await profile.IngestEvents(
            profile_pb2.IngestEventsRequest(
                events=[
                    profile_pb2.Event(
                        event_id="replayed-before-deletion",
                        user_id=GONE,
                        type=profile_pb2.EVENT_TYPE_VIEW,
                        item_id="demo-00001",
                        event_time=before,
                    )
                ]
            ),
            metadata=auth(),
        )
        assert (replay.summary.accepted, replay.summary.rejected) == (0, 1)
        got = await profile.GetUserProfile(
            profile_pb2.GetUserProfileRequest(user_id=GONE), metadata=auth()
        )
        assert got.profile.event_count == 0
    for service in SERVICES:
        assert occurrences(database_urls[service], GONE) == [], service
    assert _served_rows(platform, GONE) == 0


def _impression(user_id: str, when: Timestamp) -> prediction_pb2.Impression:
    return prediction_pb2.Impression(
        impression_id="old-impression",
        user_id=user_id,
        context=common_pb2.Context(channel=common_pb2.CHANNEL_PUSH, locale="en-US"),
        candidate=prediction_pb2.ScoreCandidate(
            item=common_pb2.Item(item_id="demo-00001", title="t"), creative_id="c"
        ),
        impression_time=when,
    )


def _served_rows(platform: Platform, user_id: str) -> Any:
    s = fusion_schema.served
    with platform.fusion.store.engine.connect() as conn:
        return len(list(conn.execute(select(s.c.impression_id).where(s.c.user_id == user_id))))
