"""GenerationService over real gRPC with a REAL local Triton serving the tiny copywriter:
batching through the service, sampling honoured, every variant compliant and within length,
streaming previews, and degradation when Triton stops mid-test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tests.support.grpc_helpers import API_KEYS, auth, detail, field_violations

from copyloop.generation.main import LLM_HEALTH_NAME, GenerationService, start_generation_service
from copyloop.generation.settings import GenerationSettings
from copyloop.generation.triton_local import LocalTriton
from copyloop.v1 import common_pb2, generation_pb2, generation_pb2_grpc

pytestmark = pytest.mark.triton
G = generation_pb2
ITEMS = [
    common_pb2.Item(
        item_id=f"lamp-{n}",
        title=f"Aurora Desk Lamp {n}",
        brand="Lumo",
        category_path=["Home & Kitchen", "Lighting"],
        price=29.99,
        list_price=39.99,
        selling_points=["warm dimmable light", "USB-C charging"],
    )
    for n in range(6)
]


async def _service(tmp_path: Path, triton: LocalTriton, model_dir: Path) -> GenerationService:
    return await start_generation_service(
        GenerationSettings(
            port=0,
            database_url=f"sqlite:///{tmp_path / 'gen.db'}",
            api_keys=API_KEYS,
            triton_url=triton.grpc_url,
            model_dir=str(model_dir),
            llm_timeout_s=60,
            readiness_interval_s=0.2,
        )
    )


@pytest.fixture
async def generation(
    tmp_path: Path, local_triton: LocalTriton, copywriter_tiny_model_dir: Path
) -> AsyncIterator[generation_pb2_grpc.GenerationServiceStub]:
    service = await _service(tmp_path, local_triton, copywriter_tiny_model_dir)
    channel = grpc.aio.insecure_channel(service.address)
    try:
        yield generation_pb2_grpc.GenerationServiceStub(channel)
    finally:
        await channel.close()
        await service.stop(0)


def request(item: common_pb2.Item = ITEMS[0], **over: object) -> G.GenerateRequest:
    fields: dict[str, object] = dict(
        item=item,
        channel=common_pb2.CHANNEL_PUSH,
        locale="en-US",
        variant_count=3,
        sampling=G.SamplingParameters(seed=5, max_tokens=24),
    )
    fields.update(over)
    return G.GenerateRequest(**fields)  # type: ignore[arg-type]


async def test_variants_are_compliant_within_length_and_say_their_source(generation) -> None:
    banned = G.CopyConstraints(
        banned_terms=["cheap"], required_disclaimer="Ends Sunday.", max_chars=80
    )
    for locale in ("en-US", "zh-CN"):
        reply = await generation.Generate(
            request(locale=locale, constraints=banned), metadata=auth(), timeout=120
        )
        assert not reply.llm_unavailable and 1 <= len(reply.variants) <= 3
        for v in reply.variants:
            assert v.compliance.passed and len(v.text) <= 80 and v.text.endswith("Ends Sunday.")
            assert "cheap" not in v.text.lower()
            assert v.source in (
                G.VARIANT_SOURCE_MODEL,
                G.VARIANT_SOURCE_MODEL_REGENERATED,
                G.VARIANT_SOURCE_TEMPLATE_FALLBACK,
            )
            assert v.template_id and v.model_name
            if v.source != G.VARIANT_SOURCE_TEMPLATE_FALLBACK:
                assert (
                    v.model_name == "copywriter" and v.model_version and 0 <= v.quality.fluency <= 1
                )
        qualities = [
            v.quality.overall
            for v in reply.variants
            if v.source != G.VARIANT_SOURCE_TEMPLATE_FALLBACK
        ]
        assert qualities == sorted(qualities, reverse=True)


async def test_sampling_is_honoured(generation) -> None:
    greedy = G.SamplingParameters(temperature=0.0, max_tokens=20)
    a = await generation.Generate(
        request(sampling=greedy, variant_count=1), metadata=auth(), timeout=120
    )
    b = await generation.Generate(
        request(sampling=greedy, variant_count=1), metadata=auth(), timeout=120
    )
    assert [v.text for v in a.variants] == [v.text for v in b.variants]
    seeded = G.SamplingParameters(temperature=1.2, seed=42, max_tokens=20)
    c = await generation.Generate(request(sampling=seeded), metadata=auth(), timeout=120)
    d = await generation.Generate(request(sampling=seeded), metadata=auth(), timeout=120)
    assert [v.text for v in c.variants] == [v.text for v in d.variants]


async def test_concurrent_generate_calls_are_batched_by_triton(
    generation, local_triton: LocalTriton
) -> None:
    def counts() -> tuple[int, int]:
        stats = local_triton.model_statistics()["model_stats"][0]
        return int(stats["inference_count"]), int(stats["execution_count"])

    await asyncio.sleep(0.5)
    before = counts()
    await asyncio.gather(
        *(
            generation.Generate(request(item, variant_count=2), metadata=auth(), timeout=180)
            for item in ITEMS
        )
    )
    await asyncio.sleep(0.5)
    after = counts()
    inferences, executions = after[0] - before[0], after[1] - before[1]
    assert inferences >= 12
    assert executions < inferences  # several requests shared one execute()


async def test_stream_previews_tokens_then_the_checked_variant(generation) -> None:
    deltas, final = [], None
    async for message in generation.GenerateStream(
        G.GenerateStreamRequest(request=request(variant_count=1)), metadata=auth(), timeout=120
    ):
        if message.HasField("final_variant"):
            final = message.final_variant
        else:
            deltas.append(message.text_delta)
    assert len(deltas) >= 2 and final is not None and final.compliance.passed


async def test_bad_stream_request_gets_field_violations(generation) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in generation.GenerateStream(
            G.GenerateStreamRequest(request=G.GenerateRequest(locale="xx")), metadata=auth()
        ):
            pass
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"request.channel", "request.locale", "request.item.item_id"} <= set(
        field_violations(err.value)
    )


async def test_triton_stopped_mid_test_degrades_to_pool_and_fallbacks(
    tmp_path: Path, copywriter_tiny_model_dir: Path
) -> None:
    triton = LocalTriton(copywriter_tiny_model_dir, startup_timeout_s=240).start()
    service = await _service(tmp_path, triton, copywriter_tiny_model_dir)
    channel = grpc.aio.insecure_channel(service.address)
    stub, health = (
        generation_pb2_grpc.GenerationServiceStub(channel),
        health_pb2_grpc.HealthStub(channel),
    )
    try:
        assert (
            await health.Check(health_pb2.HealthCheckRequest(service=LLM_HEALTH_NAME))
        ).status == health_pb2.HealthCheckResponse.SERVING
        stored = await stub.Generate(request(store_in_pool=True), metadata=auth(), timeout=120)
        assert not stored.llm_unavailable
        await stub.ApproveCreative(
            G.ApproveCreativeRequest(creative_id=stored.variants[0].creative_id, make_live=True),
            metadata=auth(),
        )

        triton.stop()
        await service.server.refresh_health()
        assert (
            await health.Check(health_pb2.HealthCheckRequest(service=LLM_HEALTH_NAME))
        ).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert (
            await health.Check(health_pb2.HealthCheckRequest(service=""))
        ).status == health_pb2.HealthCheckResponse.SERVING
        # The pool still serves, and Generate answers with compliant fallbacks.
        pool = await stub.GetCreatives(
            G.GetCreativesRequest(
                queries=[G.CreativeQuery(item_id=ITEMS[0].item_id)],
                channel=common_pb2.CHANNEL_PUSH,
                locale="en-US",
            ),
            metadata=auth(),
        )
        assert pool.items[0].creatives
        reply = await stub.Generate(request(), metadata=auth(), timeout=30)
        assert reply.llm_unavailable
        assert all(
            v.source == G.VARIANT_SOURCE_TEMPLATE_FALLBACK and v.compliance.passed
            for v in reply.variants
        )
        # Only when nothing can be served, and that is the constraints' fault, not the model's:
        # FAILED_PRECONDITION (no retry hint: retrying cannot help), never UNAVAILABLE.
        impossible = request(
            constraints=G.CopyConstraints(
                max_chars=20, must_include=["a very long required phrase indeed"]
            )
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Generate(impossible, metadata=auth(), timeout=30)
        assert err.value.code() in (
            grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert detail(err.value, error_details_pb2.RetryInfo) is None
    finally:
        await channel.close()
        await service.stop(0)
        triton.stop()


@pytest.fixture
async def small_generation(
    tmp_path: Path, small_triton: LocalTriton, copywriter_small_model_dir: Path
) -> AsyncIterator[generation_pb2_grpc.GenerationServiceStub]:
    service = await _service(tmp_path, small_triton, copywriter_small_model_dir)
    channel = grpc.aio.insecure_channel(service.address)
    try:
        yield generation_pb2_grpc.GenerationServiceStub(channel)
    finally:
        await channel.close()
        await service.stop(0)


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_model_written_copy_reaches_the_client_and_is_true(
    small_generation: generation_pb2_grpc.GenerationServiceStub, locale: str
) -> None:
    """Through Triton with a trained (small) model: the client gets copy the MODEL wrote (not a
    template), its facts filled from the item, and it passes an independent ReviewCopy."""
    stub = small_generation
    model_written: list[tuple[common_pb2.Item, G.Variant]] = []
    for seed, item in enumerate(ITEMS[:3]):
        reply = await stub.Generate(
            request(
                item,
                locale=locale,
                variant_count=4,
                sampling=G.SamplingParameters(seed=100 + seed),
                store_in_pool=True,
                idempotency_key=f"model-{locale}-{seed}",
            ),
            metadata=auth(),
            timeout=120,
        )
        assert not reply.llm_unavailable
        model_written += [
            (item, v)
            for v in reply.variants
            if v.source in (G.VARIANT_SOURCE_MODEL, G.VARIANT_SOURCE_MODEL_REGENERATED)
        ]
    assert model_written, "no variant written by the model reached the client"
    for item, v in model_written:
        assert v.model_name == "copywriter" and v.model_version and v.angle
        assert "{" not in v.text, f"an unfilled slot reached the client: {v.text!r}"
        if locale == "zh-CN":
            assert any("\u4e00" <= ch <= "\u9fff" for ch in v.text), v.text
        review = await stub.ReviewCopy(
            G.ReviewCopyRequest(
                item=item, channel=common_pb2.CHANNEL_PUSH, locale=locale, text=v.text
            ),
            metadata=auth(),
        )
        assert not [f for f in review.findings if f.check == "claim"], v.text
    # The pool keeps them as model copy, so Recommend serves model text from it.
    pool = await stub.ListCreatives(G.ListCreativesRequest(page_size=100), metadata=auth())
    sources = {c.variant.source for c in pool.creatives if c.locale == locale}
    assert G.VARIANT_SOURCE_MODEL in sources or G.VARIANT_SOURCE_MODEL_REGENERATED in sources
