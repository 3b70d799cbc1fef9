"""An experiment arm that pins a copywriter version, on the real platform (SQLite and
PostgreSQL): Recommend for a shopper in that arm asks GenerationService's pool for that
version only and, where the pool has none of it, falls back as for an empty pool and says so;
a shopper in an arm without versions gets the pool's copy, asked for as before.

The pool holds live creatives for two items, written without the LLM (so of no copywriter
version). Fusion reaches GenerationService through a forwarding proxy that records each
GetCreatives request it passes on: the replies are the real service's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.integration.fusion.loop import CTX, start_loop
from tests.support.grpc_helpers import auth

from copyloop.fusion import experiments
from copyloop.platform import Platform
from copyloop.v1 import (
    common_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    profile_pb2,
    profile_pb2_grpc,
)

F, G = fusion_pb2, generation_pb2
SERVICES = ("profile", "generation", "prediction", "fusion")
TENANT = "tenant-a"  # test-key-a's tenant (tests.support.grpc_helpers.API_KEYS)
EXPERIMENT = "copywriter-2"
ITEMS = ["demo-00001", "demo-00002"]
GET_CREATIVES = "/copyloop.v1.GenerationService/GetCreatives"


class RecordingProxy(grpc.GenericRpcHandler):
    """Forwards every unary call as bytes to `target`, keeping GetCreatives requests."""

    def __init__(self) -> None:
        self.target = ""
        self.channel: grpc.aio.Channel | None = None
        self.pool_requests: list[G.GetCreativesRequest] = []

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method: str = details.method  # type: ignore[attr-defined]

        async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            if method == GET_CREATIVES:
                self.pool_requests.append(G.GetCreativesRequest.FromString(request))
            if self.channel is None:
                self.channel = grpc.aio.insecure_channel(self.target)
            metadata = [
                (k, v)
                for k, v in context.invocation_metadata() or ()
                if not k.startswith((":", "grpc-")) and k != "user-agent"
            ]
            try:
                reply: bytes = await self.channel.unary_unary(method)(
                    request, metadata=metadata, timeout=context.time_remaining()
                )
            except grpc.aio.AioRpcError as e:
                await context.abort(e.code(), e.details() or "")
            return reply

        return grpc.unary_unary_rpc_method_handler(forward)


@pytest.fixture(params=["sqlite", "postgres"])
def database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
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
async def proxy() -> AsyncIterator[tuple[RecordingProxy, str]]:
    handler = RecordingProxy()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield handler, f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
        if handler.channel is not None:
            await handler.channel.close()


@pytest.fixture
async def platform(
    database_urls: dict[str, str], tmp_path: Path, proxy: tuple[RecordingProxy, str]
) -> AsyncIterator[Platform]:
    handler, address = proxy
    p = await start_loop(
        tmp_path, database_urls=database_urls, fusion_overrides={"generation_addr": address}
    )
    handler.target = p.generation.address
    try:
        yield p
    finally:
        await p.stop(0)


async def fill_pool(platform: Platform) -> None:
    """Live creatives for ITEMS, for every segment, written from templates (no LLM here)."""
    async with grpc.aio.insecure_channel(platform.profile.address) as channel:
        items = (
            await profile_pb2_grpc.ProfileServiceStub(channel).GetItems(
                profile_pb2.GetItemsRequest(item_ids=ITEMS), metadata=auth()
            )
        ).items
    async with grpc.aio.insecure_channel(platform.generation.address) as channel:
        generation = generation_pb2_grpc.GenerationServiceStub(channel)
        for item in items:
            reply = await generation.Generate(
                G.GenerateRequest(
                    item=item,
                    channel=common_pb2.CHANNEL_PUSH,
                    locale="en-US",
                    variant_count=2,
                    store_in_pool=True,
                ),
                metadata=auth(),
                timeout=60,
            )
            stored = [v.creative_id for v in reply.variants if v.creative_id]
            assert stored, f"nothing stored for {item.item_id}"
            for creative_id in stored:
                await generation.ApproveCreative(
                    G.ApproveCreativeRequest(
                        creative_id=creative_id, reviewer="qa", make_live=True
                    ),
                    metadata=auth(),
                )


def user_in(arm_id: str, arms: list[tuple[str, float]]) -> str:
    """A shopper id the experiment assigns to `arm_id` (assignment is a pure hash)."""
    return next(
        user
        for user in (f"arm-shopper-{n}" for n in range(1000))
        if experiments.assign(user, f"{TENANT}/{EXPERIMENT}", arms) == arm_id
    )


def degradations(reply: F.RecommendResponse) -> list[tuple[str, str, str]]:
    return [(d.component, d.fallback, d.reason) for d in reply.degradations]


async def test_a_pinned_arm_asks_for_its_copywriter_version_and_says_when_there_is_none(
    platform: Platform, proxy: tuple[RecordingProxy, str]
) -> None:
    handler, _ = proxy
    await fill_pool(platform)
    async with grpc.aio.insecure_channel(platform.fusion.address) as channel:
        fusion = fusion_pb2_grpc.FusionServiceStub(channel)
        created = await fusion.CreateExperiment(
            F.CreateExperimentRequest(
                experiment_id=EXPERIMENT,
                arms=[
                    F.Arm(
                        arm_id="any", strategy=F.ARM_STRATEGY_PERSONALISED_BANDIT, traffic_weight=1
                    ),
                    F.Arm(
                        arm_id="v2",
                        strategy=F.ARM_STRATEGY_PERSONALISED_BANDIT,
                        traffic_weight=1,
                        copywriter_version="2",
                    ),
                ],
            ),
            metadata=auth(),
        )
        arms = [(a.arm_id, a.traffic_weight) for a in created.experiment.arms]

        async def recommend(user_id: str) -> tuple[F.RecommendResponse, G.GetCreativesRequest]:
            before = len(handler.pool_requests)
            reply = await fusion.Recommend(
                F.RecommendRequest(
                    user_id=user_id,
                    context=CTX,
                    n=len(ITEMS),
                    candidate_item_ids=ITEMS,
                    latency_budget_ms=30_000,
                ),
                metadata=auth(),
            )
            (asked,) = handler.pool_requests[before:]
            return reply, asked

        any_reply, any_asked = await recommend(user_in("any", arms))
        pinned_reply, pinned_asked = await recommend(user_in("v2", arms))

    # The arm without versions: no filter, the usual fields, the pool's copy.
    assert any_reply.assignment.arm_id == "any"
    assert (any_asked.model_version, any_asked.template_version) == ("", "")
    assert "model_version" not in any_asked.read_mask.paths
    assert {r.copy.source for r in any_reply.recommendations} == {F.COPY_SOURCE_POOL}
    assert [d for d in degradations(any_reply) if d[0] == "copy"] == []

    # The pinned arm: version 2 asked for; the pool has none of it, so no pool copy is served
    # and the reply says for how many items.
    assert pinned_reply.assignment.arm_id == "v2"
    assert (pinned_asked.model_version, pinned_asked.template_version) == ("2", "")
    assert "model_version" in pinned_asked.read_mask.paths
    assert len(pinned_reply.recommendations) == len(ITEMS)
    assert F.COPY_SOURCE_POOL not in {r.copy.source for r in pinned_reply.recommendations}
    assert (
        "copy",
        "copy generated now or a template",
        f"no creatives of copywriter version 2 for {len(ITEMS)} items",
    ) in degradations(pinned_reply)
