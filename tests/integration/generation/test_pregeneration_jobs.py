"""Pre-generation jobs over real gRPC and a real database: a job interrupted by a shutdown (or
left RUNNING by a crash) resumes on the next start and finishes; never stays RUNNING; one
pending unit per pool slot across requests; idempotency keys honoured."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from tests.support.grpc_helpers import API_KEYS, auth

from copyloop.common.db import make_engine
from copyloop.generation import schema
from copyloop.generation.main import GenerationService, start_generation_service
from copyloop.generation.settings import GenerationSettings
from copyloop.generation.store import CreativeStore
from copyloop.v1 import common_pb2, generation_pb2, generation_pb2_grpc

G = generation_pb2
TENANT = "tenant-a"  # the tenant of tests.support.grpc_helpers.API_KEY


def items(n: int, prefix: str = "sku") -> list[common_pb2.Item]:
    return [
        common_pb2.Item(
            item_id=f"{prefix}-{i}",
            version=1,
            title=f"Galaxy Rocket Set {i}",
            brand="Brickwell",
            category_path=["Toys", "Building Sets"],
            price=19.99,
            selling_points=["420 pieces"],
        )
        for i in range(n)
    ]


def pregenerate(
    job_items: list[common_pb2.Item], **fields: object
) -> G.PregenerateCreativesRequest:
    return G.PregenerateCreativesRequest(
        items=job_items,
        channels=[common_pb2.CHANNEL_PUSH],
        locales=["en-US"],
        variants_per_item=1,
        **fields,  # type: ignore[arg-type]
    )


async def start(database_url: str) -> GenerationService:
    return await start_generation_service(
        GenerationSettings(
            port=0, database_url=database_url, api_keys=API_KEYS, pregeneration_concurrency=1
        )
    )


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[GenerationService]:
    running = await start(database_url)
    try:
        yield running
    finally:
        await running.stop(0)


def stub_for(
    service: GenerationService,
) -> tuple[generation_pb2_grpc.GenerationServiceStub, grpc.aio.Channel]:
    channel = grpc.aio.insecure_channel(service.address)
    return generation_pb2_grpc.GenerationServiceStub(channel), channel


async def job_of(
    stub: generation_pb2_grpc.GenerationServiceStub, job_id: str
) -> G.PregenerationJob:
    reply = await stub.GetPregenerationJob(
        G.GetPregenerationJobRequest(job_id=job_id), metadata=auth()
    )
    return reply.job


async def wait_until_finished(
    stub: generation_pb2_grpc.GenerationServiceStub, job_id: str, timeout_s: float = 120
) -> G.PregenerationJob:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end:
        job = await job_of(stub, job_id)
        if job.state in (G.JOB_STATE_SUCCEEDED, G.JOB_STATE_FAILED):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


async def test_job_stopped_mid_way_resumes_on_the_next_start_and_finishes(
    database_url: str,
) -> None:
    total = 300
    first = await start(database_url)
    stub, channel = stub_for(first)
    try:
        started = await stub.PregenerateCreatives(pregenerate(items(total)), metadata=auth())
        job_id = started.job.job_id
        assert started.job.total_count == total
        while (await job_of(stub, job_id)).done_count < 2:
            await asyncio.sleep(0.01)
    finally:
        await channel.close()
        await first.stop(0)

    store = CreativeStore(make_engine(database_url))
    try:
        stopped = store.get_job(TENANT, job_id)
        # The shutdown recorded itself: not RUNNING, the reason said, progress kept.
        assert stopped.state == "pending" and "shutdown" in stopped.error
        assert 2 <= stopped.done_count < total
        # A crash (SIGKILL) would leave it RUNNING with no one running it: simulate that too.
        with store.engine.begin() as conn:
            conn.execute(
                update(schema.pregeneration_jobs)
                .where(schema.pregeneration_jobs.c.job_id == job_id)
                .values(state="running")
            )
    finally:
        store.engine.dispose()

    second = await start(database_url)
    stub, channel = stub_for(second)
    try:
        job = await wait_until_finished(stub, job_id)
        assert job.state == G.JOB_STATE_SUCCEEDED, job.error
        # Every unit counted exactly once across the two runs.
        assert job.done_count == total and job.failed_count == 0
        assert job.creative_count >= total
        pool = await stub.ListCreatives(
            G.ListCreativesRequest(page_size=1000, status=G.CREATIVE_STATUS_DRAFT), metadata=auth()
        )
        assert {c.item_id for c in pool.creatives} == {f"sku-{i}" for i in range(total)}
    finally:
        await channel.close()
        await second.stop(0)


async def test_repeated_requests_join_the_job_already_filling_the_slot(
    service: GenerationService,
) -> None:
    stub, channel = stub_for(service)
    try:
        first = await stub.PregenerateCreatives(pregenerate(items(150)), metadata=auth())
        # The same slots again while the first job runs: it joins, nothing new is queued.
        again = await stub.PregenerateCreatives(pregenerate(items(150)[:20]), metadata=auth())
        assert again.job.job_id == first.job.job_id
        # Part overlap (the first job's last items, still pending): a new job for the new
        # slots only.
        mixed = await stub.PregenerateCreatives(
            pregenerate(items(150)[-5:] + items(3, prefix="new")), metadata=auth()
        )
        first_done = await wait_until_finished(stub, first.job.job_id)
        mixed_done = await wait_until_finished(stub, mixed.job.job_id)
        if mixed.job.job_id != first.job.job_id:
            assert mixed_done.total_count == 3
        else:  # the first job finished before the second request: nothing was pending
            pytest.fail("the first job finished before the overlap could be tested")
        assert first_done.state == mixed_done.state == G.JOB_STATE_SUCCEEDED
        # A finished job releases its slots: the same request queues a new job.
        later = await stub.PregenerateCreatives(pregenerate(items(2)), metadata=auth())
        assert later.job.job_id not in (first.job.job_id, mixed.job.job_id)
        await wait_until_finished(stub, later.job.job_id)
    finally:
        await channel.close()


async def test_pregeneration_idempotency_key_returns_the_first_job(
    service: GenerationService,
) -> None:
    stub, channel = stub_for(service)
    try:
        request = pregenerate(items(3), idempotency_key="pg-1")
        first = await stub.PregenerateCreatives(request, metadata=auth())
        await wait_until_finished(stub, first.job.job_id)
        # The first job has finished (its slots are free): without the key this would queue a
        # new job; with it, the retry gets the first job back.
        retry = await stub.PregenerateCreatives(request, metadata=auth())
        assert retry.job.job_id == first.job.job_id
        assert retry.job.state == G.JOB_STATE_SUCCEEDED
        other = pregenerate(items(4), idempotency_key="pg-1")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.PregenerateCreatives(other, metadata=auth())
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await channel.close()


async def test_generate_idempotency_key_replays_the_first_reply(
    service: GenerationService,
) -> None:
    stub, channel = stub_for(service)
    try:
        request = G.GenerateRequest(
            item=items(1)[0],
            channel=common_pb2.CHANNEL_PUSH,
            locale="en-US",
            variant_count=2,
            store_in_pool=True,
            idempotency_key="gen-1",
        )
        first = await stub.Generate(request, metadata=auth())
        retry = await stub.Generate(request, metadata=auth())
        # A replay is the stored reply byte for byte (a new run would measure a new latency).
        assert retry.SerializeToString() == first.SerializeToString()
        assert all(v.creative_id for v in retry.variants)
        changed = G.GenerateRequest()
        changed.CopyFrom(request)
        changed.variant_count = 3
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Generate(changed, metadata=auth())
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Without store_in_pool the key is honoured too.
        plain = G.GenerateRequest(
            item=items(1)[0], channel=common_pb2.CHANNEL_PUSH, locale="en-US", idempotency_key="g2"
        )
        assert (await stub.Generate(plain, metadata=auth())).SerializeToString() == (
            await stub.Generate(plain, metadata=auth())
        ).SerializeToString()
    finally:
        await channel.close()


async def test_unsatisfiable_constraints_are_failed_precondition(
    service: GenerationService,
) -> None:
    stub, channel = stub_for(service)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Generate(
                G.GenerateRequest(
                    item=items(1)[0],
                    channel=common_pb2.CHANNEL_PUSH,
                    locale="en-US",
                    constraints=G.CopyConstraints(max_chars=1),
                ),
                metadata=auth(),
            )
        # Not UNAVAILABLE: a retry cannot help, so clients must not retry.
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await channel.close()


def test_units_table_keeps_one_pending_unit_per_slot(database_url: str) -> None:
    """The partial unique index itself (what makes dedupe safe between concurrent requests)."""
    from copyloop.common.db import migrate
    from copyloop.generation.main import MIGRATIONS
    from copyloop.generation.store import NewUnit

    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS, "alembic_version_generation")
    store = CreativeStore(engine)
    try:
        unit = NewUnit("sku-1", 1, "push", "en-US", "", [])
        job, created = store.create_job(TENANT, [unit], "draft")
        again, created_again = store.create_job(TENANT, [unit], "draft")
        assert created and not created_again and again.job_id == job.job_id
        u = schema.pregeneration_units
        with engine.begin() as conn, pytest.raises(IntegrityError):
            conn.execute(
                u.insert().values(
                    tenant_id=TENANT,
                    job_id="job_other",
                    unit_index=0,
                    item_id="sku-1",
                    item_version=1,
                    channel="push",
                    locale="en-US",
                    segment="",
                    state="pending",
                    requests=[],
                    update_time=job.create_time,
                )
            )
        store.unit_done(TENANT, job.job_id, 0, "done", 1, False)
        store.unit_done(TENANT, job.job_id, 0, "done", 1, False)  # a resumed job redoing it
        done = store.get_job(TENANT, job.job_id)
        assert done.done_count == 1 and done.creative_count == 1
        with engine.connect() as conn:
            states = [r.state for r in conn.execute(select(u.c.state))]
        assert states == ["done"]
    finally:
        engine.dispose()


def test_migrations_build_the_schema_the_code_declares(database_url: str) -> None:
    """schema.py mirrors the migrations (both backends): no column, index or type differs."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from copyloop.common.db import migrate
    from copyloop.generation.main import MIGRATIONS

    engine = make_engine(database_url)
    try:
        migrate(engine, MIGRATIONS, "alembic_version_generation")
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = [
                d
                for d in compare_metadata(context, schema.metadata)
                if not (d[0] == "remove_table" and d[1].name.startswith("alembic_version"))
            ]
        assert diff == []
    finally:
        engine.dispose()
