"""GetItems and GetUserProfile answer from the read cache (ReadCache, as Recommend calls them)
and still show this replica's writes at once: a catalog change, new events, a deletion."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from tests.integration.profile.factories import event, item
from tests.support.grpc_helpers import API_KEYS, auth

from copyloop.profile.main import start_profile_service
from copyloop.profile.settings import ProfileSettings
from copyloop.v1 import profile_pb2, profile_pb2_grpc

P = profile_pb2


@pytest.fixture
async def stub(database_url: str) -> AsyncIterator[profile_pb2_grpc.ProfileServiceStub]:
    service = await start_profile_service(
        ProfileSettings(
            port=0,
            metrics_port=0,
            database_url=database_url,
            api_keys=API_KEYS,
            read_cache_s=60,  # nothing expires during the test: only writes can refresh
        )
    )
    channel = grpc.aio.insecure_channel(service.address)
    try:
        yield profile_pb2_grpc.ProfileServiceStub(channel)
    finally:
        await channel.close()
        await service.stop(0)


async def test_cached_reads_show_this_replicas_writes_at_once(stub) -> None:
    await stub.UpsertItems(
        P.UpsertItemsRequest(items=[item("toy", price=15.0), item("book", price=40.0)]),
        metadata=auth(),
    )
    ask = P.GetItemsRequest(item_ids=["toy", "book", "lamp"])
    first = await stub.GetItems(ask, metadata=auth())
    assert [(i.item_id, i.price, i.version) for i in first.items] == [
        ("toy", 15.0, 1),
        ("book", 40.0, 1),
    ]
    assert list(first.missing_item_ids) == ["lamp"]
    profile = await stub.GetUserProfile(P.GetUserProfileRequest(user_id="u1"), metadata=auth())
    assert profile.profile.cold_start

    # A price change and a new item: the next read has them (new version, new price).
    await stub.UpsertItems(
        P.UpsertItemsRequest(items=[item("toy", price=12.5), item("lamp", price=99.0)]),
        metadata=auth(),
    )
    again = await stub.GetItems(ask, metadata=auth())
    assert [(i.item_id, i.price, i.version) for i in again.items] == [
        ("toy", 12.5, 2),
        ("book", 40.0, 1),
        ("lamp", 99.0, 1),
    ]
    assert not again.missing_item_ids

    # Events for the shopper: the profile read next is no longer the cold start cached above.
    await stub.IngestEvents(
        P.IngestEventsRequest(
            events=[event(f"e{n}", "u1", P.EVENT_TYPE_CLICK, "book") for n in range(3)]
        ),
        metadata=auth(),
    )
    warm = await stub.GetUserProfile(P.GetUserProfileRequest(user_id="u1"), metadata=auth())
    assert not warm.profile.cold_start and warm.profile.brand_affinities

    await stub.DeleteUser(P.DeleteUserRequest(user_id="u1"), metadata=auth())
    gone = await stub.GetUserProfile(P.GetUserProfileRequest(user_id="u1"), metadata=auth())
    assert gone.profile.cold_start
