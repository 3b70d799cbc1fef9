"""Copywriter versions through a REAL Triton: a cycle fine-tunes the tiny model on winning copy,
publishes version 2 in the model repository and loads it into the running server (same
process, no restart); GenerationService then writes with the version a request names, records
it on every model variant and stored creative, GetCreatives filters by it, Pregenerate honours
it, and a version Triton does not serve is FAILED_PRECONDITION.

The server gets its own copy of the model repository (version 1 only), so what this test
publishes never reaches deploy/triton/models or other tests' Triton."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from tests.support.grpc_helpers import API_KEYS, auth, detail, field_violations
from tests.support.triton_fixtures import triton_unavailable_reason

from copyloop.generation.compliance import CopyConstraints
from copyloop.generation.copywriter.corpus import write_copy
from copyloop.generation.copywriter.cycle import CycleConfig, Winner, run_cycle
from copyloop.generation.llm_client import TritonLLMClient
from copyloop.generation.main import start_generation_service
from copyloop.generation.messages import item_brief
from copyloop.generation.pipeline import RawOutput, process_variants
from copyloop.generation.settings import GenerationSettings
from copyloop.generation.slots import fill_slots
from copyloop.generation.triton_local import DEFAULT_MODEL_REPOSITORY, LocalTriton
from copyloop.v1 import common_pb2, generation_pb2, generation_pb2_grpc

pytestmark = pytest.mark.triton
G = generation_pb2
ITEM = common_pb2.Item(
    item_id="lamp-1",
    title="Aurora Desk Lamp",
    brand="Lumo",
    category_path=["Home & Kitchen", "Lighting"],
    price=29.99,
    list_price=39.99,
    selling_points=["warm dimmable light", "USB-C charging"],
)
SEGMENT, ANGLE = "bargain_hunter", "value"
BRIEF = item_brief(
    ITEM,
    channel="push",
    locale="en-US",
    tone="playful",
    audience_segment=SEGMENT,
    angle=ANGLE,
)


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("triton") / "models"
    shutil.copytree(
        DEFAULT_MODEL_REPOSITORY,
        repo,
        ignore=lambda d, names: [
            n for n in names if n == "__pycache__" or (n.isdigit() and n != "1")
        ],
    )
    return repo


@pytest.fixture(scope="module")
def triton(repository: Path, copywriter_tiny_model_dir: Path) -> Iterator[LocalTriton]:
    reason = triton_unavailable_reason()
    if reason:
        pytest.skip(f"local Triton unavailable: {reason}")
    server = LocalTriton(
        copywriter_tiny_model_dir,
        repository,
        startup_timeout_s=240,
        env={"COPYWRITER_TORCH_THREADS": "1"},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def stub(
    tmp_path: Path, triton: LocalTriton, copywriter_tiny_model_dir: Path
) -> AsyncIterator[generation_pb2_grpc.GenerationServiceStub]:
    service = await start_generation_service(
        GenerationSettings(
            port=0,
            database_url=f"sqlite:///{tmp_path / 'gen.db'}",
            api_keys=API_KEYS,
            triton_url=triton.grpc_url,
            model_dir=str(copywriter_tiny_model_dir),
            llm_timeout_s=60,
            readiness_interval_s=0.2,
            pool_cache_ttl_s=0,
        )
    )
    channel = grpc.aio.insecure_channel(service.address)
    try:
        yield generation_pb2_grpc.GenerationServiceStub(channel)
    finally:
        await channel.close()
        await service.stop(0)


def winning_text() -> str:
    """Copy that passes every check for ITEM, written from the demo grammar (as served: slots
    filled), the kind of text a winning creative has."""
    for seed in range(100):
        frame = write_copy(BRIEF, ANGLE, random.Random(seed))
        if process_variants(BRIEF, CopyConstraints(), [RawOutput(frame)]).variants:
            filled = fill_slots(frame, BRIEF)
            assert filled is not None
            return filled.text
    raise AssertionError("the grammar wrote no passing frame for the item")


def request(**over: object) -> G.GenerateRequest:
    fields: dict[str, object] = dict(
        item=ITEM,
        channel=common_pb2.CHANNEL_PUSH,
        locale="en-US",
        audience=G.Audience(segment=SEGMENT),
        angle=ANGLE,
        variant_count=2,
        sampling=G.SamplingParameters(temperature=0.0, max_tokens=40),
    )
    fields.update(over)
    return G.GenerateRequest(**fields)  # type: ignore[arg-type]


def model_written(reply: G.GenerateResponse) -> list[G.Variant]:
    return [v for v in reply.variants if v.source != G.VARIANT_SOURCE_TEMPLATE_FALLBACK]


async def test_a_published_version_is_loaded_without_restart_and_chosen_per_request(
    stub: generation_pb2_grpc.GenerationServiceStub,
    triton: LocalTriton,
    repository: Path,
    copywriter_tiny_model_dir: Path,
    tmp_path: Path,
) -> None:
    assert triton.loaded_versions["copywriter"] == [1]
    pid = triton.pid

    # Before the cycle: version 2 does not exist. The request is well formed, Triton just
    # does not serve that version: FAILED_PRECONDITION, never template copy in its place.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Generate(request(model_version="2"), metadata=auth(), timeout=120)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    failure = detail(err.value, error_details_pb2.PreconditionFailure)
    assert failure is not None
    assert failure.violations[0].type == "MODEL_VERSION"  # type: ignore[attr-defined]
    assert "loaded: 1" in failure.violations[0].description  # type: ignore[attr-defined]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Generate(request(model_version="two"), metadata=auth(), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "model_version" in field_violations(err.value)

    # One cycle: winners of one frame, a short full fine-tune (the tiny model learns it),
    # published as version 2 and loaded into the running server.
    text = winning_text()
    winners = [
        Winner(f"cr_{n}", text, SEGMENT, ANGLE, 1.3 + n / 20, 400, BRIEF) for n in range(12)
    ] + [Winner("cr_loser", "Lumo lamp, meh.", SEGMENT, ANGLE, 0.6, 400, BRIEF)]
    report = await asyncio.to_thread(
        run_cycle,
        winners,
        repository=repository,
        root_model_dir=copywriter_tiny_model_dir,
        weights_root=tmp_path / "weights",
        config=CycleConfig(lora=False, max_steps=200, batch_size=4, learning_rate=1e-2, n_checks=4),
        triton_url=triton.grpc_url,
    )
    assert report.published and report.version == 2 and report.n_winners == 12
    assert report.loaded_versions == [1, 2]
    assert report.perplexity_after < report.perplexity_before
    assert triton.pid == pid and triton.is_running()  # the same server: no restart

    # Each version answers when named; an empty version gets the newest.
    async with TritonLLMClient(triton.grpc_url) as llm:
        assert await llm.loaded_versions() == ("1", "2")
        one = await llm.generate("hello", {"max_tokens": 4}, model_version="1")
        newest = await llm.generate("hello", {"max_tokens": 4})
        assert (one.model_version, newest.model_version) == ("1", "2")

    named = await stub.Generate(
        request(model_version="2", store_in_pool=True), metadata=auth(), timeout=120
    )
    assert model_written(named), "version 2 learned the winning frame"
    assert {v.model_version for v in model_written(named)} == {"2"}
    default = await stub.Generate(request(), metadata=auth(), timeout=120)
    assert model_written(default) and {v.model_version for v in model_written(default)} == {"2"}

    # The pool records the version; GetCreatives filters by it and by template version.
    def query(**over: object) -> G.GetCreativesRequest:
        fields: dict[str, object] = dict(
            queries=[G.CreativeQuery(item_id=ITEM.item_id)],
            channel=common_pb2.CHANNEL_PUSH,
            locale="en-US",
            segment=SEGMENT,
            status=G.CREATIVE_STATUS_DRAFT,
        )
        fields.update(over)
        return G.GetCreativesRequest(**fields)  # type: ignore[arg-type]

    stored = (await stub.GetCreatives(query(), metadata=auth())).items[0].creatives
    by_id = {c.creative_id: c for c in stored}
    for v in named.variants:
        expected = "2" if v.source != G.VARIANT_SOURCE_TEMPLATE_FALLBACK else ""
        assert by_id[v.creative_id].model_version == expected
    v2 = (await stub.GetCreatives(query(model_version="2"), metadata=auth())).items[0].creatives
    assert {c.creative_id for c in v2} == {v.creative_id for v in model_written(named)}
    assert (
        not (await stub.GetCreatives(query(model_version="1"), metadata=auth())).items[0].creatives
    )
    template = named.variants[0].template_version
    assert {
        c.creative_id
        for c in (
            await stub.GetCreatives(
                query(model_version="2", template_version=template), metadata=auth()
            )
        )
        .items[0]
        .creatives
    } == {c.creative_id for c in v2}
    assert (
        not (await stub.GetCreatives(query(template_version="no-such"), metadata=auth()))
        .items[0]
        .creatives
    )

    # Pre-generation writes with the version it names, and refuses one Triton lacks up front.
    # (Another item: the pool keeps one row per text, and ITEM already holds version 2's.)
    other = common_pb2.Item()
    other.CopyFrom(ITEM)
    other.item_id = "lamp-2"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PregenerateCreatives(
            G.PregenerateCreativesRequest(
                items=[ITEM],
                channels=[common_pb2.CHANNEL_PUSH],
                locales=["en-US"],
                model_version="9",
            ),
            metadata=auth(),
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    job = (
        await stub.PregenerateCreatives(
            G.PregenerateCreativesRequest(
                items=[other],
                channels=[common_pb2.CHANNEL_PUSH],
                locales=["en-US"],
                segments=[SEGMENT],
                variants_per_item=2,
                auto_approve=True,
                model_version="2",
                template_version=template,
            ),
            metadata=auth(),
        )
    ).job
    for _ in range(600):
        job = (
            await stub.GetPregenerationJob(
                G.GetPregenerationJobRequest(job_id=job.job_id), metadata=auth()
            )
        ).job
        if job.state in (G.JOB_STATE_SUCCEEDED, G.JOB_STATE_FAILED):
            break
        await asyncio.sleep(0.2)
    assert job.state == G.JOB_STATE_SUCCEEDED, job.error
    live = (
        (
            await stub.GetCreatives(
                query(
                    queries=[G.CreativeQuery(item_id=other.item_id)],
                    status=G.CREATIVE_STATUS_LIVE,
                ),
                metadata=auth(),
            )
        )
        .items[0]
        .creatives
    )
    assert live and all(c.template_version == template for c in live)
    assert {c.model_version for c in live} <= {"2", ""}
    assert "2" in {c.model_version for c in live}
