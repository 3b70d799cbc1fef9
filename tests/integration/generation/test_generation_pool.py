"""GenerationService over real gRPC with no LLM configured: the creative pool, validation, and
the fallback path that keeps serving when there is no model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tests.support.grpc_helpers import API_KEYS, OTHER_API_KEY, auth, detail, field_violations

from copyloop.generation.main import LLM_HEALTH_NAME, start_generation_service
from copyloop.generation.prompts import DEFAULT_TEMPLATE_VERSION
from copyloop.generation.settings import GenerationSettings
from copyloop.v1 import common_pb2, generation_pb2, generation_pb2_grpc

G = generation_pb2
ITEM = common_pb2.Item(
    item_id="rocket-1",
    version=3,
    title="Galaxy Explorer Rocket Set",
    brand="Brickwell",
    category_path=["Toys", "Building Sets"],
    price=19.99,
    list_price=29.99,
    selling_points=["420 pieces", "glow-in-the-dark stickers"],
)


@pytest.fixture
async def generation(
    database_url: str,
) -> AsyncIterator[tuple[generation_pb2_grpc.GenerationServiceStub, grpc.aio.Channel]]:
    service = await start_generation_service(
        GenerationSettings(port=0, database_url=database_url, api_keys=API_KEYS)
    )
    channel = grpc.aio.insecure_channel(service.address)
    try:
        yield generation_pb2_grpc.GenerationServiceStub(channel), channel
    finally:
        await channel.close()
        await service.stop(0)


def request(**over: object) -> G.GenerateRequest:
    fields: dict[str, object] = dict(
        item=ITEM, channel=common_pb2.CHANNEL_PUSH, locale="en-US", variant_count=3
    )
    fields.update(over)
    return G.GenerateRequest(**fields)  # type: ignore[arg-type]


async def test_without_llm_serves_compliant_fallbacks_and_reports_llm_not_serving(
    generation,
) -> None:
    stub, channel = generation
    health = health_pb2_grpc.HealthStub(channel)
    assert (
        await health.Check(health_pb2.HealthCheckRequest(service=""))
    ).status == health_pb2.HealthCheckResponse.SERVING
    llm = await health.Check(health_pb2.HealthCheckRequest(service=LLM_HEALTH_NAME))
    assert llm.status == health_pb2.HealthCheckResponse.NOT_SERVING

    reply = await stub.Generate(
        request(constraints=G.CopyConstraints(required_disclaimer="T&Cs apply.", max_chars=80)),
        metadata=auth(),
    )
    assert reply.llm_unavailable and len(reply.variants) >= 2
    for v in reply.variants:
        assert v.source == G.VARIANT_SOURCE_TEMPLATE_FALLBACK
        assert v.compliance.passed and v.text.endswith("T&Cs apply.") and len(v.text) <= 80
        assert v.template_version == DEFAULT_TEMPLATE_VERSION


async def test_pool_lifecycle_draft_live_retired(generation) -> None:
    stub, _ = generation
    reply = await stub.Generate(
        request(store_in_pool=True, audience=G.Audience(segment="bargain_hunter")), metadata=auth()
    )
    ids = [v.creative_id for v in reply.variants]
    assert all(ids) and len(set(ids)) == len(ids)
    # Drafts are not served.
    query = G.GetCreativesRequest(
        queries=[G.CreativeQuery(item_id="rocket-1")],
        channel=common_pb2.CHANNEL_PUSH,
        locale="en-US",
        segment="bargain_hunter",
    )
    assert not (await stub.GetCreatives(query, metadata=auth())).items[0].creatives

    approved = await stub.ApproveCreative(
        G.ApproveCreativeRequest(creative_id=ids[0], reviewer="ana"), metadata=auth()
    )
    assert approved.creative.status == G.CREATIVE_STATUS_APPROVED
    live = await stub.ApproveCreative(
        G.ApproveCreativeRequest(creative_id=ids[1], make_live=True), metadata=auth()
    )
    assert live.creative.status == G.CREATIVE_STATUS_LIVE and live.creative.item_version == 3
    served = (await stub.GetCreatives(query, metadata=auth())).items[0].creatives
    assert [c.creative_id for c in served] == [ids[1]]
    assert served[0].variant.compliance.passed and served[0].segment == "bargain_hunter"

    # Many items in one call, in request order, empty for items without creatives.
    multi = await stub.GetCreatives(
        G.GetCreativesRequest(
            queries=[
                G.CreativeQuery(item_id="nothing"),
                G.CreativeQuery(item_id="rocket-1", item_version=3),
            ],
            channel=common_pb2.CHANNEL_PUSH,
            locale="en-US",
            segment="bargain_hunter",
        ),
        metadata=auth(),
    )
    assert [(i.item_id, len(i.creatives)) for i in multi.items] == [("nothing", 0), ("rocket-1", 1)]
    stale = await stub.GetCreatives(
        G.GetCreativesRequest(
            queries=[G.CreativeQuery(item_id="rocket-1", item_version=2)],
            channel=common_pb2.CHANNEL_PUSH,
            locale="en-US",
        ),
        metadata=auth(),
    )
    assert not stale.items[0].creatives  # written for version 3

    retired = await stub.RetireCreative(
        G.RetireCreativeRequest(creative_id=ids[1], reason="stale"), metadata=auth()
    )
    assert retired.creative.status == G.CREATIVE_STATUS_RETIRED
    assert not (await stub.GetCreatives(query, metadata=auth())).items[0].creatives
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ApproveCreative(G.ApproveCreativeRequest(creative_id=ids[1]), metadata=auth())
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert detail(err.value, error_details_pb2.PreconditionFailure) is not None

    # The same generation stored again does not duplicate the pool.
    again = await stub.Generate(
        request(store_in_pool=True, audience=G.Audience(segment="bargain_hunter")), metadata=auth()
    )
    assert [v.creative_id for v in again.variants] == ids

    listed, token = [], ""
    while True:
        page = await stub.ListCreatives(
            G.ListCreativesRequest(page_size=2, page_token=token, item_id="rocket-1"),
            metadata=auth(),
        )
        listed += [c.creative_id for c in page.creatives]
        token = page.next_page_token
        if not token:
            break
    assert sorted(listed) == sorted(ids)


async def test_unknown_creative_and_job_are_not_found(generation) -> None:
    stub, _ = generation
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RetireCreative(
            G.RetireCreativeRequest(creative_id="cr_missing"), metadata=auth()
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    info = detail(err.value, error_details_pb2.ResourceInfo)
    assert info is not None and (info.resource_type, info.resource_name) == (
        "creative",
        "cr_missing",
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetPregenerationJob(
            G.GetPregenerationJobRequest(job_id="job_nope"), metadata=auth()
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_tenants_do_not_share_creatives(generation) -> None:
    stub, _ = generation
    reply = await stub.Generate(request(store_in_pool=True), metadata=auth())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ApproveCreative(
            G.ApproveCreativeRequest(creative_id=reply.variants[0].creative_id),
            metadata=auth(OTHER_API_KEY),
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListCreatives(G.ListCreativesRequest(), metadata=auth(OTHER_API_KEY))
    assert not listed.creatives


async def test_bad_generate_requests_get_field_violations(generation) -> None:
    stub, _ = generation
    bad = G.GenerateRequest(
        item=common_pb2.Item(item_id="", title="x"),
        channel=common_pb2.CHANNEL_UNSPECIFIED,
        locale="fr-FR",
        variant_count=50,
        sampling=G.SamplingParameters(temperature=5.0, top_p=0.0, max_tokens=9999),
        constraints=G.CopyConstraints(max_chars=-1),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Generate(bad, metadata=auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(err.value)) >= {
        "channel",
        "locale",
        "item.item_id",
        "variant_count",
        "sampling.temperature",
        "sampling.top_p",
        "sampling.max_tokens",
        "constraints.max_chars",
    }
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Generate(request(item=common_pb2.Item(item_id="a", title="  ")), metadata=auth())
    assert "item.title" in field_violations(err.value)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetCreatives(G.GetCreativesRequest(), metadata=auth())
    assert set(field_violations(err.value)) == {"queries", "channel", "locale"}


async def test_pregeneration_job_reports_progress_and_fills_the_pool(generation) -> None:
    stub, _ = generation
    items = [
        common_pb2.Item(
            item_id=f"p{n}",
            title=f"Comfy Desk Lamp {n}",
            brand="Lumo",
            price=30.0 + n,
            selling_points=["warm light"],
        )
        for n in range(3)
    ]
    started = await stub.PregenerateCreatives(
        G.PregenerateCreativesRequest(
            items=items,
            channels=[common_pb2.CHANNEL_PUSH, common_pb2.CHANNEL_SMS],
            locales=["en-US", "zh-CN"],
            variants_per_item=2,
            auto_approve=True,
        ),
        metadata=auth(),
    )
    assert started.job.total_count == 12
    for _ in range(100):
        job = (
            await stub.GetPregenerationJob(
                G.GetPregenerationJobRequest(job_id=started.job.job_id), metadata=auth()
            )
        ).job
        if job.state == G.JOB_STATE_SUCCEEDED:
            break
        await asyncio.sleep(0.1)
    assert job.state == G.JOB_STATE_SUCCEEDED and job.done_count == 12 and job.failed_count == 0
    assert job.creative_count >= 12
    live = await stub.GetCreatives(
        G.GetCreativesRequest(
            queries=[G.CreativeQuery(item_id=f"p{n}") for n in range(3)],
            channel=common_pb2.CHANNEL_SMS,
            locale="zh-CN",
        ),
        metadata=auth(),
    )
    assert all(i.creatives for i in live.items)
