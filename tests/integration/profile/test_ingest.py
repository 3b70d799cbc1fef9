"""Event ingest over real gRPC on SQLite and PostgreSQL: each event id counts once however it
is re-sent, profiles do not depend on arrival order or chunking, and a broken stream keeps
the batches it committed (the stream writes one batch while it receives the next)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import grpc
import pytest
from sqlalchemy import text
from tests.integration.profile.factories import NOW, event, item
from tests.support.grpc_helpers import API_KEYS, OTHER_API_KEY, auth

from copyloop.common.db import make_engine, migrate
from copyloop.profile import messages, schema
from copyloop.profile.main import MIGRATIONS, start_profile_service
from copyloop.profile.messages import MAX_EVENTS
from copyloop.profile.profiles import EventIn
from copyloop.profile.settings import ProfileSettings
from copyloop.profile.store import ProfileStore
from copyloop.v1 import common_pb2, profile_pb2, profile_pb2_grpc

P = profile_pb2
P_stub = profile_pb2_grpc.ProfileServiceStub
DAY = 86_400.0
ITEMS = [
    item("toy", category_path=["Toys"], brand="Brickwell", price=15.0, list_price=20.0),
    item("book", category_path=["Books"], brand="Pagely", price=40.0),
    item("lamp", category_path=["Home"], brand="Glowly", price=120.0),
    item("tent", category_path=["Outdoors"], brand="Northline", price=300.0),
]


@asynccontextmanager
async def running(database_url: str, commit_batch: int) -> AsyncIterator[P_stub]:
    """A ProfileService whose streams commit every `commit_batch` events, with the catalog
    loaded for both test tenants."""
    service = await start_profile_service(
        ProfileSettings(
            port=0,
            metrics_port=0,
            database_url=database_url,
            api_keys=API_KEYS,
            ingest_commit_batch=commit_batch,
            recall_cache_s=0,
        )
    )
    channel = grpc.aio.insecure_channel(service.address)
    stub = profile_pb2_grpc.ProfileServiceStub(channel)
    try:
        for key in (None, OTHER_API_KEY):
            await stub.UpsertItems(
                P.UpsertItemsRequest(items=ITEMS), metadata=auth(key) if key else auth()
            )
        yield stub
    finally:
        await channel.close()
        await service.stop(0)


async def stream(
    stub: P_stub, chunks: Sequence[Sequence[P.Event]], key: str | None = None
) -> P.IngestSummary:
    async def requests() -> AsyncIterator[P.IngestEventStreamRequest]:
        for chunk in chunks:
            yield P.IngestEventStreamRequest(events=list(chunk))

    reply = await stub.IngestEventStream(requests(), metadata=auth(key) if key else auth())
    return reply.summary


async def get_profile(stub: P_stub, user: str, key: str | None = None) -> common_pb2.UserProfile:
    reply = await stub.GetUserProfile(
        P.GetUserProfileRequest(user_id=user), metadata=auth(key) if key else auth()
    )
    return reply.profile


def view(n: int, item_id: str = "toy", t: float = NOW - 3600) -> P.Event:
    return event(f"e{n}", "shopper", P.EVENT_TYPE_VIEW, item_id, t)


async def test_stream_counts_each_event_id_once_within_and_across_chunks(
    database_url: str,
) -> None:
    async with running(database_url, commit_batch=4) as stub:
        buy = event("e5", "shopper", P.EVENT_TYPE_PURCHASE, "book", NOW - 60, price=10.0)
        chunks = [
            [view(1), view(2), view(1), view(3)],  # e1 twice in one chunk
            [view(4), view(2), buy],  # e2 again, one commit batch later
            [view(6), view(7, "lamp"), view(8), view(9), view(6)],  # e6 twice
            [view(3), buy, view(10, "tent")],  # e3 and e5 again, in the last batch
        ]
        summary = await stream(stub, chunks)
        assert (summary.accepted, summary.duplicate, summary.rejected) == (10, 5, 0)
        first = await get_profile(stub, "shopper")
        assert first.event_count == 10
        assert first.purchase_count == 1 and first.monetary_total == pytest.approx(10.0)

        # The whole stream again, and again as one unary batch: nothing is applied twice.
        again = await stream(stub, chunks)
        assert (again.accepted, again.duplicate) == (0, 15)
        unary = await stub.IngestEvents(
            P.IngestEventsRequest(events=[e for chunk in chunks for e in chunk]),
            metadata=auth(),
        )
        assert (unary.summary.accepted, unary.summary.duplicate) == (0, 15)
        after = await get_profile(stub, "shopper")
        assert after.event_count == 10 and after.purchase_count == 1
        assert after.monetary_total == first.monetary_total
        assert list(after.recent_item_ids) == list(first.recent_item_ids)
        assert [(a.key, a.share) for a in after.category_affinities] == [
            (a.key, a.share) for a in first.category_affinities
        ]


def history(seed: int) -> list[P.Event]:
    """Three shoppers' mixed events over 60 days (so the 30-day window moves), with
    impressions, searches and purchases."""
    rng = random.Random(seed)
    kinds = [
        P.EVENT_TYPE_VIEW,
        P.EVENT_TYPE_CLICK,
        P.EVENT_TYPE_ADD_TO_CART,
        P.EVENT_TYPE_PURCHASE,
        P.EVENT_TYPE_IMPRESSION,
        P.EVENT_TYPE_SEARCH,
    ]
    out = []
    for n in range(150):
        kind = rng.choice(kinds)
        search = kind == P.EVENT_TYPE_SEARCH
        out.append(
            event(
                f"h{n}",
                f"u{n % 3}",
                kind,
                "" if search else rng.choice(ITEMS).item_id,
                NOW - rng.uniform(0, 60) * DAY,
                query="lego" if search else "",
                quantity=rng.randint(0, 3),
                price=rng.choice([0.0, 9.5, 55.0]),
            )
        )
    return out


def same_profile(a: common_pb2.UserProfile, b: common_pb2.UserProfile) -> None:
    approx = lambda x: pytest.approx(x, rel=1e-6, abs=1e-9)  # noqa: E731
    for field in ("category_affinities", "brand_affinities"):
        assert [(s.key, approx(s.score), approx(s.share)) for s in getattr(a, field)] == [
            (s.key, s.score, s.share) for s in getattr(b, field)
        ], field
    assert (a.event_count, a.purchase_count, a.frequency_30d, a.price_band) == (
        b.event_count,
        b.purchase_count,
        b.frequency_30d,
        b.price_band,
    )
    assert a.monetary_total == approx(b.monetary_total)
    assert a.mean_engaged_price == approx(b.mean_engaged_price)
    assert a.first_event_time == b.first_event_time and a.last_event_time == b.last_event_time
    assert list(a.segments) == list(b.segments)
    # Which items are recent does not depend on order; where a late event's item lands in
    # the list does (the state keeps ids, not times), so the set is compared.
    assert set(a.recent_item_ids) == set(b.recent_item_ids)


async def test_profiles_and_popularity_do_not_depend_on_arrival_order_or_chunking(
    database_url: str,
) -> None:
    events = history(seed=7)
    in_order = sorted(events, key=lambda e: e.event_time.seconds)
    shuffled = random.Random(3).sample(events, len(events))
    resent = shuffled[:20] + shuffled  # re-sent ids in the same and in later commit batches
    async with running(database_url, commit_batch=8) as stub:
        # Tenant A: one unary batch in time order. Tenant B: a stream of 3-event chunks,
        # shuffled, committed every 8 events, with re-sent events.
        one = await stub.IngestEvents(P.IngestEventsRequest(events=in_order), metadata=auth())
        assert (one.summary.accepted, one.summary.rejected) == (150, 0)
        chunks = [resent[i : i + 3] for i in range(0, len(resent), 3)]
        other = await stream(stub, chunks, OTHER_API_KEY)
        assert (other.accepted, other.duplicate, other.rejected) == (150, 20, 0)

        for user in ("u0", "u1", "u2"):
            a = await get_profile(stub, user)
            b = await get_profile(stub, user, OTHER_API_KEY)
            assert a.event_count == 50
            same_profile(a, b)

        async def popularity(key: str | None) -> dict[str, float]:
            reply = await stub.RecallItems(
                P.RecallItemsRequest(user_id="u0", k=10, include_out_of_stock=True),
                metadata=auth(key) if key else auth(),
            )
            return {r.item.item_id: r.popularity_score for r in reply.items}

        pop_a, pop_b = await popularity(None), await popularity(OTHER_API_KEY)
        assert set(pop_a) == {i.item_id for i in ITEMS}
        assert pop_a == {k: pytest.approx(v, rel=1e-6) for k, v in pop_b.items()}


async def test_broken_stream_keeps_the_batches_it_committed(database_url: str) -> None:
    async with running(database_url, commit_batch=4) as stub:
        sent = [view(n) for n in range(6)]

        async def requests() -> AsyncIterator[P.IngestEventStreamRequest]:
            for i in range(0, 6, 2):
                yield P.IngestEventStreamRequest(events=sent[i : i + 2])
            # Too many events in one message: the stream fails here, while the first batch
            # (e0-e3) may still be being written.
            yield P.IngestEventStreamRequest(events=[view(100)] * (MAX_EVENTS + 1))

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.IngestEventStream(requests(), metadata=auth())
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # The committed batch is there by the time the error is answered; e4 and e5, received
        # but not yet a full batch, were never written.
        assert (await get_profile(stub, "shopper")).event_count == 4
        replay = await stub.IngestEvents(P.IngestEventsRequest(events=sent), metadata=auth())
        assert (replay.summary.accepted, replay.summary.duplicate) == (2, 4)


async def test_an_id_another_replica_stores_meanwhile_counts_as_a_duplicate(
    database_url: str,
) -> None:
    """Another writer inserts one of the batch's ids after the batch looked for stored ids
    and before its insert committed: the insert fails on the key (COPY on PostgreSQL,
    executemany on SQLite), the batch is retried once and counts that id as a duplicate."""
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS, "alembic_version_profile")
    store = ProfileStore(engine, 14 * DAY)
    store.upsert_items("t1", [messages.item_from_proto(ITEMS[0])], "")
    events = [(n, EventIn(f"r{n}", "racer", "view", "toy", NOW - 100 + n)) for n in range(3)]
    other = engine.connect()
    try:
        tx = other.begin()
        other.execute(
            schema.events.insert().values(
                tenant_id="t1",
                event_id="r1",
                user_id="racer",
                type="view",
                item_id="toy",
                event_time=NOW - 99,
                quantity=1,
                price=0.0,
                query="",
                request_id="",
                creative_id="",
                channel="",
            )
        )
        running_ingest = asyncio.get_running_loop().run_in_executor(
            None, store.ingest, "t1", events
        )
        await asyncio.sleep(0.5)  # the ingest waits on the other writer's key (or its lock)
        tx.commit()
        result = await running_ingest
    finally:
        other.close()
    assert (result.accepted, result.duplicate, result.rejected) == (2, 1, 0)
    assert store.count_user_events("t1", "racer") == 3
    state = store.get_state("t1", "racer")
    assert state is not None and state.event_count == 2  # r1 came from elsewhere
    engine.dispose()


async def test_postgres_backend_killed_during_the_events_copy_answers_unavailable(
    postgres_databases: Callable[[], str],
) -> None:
    """The server ends the session (an admin shutdown, as in a failover) while the batch's COPY
    waits on a key another transaction holds: the call answers UNAVAILABLE (retryable),
    nothing of the batch is stored, and the same batch is accepted in full afterwards."""
    url = postgres_databases()
    service = await start_profile_service(
        ProfileSettings(port=0, database_url=url, api_keys=API_KEYS, readiness_interval_s=60)
    )
    channel = grpc.aio.insecure_channel(service.address)
    stub = profile_pb2_grpc.ProfileServiceStub(channel)
    direct = make_engine(url)
    try:
        await stub.UpsertItems(P.UpsertItemsRequest(items=ITEMS[:1]), metadata=auth())
        batch = P.IngestEventsRequest(events=[view(n) for n in range(3)])
        with direct.connect() as other, direct.connect() as admin:
            tx = other.begin()
            other.execute(
                schema.events.insert().values(
                    tenant_id="tenant-a",
                    event_id="e1",
                    user_id="x",
                    type="view",
                    item_id="toy",
                    event_time=NOW,
                    quantity=1,
                    price=0.0,
                    query="",
                    request_id="",
                    creative_id="",
                    channel="",
                )
            )
            call = asyncio.ensure_future(stub.IngestEvents(batch, metadata=auth()))
            copying = text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE 'COPY%' AND wait_event_type = 'Lock'"
            )
            pid = None
            for _ in range(200):
                pid = admin.execute(copying).scalar()
                admin.rollback()  # pg_stat_activity is read once per transaction
                if pid is not None:
                    break
                await asyncio.sleep(0.05)
            assert pid is not None, "the COPY never waited on e1's key"
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            tx.rollback()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        again = await stub.IngestEvents(batch, metadata=auth())
        assert (again.summary.accepted, again.summary.duplicate) == (3, 0)
    finally:
        await channel.close()
        await service.stop(0)
        direct.dispose()
