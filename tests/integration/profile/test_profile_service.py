"""ProfileService over real gRPC on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from google.rpc import error_details_pb2
from sqlalchemy.engine import make_url
from tests.integration.profile.factories import NOW, event, item
from tests.support.grpc_helpers import (
    API_KEYS,
    OTHER_API_KEY,
    auth,
    detail,
    field_violations,
    status_of,
)
from tests.support.tcp_proxy import TcpProxy

from copyloop.profile.main import start_profile_service
from copyloop.profile.settings import ProfileSettings
from copyloop.v1 import common_pb2, profile_pb2, profile_pb2_grpc

P = profile_pb2
DAY = 86_400.0


async def upsert(stub, *items, key: str = "", api_key: str | None = None):
    return await stub.UpsertItems(
        P.UpsertItemsRequest(items=list(items), idempotency_key=key),
        metadata=auth(api_key) if api_key else auth(),
    )


async def test_upsert_versions_items_only_when_they_change(profile) -> None:
    first = await upsert(profile.stub, item("a"), item("b"))
    assert [(r.item_id, r.version, r.outcome) for r in first.results] == [
        ("a", 1, P.ITEM_WRITE_OUTCOME_CREATED),
        ("b", 1, P.ITEM_WRITE_OUTCOME_CREATED),
    ]
    second = await upsert(profile.stub, item("a"), item("b", price=25.0))
    assert [(r.version, r.outcome) for r in second.results] == [
        (1, P.ITEM_WRITE_OUTCOME_UNCHANGED),
        (2, P.ITEM_WRITE_OUTCOME_UPDATED),
    ]
    got = await profile.stub.GetItems(
        P.GetItemsRequest(item_ids=["b", "zzz", "a"]), metadata=auth()
    )
    assert [(i.item_id, i.version, i.price) for i in got.items] == [("b", 2, 25.0), ("a", 1, 20.0)]
    assert list(got.missing_item_ids) == ["zzz"]
    assert got.items[0].update_time.seconds > 0


async def test_idempotency_key_replays_first_reply_and_rejects_other_payload(profile) -> None:
    first = await upsert(profile.stub, item("a"), key="k1")
    # The item changes in between; a retry of the *same* request must not write again.
    await upsert(profile.stub, item("a", price=30.0))
    replay = await upsert(profile.stub, item("a"), key="k1")
    assert replay == first
    got = await profile.stub.GetItems(P.GetItemsRequest(item_ids=["a"]), metadata=auth())
    assert got.items[0].version == 2 and got.items[0].price == 30.0

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await upsert(profile.stub, item("a", price=99.0), key="k1")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "idempotency_key" in field_violations(err.value)


async def test_upsert_rejects_bad_items_with_every_field_violation(profile) -> None:
    bad = item("bad id!", title="", price=-1.0, currency_code="dollars", stock=-3)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await upsert(profile.stub, bad, item("ok"), item("ok"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(err.value)
    assert set(violations) >= {
        "items[0].item_id",
        "items[0].title",
        "items[0].price",
        "items[0].currency_code",
        "items[0].stock",
        "items[2].item_id",
    }
    assert "duplicated" in violations["items[2].item_id"]
    # Nothing was half-written: the valid item in the rejected batch does not exist.
    got = await profile.stub.GetItems(P.GetItemsRequest(item_ids=["ok"]), metadata=auth())
    assert list(got.missing_item_ids) == ["ok"]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await profile.stub.UpsertItems(P.UpsertItemsRequest(), metadata=auth())
    assert field_violations(err.value) == {"items": "1 to 1000 items required"}


async def test_list_items_filters_and_paginates(profile) -> None:
    items = [
        item(
            f"i{n:02d}",
            price=float(n),
            stock=0 if n % 5 == 0 else 3,
            category_path=["Toys" if n % 2 else "Books", "X"],
        )
        for n in range(1, 31)
    ]
    await upsert(profile.stub, *items)
    flt = common_pb2.ItemFilter(categories=["toys"], min_price=5, max_price=25, in_stock_only=True)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await profile.stub.ListItems(
            P.ListItemsRequest(page_size=3, page_token=token, filter=flt), metadata=auth()
        )
        seen += [i.item_id for i in page.items]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    expected = [f"i{n:02d}" for n in range(5, 26) if n % 2 and n % 5]
    assert seen == expected
    assert pages == -(-len(expected) // 3)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await profile.stub.ListItems(
            P.ListItemsRequest(page_size=3, page_token="garbage"), metadata=auth()
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in field_violations(err.value)

    first = await profile.stub.ListItems(
        P.ListItemsRequest(page_size=2, filter=flt), metadata=auth()
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:  # token reused with another filter
        await profile.stub.ListItems(
            P.ListItemsRequest(page_size=2, page_token=first.next_page_token), metadata=auth()
        )
    assert "different filter" in field_violations(err.value)["page_token"]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await profile.stub.ListItems(
            P.ListItemsRequest(page_size=5000, filter=common_pb2.ItemFilter(min_price=-1)),
            metadata=auth(),
        )
    assert set(field_violations(err.value)) == {"filter.min_price"}


async def test_ingest_counts_duplicates_and_rejections_and_never_applies_twice(profile) -> None:
    await upsert(
        profile.stub,
        item("a", category_path=["Toys"]),
        item("b", category_path=["Books"], brand="Pagely"),
    )
    batch = [
        event("e1", "u1", P.EVENT_TYPE_VIEW, "a", NOW - 100),
        event("e2", "u1", P.EVENT_TYPE_PURCHASE, "a", NOW - 50, quantity=2, price=19.5),
        event("e2", "u1", P.EVENT_TYPE_PURCHASE, "a", NOW - 50),  # duplicate within the batch
        event("e3", "u1", P.EVENT_TYPE_VIEW, "nope", NOW),  # unknown item
        event("e4", "u1", P.EVENT_TYPE_UNSPECIFIED, "a", NOW),  # no type
        event("", "u1", P.EVENT_TYPE_VIEW, "a", NOW),  # no id
        event("e5", "u1", P.EVENT_TYPE_VIEW, "b", NOW + 5 * DAY),  # far future
        event("e6", "u1", P.EVENT_TYPE_SEARCH, "", NOW, query="lego"),
    ]
    reply = await profile.stub.IngestEvents(P.IngestEventsRequest(events=batch), metadata=auth())
    s = reply.summary
    assert (s.accepted, s.duplicate, s.rejected) == (3, 1, 4)
    reasons = {r.index: (r.field, r.reason) for r in s.rejections}
    assert reasons[3] == ("item_id", "item_id: unknown item")
    assert reasons[4][0] == "type" and reasons[5][0] == "event_id" and reasons[6][0] == "event_time"

    again = await profile.stub.IngestEvents(
        P.IngestEventsRequest(events=batch[:2]), metadata=auth()
    )
    assert (again.summary.accepted, again.summary.duplicate) == (0, 2)
    prof = (
        await profile.stub.GetUserProfile(P.GetUserProfileRequest(user_id="u1"), metadata=auth())
    ).profile
    assert prof.purchase_count == 1 and prof.monetary_total == pytest.approx(39.0)
    assert prof.event_count == 3


async def test_stream_ingest_builds_profile_with_affinities_and_segments(profile) -> None:
    await upsert(
        profile.stub,
        *[
            item(f"t{n}", category_path=["Toys", "Blocks"], brand="Brickwell", price=15.0)
            for n in range(3)
        ],
        item("bk", category_path=["Books"], brand="Pagely", price=12.0),
    )

    async def chunks():
        for n in range(12):
            kind = P.EVENT_TYPE_PURCHASE if n % 4 == 0 else P.EVENT_TYPE_VIEW
            yield P.IngestEventStreamRequest(
                events=[event(f"s{n}", "shopper", kind, f"t{n % 3}", NOW - 3600 * (12 - n))]
            )
        yield P.IngestEventStreamRequest(
            events=[event("s-book", "shopper", P.EVENT_TYPE_VIEW, "bk", NOW - 10 * DAY)]
        )

    reply = await profile.stub.IngestEventStream(chunks(), metadata=auth())
    assert (reply.summary.accepted, reply.summary.duplicate, reply.summary.rejected) == (13, 0, 0)
    prof = (
        await profile.stub.GetUserProfile(
            P.GetUserProfileRequest(user_id="shopper"), metadata=auth()
        )
    ).profile
    assert not prof.cold_start
    assert [a.key for a in prof.category_affinities] == ["Toys", "Books"]
    assert prof.category_affinities[0].share > 0.9
    assert prof.brand_affinities[0].key == "Brickwell"
    assert prof.price_band == common_pb2.PRICE_BAND_BUDGET
    assert prof.purchase_count == 3 and prof.frequency_30d == 13
    assert prof.recent_item_ids[0] == "t2"  # newest first
    assert "fan:Toys" in prof.segments and "bargain_hunter" in prof.segments
    assert prof.recency_days < 0.1
    assert prof.last_event_time.seconds > prof.first_event_time.seconds


async def test_unknown_user_gets_cold_start_profile(profile) -> None:
    prof = (
        await profile.stub.GetUserProfile(P.GetUserProfileRequest(user_id="ghost"), metadata=auth())
    ).profile
    assert prof.cold_start and prof.user_id == "ghost"
    assert not prof.category_affinities and prof.event_count == 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await profile.stub.GetUserProfile(P.GetUserProfileRequest(user_id=""), metadata=auth())
    assert field_violations(err.value) == {"user_id": "required, at most 128 characters"}


async def test_recall_prefers_affinity_and_never_returns_out_of_stock(profile) -> None:
    await upsert(
        profile.stub,
        item("toy1", category_path=["Toys"], stock=4),
        item("toy2", category_path=["Toys"], stock=0),
        item("book1", category_path=["Books"], brand="Pagely", stock=9),
        item("book2", category_path=["Books"], brand="Pagely", stock=9),
    )
    events = [event(f"v{n}", "reader", P.EVENT_TYPE_VIEW, "book1", NOW - n) for n in range(5)]
    events += [
        event(f"p{n}", f"other{n}", P.EVENT_TYPE_PURCHASE, "toy1", NOW - n) for n in range(6)
    ]
    await profile.stub.IngestEvents(P.IngestEventsRequest(events=events), metadata=auth())

    reply = await profile.stub.RecallItems(
        P.RecallItemsRequest(user_id="reader", k=10), metadata=auth()
    )
    ids = [r.item.item_id for r in reply.items]
    assert "toy2" not in ids and not reply.cold_start
    assert ids[:2] == ["book1", "book2"]
    assert "category:Books" in reply.items[0].reasons

    cold = await profile.stub.RecallItems(
        P.RecallItemsRequest(user_id="newbie", k=2), metadata=auth()
    )
    assert cold.cold_start and cold.items[0].item.item_id == "toy1" and len(cold.items) == 2

    with_oos = await profile.stub.RecallItems(
        P.RecallItemsRequest(user_id="reader", k=10, include_out_of_stock=True), metadata=auth()
    )
    assert "toy2" in [r.item.item_id for r in with_oos.items]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await profile.stub.RecallItems(
            P.RecallItemsRequest(user_id="reader", k=5000), metadata=auth()
        )
    assert set(field_violations(err.value)) == {"k"}


async def test_delete_user_removes_events_and_profile(profile) -> None:
    await upsert(profile.stub, item("a"))
    events = [event(f"d{n}", "leaver", P.EVENT_TYPE_VIEW, "a", NOW - n) for n in range(4)]
    events.append(event("keep", "stayer", P.EVENT_TYPE_VIEW, "a"))
    await profile.stub.IngestEvents(P.IngestEventsRequest(events=events), metadata=auth())
    store = profile.service.domain.store
    assert store.count_user_events("tenant-a", "leaver") == 4

    reply = await profile.stub.DeleteUser(P.DeleteUserRequest(user_id="leaver"), metadata=auth())
    assert reply.deleted_event_count == 4 and reply.profile_deleted
    assert store.count_user_events("tenant-a", "leaver") == 0
    assert store.get_state("tenant-a", "leaver") is None
    prof = (
        await profile.stub.GetUserProfile(
            P.GetUserProfileRequest(user_id="leaver"), metadata=auth()
        )
    ).profile
    assert prof.cold_start
    assert store.count_user_events("tenant-a", "stayer") == 1
    again = await profile.stub.DeleteUser(P.DeleteUserRequest(user_id="leaver"), metadata=auth())
    assert (again.deleted_event_count, again.profile_deleted) == (0, False)


async def test_tenants_cannot_see_each_others_data(profile) -> None:
    await upsert(profile.stub, item("shared-id", title="A's item"))
    await upsert(
        profile.stub, item("shared-id", title="B's item", price=99.0), api_key=OTHER_API_KEY
    )
    a = await profile.stub.GetItems(P.GetItemsRequest(item_ids=["shared-id"]), metadata=auth())
    b = await profile.stub.GetItems(
        P.GetItemsRequest(item_ids=["shared-id"]), metadata=auth(OTHER_API_KEY)
    )
    assert a.items[0].title == "A's item" and b.items[0].title == "B's item"
    assert a.items[0].version == 1 and b.items[0].version == 1

    await profile.stub.IngestEvents(
        P.IngestEventsRequest(events=[event("x1", "u", P.EVENT_TYPE_VIEW, "shared-id")]),
        metadata=auth(),
    )
    other = await profile.stub.GetUserProfile(
        P.GetUserProfileRequest(user_id="u"), metadata=auth(OTHER_API_KEY)
    )
    assert other.profile.cold_start
    # The same event id in the other tenant is a new event, not a duplicate.
    reply = await profile.stub.IngestEvents(
        P.IngestEventsRequest(events=[event("x1", "u", P.EVENT_TYPE_VIEW, "shared-id")]),
        metadata=auth(OTHER_API_KEY),
    )
    assert reply.summary.accepted == 1
    # Deleting in B leaves A's user alone.
    await profile.stub.DeleteUser(P.DeleteUserRequest(user_id="u"), metadata=auth(OTHER_API_KEY))
    mine = await profile.stub.GetUserProfile(P.GetUserProfileRequest(user_id="u"), metadata=auth())
    assert not mine.profile.cold_start


@pytest.mark.parametrize(
    ("metadata", "needle"),
    [
        ((), "missing"),
        ((("authorization", "Bearer wrong"),), "unknown API key"),
        ((("authorization", "Basic abc"),), "Bearer"),
    ],
)
async def test_missing_or_unknown_key_is_unauthenticated(profile, metadata, needle) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await profile.stub.GetItems(P.GetItemsRequest(item_ids=["a"]), metadata=metadata)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert needle in err.value.details()
    info = detail(err.value, error_details_pb2.ErrorInfo)
    assert info is not None and info.reason == "UNAUTHENTICATED"


async def test_unexpected_failure_is_internal_with_request_id_and_no_traceback(profile) -> None:
    # A real fault: the table disappears under the running service.
    from sqlalchemy import text

    with profile.service.domain.store.engine.begin() as conn:
        conn.execute(text("DROP TABLE items"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await profile.stub.GetItems(P.GetItemsRequest(item_ids=["a"]), metadata=auth())
    assert err.value.code() == grpc.StatusCode.INTERNAL
    request_info = detail(err.value, error_details_pb2.RequestInfo)
    assert request_info is not None and request_info.request_id
    assert request_info.request_id in err.value.details()
    assert "Traceback" not in err.value.details() and "items" not in err.value.details()
    assert status_of(err.value).code == grpc.StatusCode.INTERNAL.value[0]


async def test_caller_request_id_is_echoed_in_errors(profile) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await profile.stub.GetItems(
            P.GetItemsRequest(), metadata=(*auth(), ("x-request-id", "req-123"))
        )
    request_info = detail(err.value, error_details_pb2.RequestInfo)
    assert request_info is not None and request_info.request_id == "req-123"


async def test_a_slow_database_runs_the_server_out_of_time(
    postgres_databases, caplog: pytest.LogCaptureFixture
) -> None:
    """The server, not the client, runs out of time: the database is reached through a link
    that holds every packet for 0.3 s, so a 2,000-event batch outlasts the client's 2 s deadline
    on the server. The server gave up on the call (its access log says so), and the batch was
    written whole or not at all: the retry after the link is fast again completes it exactly."""
    url = make_url(postgres_databases())
    link = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    service = await start_profile_service(
        ProfileSettings(
            port=0,
            database_url=url.set(port=link.port).render_as_string(False),
            api_keys=API_KEYS,
            readiness_interval_s=60,
        )
    )
    channel = grpc.aio.insecure_channel(service.address)
    stub = profile_pb2_grpc.ProfileServiceStub(channel)
    try:
        await upsert(stub, item("a"))
        events = [event(f"big{n}", f"u{n % 50}", P.EVENT_TYPE_VIEW, "a") for n in range(2000)]
        link.delay_s = 0.3
        with caplog.at_level(logging.INFO, logger="copyloop.access"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.IngestEvents(
                    P.IngestEventsRequest(events=events), metadata=auth(), timeout=2
                )
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # The call reached the server, which ended it unfinished (not a client-side trip).
            deadline = asyncio.get_running_loop().time() + 30
            while not any(
                getattr(r, "method", "").endswith("/IngestEvents") for r in caplog.records
            ):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.1)
        ended = [r for r in caplog.records if getattr(r, "method", "").endswith("/IngestEvents")]
        assert [getattr(r, "status", "") for r in ended] != ["OK"]
        link.delay_s = 0.0
        retry = await stub.IngestEvents(P.IngestEventsRequest(events=events), metadata=auth())
        assert retry.summary.accepted + retry.summary.duplicate == 2000
        store = service.domain.store
        assert sum(store.count_user_events("tenant-a", f"u{n}") for n in range(50)) == 2000
    finally:
        await channel.close()
        await service.stop(0)
        link.cut()
