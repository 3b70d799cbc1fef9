"""An LLM outage is visible and bounded: GenerationService over real gRPC with its Triton
address pointing at a closed port (down) or at a socket that never answers (hung). Generate
answers with checked template copy and lists the degradation, inside the caller's deadline;
pre-generation does not send template copy live and says so; fusion's Recommend lists it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from tests.support.grpc_helpers import API_KEYS, auth
from tests.unit.fusion.test_recommend import FakeDownstream, as_tenant, recommend_request

from copyloop.common.db import BlockingRunner, make_engine, migrate
from copyloop.fusion.main import MIGRATIONS as FUSION_MIGRATIONS
from copyloop.fusion.recommend import Recommender
from copyloop.fusion.settings import FusionSettings
from copyloop.fusion.store import FusionStore
from copyloop.generation.main import GenerationService, start_generation_service
from copyloop.generation.settings import GenerationSettings
from copyloop.v1 import common_pb2, fusion_pb2, generation_pb2, generation_pb2_grpc

G = generation_pb2
ITEM = common_pb2.Item(
    item_id="rocket-1",
    version=3,
    title="Galaxy Explorer Rocket Set",
    brand="Brickwell",
    category_path=["Toys", "Building Sets"],
    price=19.99,
    list_price=29.99,
    selling_points=["420 pieces"],
)


def closed_port() -> int:
    """A port nothing listens on: connections are refused (the LLM server is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def hung_llm() -> Iterator[str]:
    """A socket that accepts connections and never answers (an LLM server that hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


async def generation_with_llm(database_url: str, triton_url: str) -> GenerationService:
    return await start_generation_service(
        GenerationSettings(
            port=0,
            database_url=database_url,
            api_keys=API_KEYS,
            triton_url=triton_url,
            llm_timeout_s=30,
        )
    )


@pytest.fixture
async def llm_down(database_url: str) -> AsyncIterator[GenerationService]:
    service = await generation_with_llm(database_url, f"127.0.0.1:{closed_port()}")
    try:
        yield service
    finally:
        await service.stop(0)


def stub_for(
    service: GenerationService,
) -> tuple[generation_pb2_grpc.GenerationServiceStub, grpc.aio.Channel]:
    channel = grpc.aio.insecure_channel(service.address)
    return generation_pb2_grpc.GenerationServiceStub(channel), channel


def generate_request() -> G.GenerateRequest:
    return G.GenerateRequest(
        item=ITEM, channel=common_pb2.CHANNEL_PUSH, locale="en-US", variant_count=2
    )


async def test_llm_down_generate_lists_the_degradation_and_serves_template_copy(
    llm_down: GenerationService,
) -> None:
    stub, channel = stub_for(llm_down)
    try:
        reply = await stub.Generate(generate_request(), metadata=auth(), timeout=10)
    finally:
        await channel.close()
    assert reply.llm_unavailable and reply.variants
    assert all(v.source == G.VARIANT_SOURCE_TEMPLATE_FALLBACK for v in reply.variants)
    assert all(v.compliance.passed for v in reply.variants)
    (degradation,) = reply.degradations
    assert degradation.startswith("llm: unavailable") and "template copy" in degradation


async def test_hung_llm_generate_keeps_part_of_the_deadline_for_its_fallback(
    database_url: str, hung_llm: str
) -> None:
    service = await generation_with_llm(database_url, hung_llm)
    stub, channel = stub_for(service)
    try:
        # The model never answers; the server must still answer inside the caller's deadline
        # with its own fallback (it keeps 20% of the deadline), not DEADLINE_EXCEEDED.
        reply = await stub.Generate(generate_request(), metadata=auth(), timeout=3.0)
    finally:
        await channel.close()
        await service.stop(0)
    assert reply.llm_unavailable and reply.variants
    assert all(v.source == G.VARIANT_SOURCE_TEMPLATE_FALLBACK for v in reply.variants)
    assert any(d.startswith("llm: out of time") for d in reply.degradations), reply.degradations


async def test_llm_down_pregeneration_fails_and_keeps_template_copy_out_of_the_live_pool(
    llm_down: GenerationService,
) -> None:
    stub, channel = stub_for(llm_down)
    try:
        started = await stub.PregenerateCreatives(
            G.PregenerateCreativesRequest(
                items=[ITEM],
                channels=[common_pb2.CHANNEL_PUSH, common_pb2.CHANNEL_SMS],
                locales=["en-US"],
                variants_per_item=2,
                auto_approve=True,
            ),
            metadata=auth(),
        )
        job = started.job
        for _ in range(600):
            job = (
                await stub.GetPregenerationJob(
                    G.GetPregenerationJobRequest(job_id=job.job_id), metadata=auth()
                )
            ).job
            if job.state in (G.JOB_STATE_SUCCEEDED, G.JOB_STATE_FAILED):
                break
            await asyncio.sleep(0.05)
        assert job.state == G.JOB_STATE_FAILED and "every unit failed" in job.error
        assert job.done_count == job.failed_count == job.template_count == 2
        live = await stub.GetCreatives(
            G.GetCreativesRequest(
                queries=[G.CreativeQuery(item_id=ITEM.item_id)],
                channel=common_pb2.CHANNEL_PUSH,
                locale="en-US",
            ),
            metadata=auth(),
        )
        assert not live.items[0].creatives  # nothing went live despite auto_approve
        drafts = await stub.ListCreatives(
            G.ListCreativesRequest(item_id=ITEM.item_id, status=G.CREATIVE_STATUS_DRAFT),
            metadata=auth(),
        )
        assert drafts.creatives and job.creative_count >= len(drafts.creatives)
    finally:
        await channel.close()


async def test_llm_down_recommend_lists_the_llm_degradation(
    llm_down: GenerationService, tmp_path: Path
) -> None:
    """Fusion with the real generation service (its LLM down) for inline copy; profile and
    prediction answer from the fusion unit tests' fakes."""
    engine = make_engine(f"sqlite:///{tmp_path / 'fusion.db'}")
    migrate(engine, FUSION_MIGRATIONS, "alembic_version_fusion")
    runner = BlockingRunner(workers=2, name="fusion-test")
    stub, channel = stub_for(llm_down)
    down = FakeDownstream(
        GetCreatives=lambda req: G.GetCreativesResponse(
            items=[G.ItemCreatives(item_id=q.item_id) for q in req.queries]
        )
    )
    generation = stub

    class Mixed:
        """Real generation (with the test's API key), fake profile and prediction."""

        profile = down.profile
        prediction = down.prediction

        class generation_client:
            @staticmethod
            async def Generate(
                request: G.GenerateRequest, metadata: object = None, timeout: float | None = None
            ) -> G.GenerateResponse:
                return await generation.Generate(request, metadata=auth(), timeout=timeout)

            GetCreatives = down.generation.GetCreatives
            PregenerateCreatives = down.generation.PregenerateCreatives

        generation = generation_client

    recommender = Recommender(FusionStore(engine), Mixed(), FusionSettings(), runner)  # type: ignore[arg-type]
    try:
        with as_tenant():
            reply = await recommender.recommend(recommend_request(), (), None)
    finally:
        await recommender.close()
        await channel.close()
        runner.close()
        engine.dispose()
    llm = [d for d in reply.degradations if d.component == "llm"]
    assert len(llm) == 1 and llm[0].reason.startswith("llm: unavailable")
    inline = [r for r in reply.recommendations if r.copy.creative_id.startswith("gen:")]
    assert inline and all(r.copy.source == fusion_pb2.COPY_SOURCE_FALLBACK for r in inline)
