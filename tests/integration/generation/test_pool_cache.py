"""The creative pool's read cache answers GetCreatives exactly as the database does: the same
creatives for every segment and cap, this replica's writes (new copy, approvals, retirements)
seen at once, and a read mask that returns only the fields asked for."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import field_mask_pb2
from tests.support.grpc_helpers import API_KEYS, auth, field_violations

from copyloop.common.db import make_engine, migrate
from copyloop.generation.main import MIGRATIONS, start_generation_service
from copyloop.generation.settings import GenerationSettings
from copyloop.generation.store import LIVE, RETIRED, CreativeStore, NewCreative
from copyloop.v1 import common_pb2, generation_pb2, generation_pb2_grpc

G = generation_pb2


def creative(item: str, segment: str, quality: float, version: int = 1) -> NewCreative:
    return NewCreative(
        item_id=item,
        item_version=version,
        channel="push",
        locale="en-US",
        segment=segment,
        template_version="t1",
        text=f"{item} for {segment or 'everyone'} at {quality}",
        quality=quality,
        variant={"angle": "value"},
    )


def test_cached_reads_match_the_database_and_see_local_writes(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS, "alembic_version_generation")
    direct, cached = CreativeStore(engine), CreativeStore(engine, pool_cache_ttl_s=3600)
    segments = ["", "bargain_hunter", "premium_shopper"]
    direct.add(
        "t",
        [
            creative(f"sku-{i}", seg, q / 10, version=1 + i % 2)
            for i in range(4)
            for seg in segments
            for q in range(1, 4)
        ],
        LIVE,
    )
    queries = [[("sku-0", 1), ("sku-1", 2), ("sku-2", 0), ("nothing", 0)], [("sku-3", 1)]]
    for items in queries:
        for segment in [*segments, "new_user"]:
            for cap in (1, 2, 5):
                args = ("t", items, "push", "en-US", segment, LIVE, cap)
                assert cached.by_items(*args) == direct.by_items(*args)

    # Its own writes show at once (the cache above holds every one of these reads).
    [new] = cached.add("t", [creative("sku-0", "bargain_hunter", 0.99)], LIVE)
    args = ("t", [("sku-0", 1)], "push", "en-US", "bargain_hunter", LIVE, 2)
    assert cached.by_items(*args)["sku-0"][0].creative_id == new.creative_id
    cached.set_status("t", new.creative_id, RETIRED, "ana", "stale")
    assert cached.by_items(*args) == direct.by_items(*args)
    assert new.creative_id not in [r.creative_id for r in cached.by_items(*args)["sku-0"]]
    engine.dispose()


@pytest.fixture
async def stub(database_url: str) -> AsyncIterator[generation_pb2_grpc.GenerationServiceStub]:
    service = await start_generation_service(
        GenerationSettings(port=0, database_url=database_url, api_keys=API_KEYS)
    )
    channel = grpc.aio.insecure_channel(service.address)
    try:
        yield generation_pb2_grpc.GenerationServiceStub(channel)
    finally:
        await channel.close()
        await service.stop(0)


async def test_a_read_mask_returns_only_the_fields_asked_for(stub) -> None:
    item = common_pb2.Item(
        item_id="kettle-1",
        version=2,
        title="Steel Kettle",
        brand="Hearth",
        price=24.99,
        category_path=["Home", "Kitchen"],
        selling_points=["boils in 3 minutes"],
    )
    reply = await stub.Generate(
        G.GenerateRequest(
            item=item,
            channel=common_pb2.CHANNEL_PUSH,
            locale="en-US",
            variant_count=2,
            store_in_pool=True,
        ),
        metadata=auth(),
    )
    for v in reply.variants:
        await stub.ApproveCreative(
            G.ApproveCreativeRequest(creative_id=v.creative_id, make_live=True), metadata=auth()
        )
    query = G.GetCreativesRequest(
        queries=[G.CreativeQuery(item_id="kettle-1", item_version=2)],
        channel=common_pb2.CHANNEL_PUSH,
        locale="en-US",
    )
    full = (await stub.GetCreatives(query, metadata=auth())).items[0].creatives
    query.read_mask.CopyFrom(field_mask_pb2.FieldMask(paths=["creative_id", "text", "angle"]))
    slim = (await stub.GetCreatives(query, metadata=auth())).items[0].creatives
    assert len(slim) == len(full) == 2
    for s, f in zip(slim, full, strict=True):
        assert (s.creative_id, s.text, s.angle) == (f.creative_id, f.text, f.angle)
        assert f.angle and f.HasField("variant") and f.item_id
        assert not s.HasField("variant") and not s.HasField("create_time") and not s.item_id

    query.read_mask.paths.append("no_such_field")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetCreatives(query, metadata=auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "read_mask" in field_violations(err.value)
