"""Recommend's degradation paths: a fake downstream (profile, generation, prediction) that
answers with canned protos, fails with UNAVAILABLE or is slower than its timeout, in front of a
real SQLite FusionStore. Each failure must degrade the reply, say so, and keep to the budget."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from sqlalchemy import select

from copyloop.common import tenancy
from copyloop.common.db import BlockingRunner
from copyloop.common.errors import Unavailable
from copyloop.fusion import schema
from copyloop.fusion.downstream import Downstream
from copyloop.fusion.recommend import (
    ANY_VERSION,
    PRIOR_CTR,
    PRIOR_CVR,
    PRIOR_VERSION,
    CopyVersions,
    RecommendCall,
    Recommender,
)
from copyloop.fusion.settings import FusionSettings
from copyloop.fusion.store import ArmSpec, FusionStore
from copyloop.v1 import (
    common_pb2,
    fusion_pb2,
    generation_pb2,
    prediction_pb2,
    profile_pb2,
)

F = fusion_pb2
TENANT = "acme"
METADATA = (("authorization", "Bearer test-key"), ("x-request-id", "rq_outer"))
ITEMS = [
    common_pb2.Item(
        item_id=f"sku-{n}",
        title=f"Trail shoe {n}",
        brand=brand,
        category_path=[category],
        price=price,
        list_price=price * 1.25,
        currency_code="USD",
        selling_points=["waterproof", "light"],
        stock=5,
        version=1,
    )
    for n, (brand, category, price) in enumerate(
        [("Acme", "shoes", 80.0), ("Globex", "bags", 40.0), ("Initech", "hats", 20.0)]
    )
]
OUT_OF_STOCK = common_pb2.Item(item_id="sku-gone", title="Gone", stock=0, version=1)
MODEL_VERSION = "v7"


def p_ctr_of(creative_id: str) -> float:
    """The fake model's score: distinct per creative, so tests can tell where scores came from."""
    return 0.01 + (sum(map(ord, creative_id)) % 50) / 1000


# ---- the fake downstream -------------------------------------------------------------------


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="fake")


@dataclass
class Slow:
    """Answers `reply` after `delay_s`, or, like gRPC, DEADLINE_EXCEEDED once the timeout is
    up when the delay is longer."""

    delay_s: float
    reply: Any = None


Behaviour = Any  # a proto, a StatusCode to fail with, Slow, or a callable(request) of those


@dataclass(frozen=True)
class Call:
    method: str
    request: Any
    metadata: Any
    timeout: float | None
    at: float  # time.monotonic() when the call started


class FakeService:
    """A stub whose async methods answer as told (by name); every call is recorded."""

    def __init__(self, calls: list[Call], behaviour: dict[str, Behaviour]) -> None:
        self._calls = calls
        self._behaviour = behaviour

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def call(request: Any, metadata: Any = None, timeout: float | None = None) -> Any:
            self._calls.append(Call(method, request, metadata, timeout, time.monotonic()))
            answer = self._behaviour[method]
            if callable(answer):
                answer = answer(request)
            if isinstance(answer, Slow):
                if timeout is not None and answer.delay_s > timeout:
                    await asyncio.sleep(timeout)
                    raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED)
                await asyncio.sleep(answer.delay_s)
                answer = answer.reply
            if isinstance(answer, grpc.StatusCode):
                raise rpc_error(answer)
            return answer

        return call


def recall(request: profile_pb2.RecallItemsRequest) -> profile_pb2.RecallItemsResponse:
    return profile_pb2.RecallItemsResponse(
        items=[profile_pb2.RecalledItem(item=i) for i in [*ITEMS, OUT_OF_STOCK]]
    )


def get_items(request: profile_pb2.GetItemsRequest) -> profile_pb2.GetItemsResponse:
    found = {i.item_id: i for i in [*ITEMS, OUT_OF_STOCK]}
    return profile_pb2.GetItemsResponse(items=[found[i] for i in request.item_ids])


def pool(request: generation_pb2.GetCreativesRequest) -> generation_pb2.GetCreativesResponse:
    return generation_pb2.GetCreativesResponse(
        items=[
            generation_pb2.ItemCreatives(
                item_id=q.item_id,
                creatives=[
                    generation_pb2.Creative(
                        creative_id=f"cr-{q.item_id}-{n}",
                        item_id=q.item_id,
                        text=f"Pool copy {n} for {q.item_id}",
                        template_version="t1",
                    )
                    for n in range(2)
                ],
            )
            for q in request.queries
        ]
    )


def generate(request: generation_pb2.GenerateRequest) -> generation_pb2.GenerateResponse:
    return generation_pb2.GenerateResponse(
        variants=[
            generation_pb2.Variant(
                text=f"Fresh copy {n} for {request.item.item_id}",
                template_version="g1",
                source=generation_pb2.VARIANT_SOURCE_MODEL,
            )
            for n in range(2)
        ]
    )


def score(request: prediction_pb2.ScoreRequest) -> prediction_pb2.ScoreResponse:
    return prediction_pb2.ScoreResponse(
        scores=[
            prediction_pb2.CandidateScore(
                item_id=c.item.item_id,
                creative_id=c.creative_id,
                p_ctr=p_ctr_of(c.creative_id),
                p_cvr=0.2,
                p_ctcvr=p_ctr_of(c.creative_id) * 0.2,
            )
            for c in request.candidates
        ],
        model_version=MODEL_VERSION,
    )


PROFILE = common_pb2.UserProfile(
    user_id="u-1",
    segments=["bargain_hunter", "fan:shoes"],
    price_band=common_pb2.PRICE_BAND_MID,
    category_affinities=[common_pb2.AffinityScore(key="shoes", share=0.6)],
)


class FakeDownstream:
    """Stands in for `Downstream`: .profile, .generation and .prediction, healthy by default."""

    def __init__(self, **overrides: Behaviour) -> None:
        self.calls: list[Call] = []
        self.behaviour: dict[str, Behaviour] = {
            "GetUserProfile": profile_pb2.GetUserProfileResponse(profile=PROFILE),
            "RecallItems": recall,
            "GetItems": get_items,
            "GetCreatives": pool,
            "Generate": generate,
            "PregenerateCreatives": generation_pb2.PregenerateCreativesResponse(),
            "Score": score,
        }
        self.behaviour.update(overrides)
        self.profile = FakeService(self.calls, self.behaviour)
        self.generation = FakeService(self.calls, self.behaviour)
        self.prediction = FakeService(self.calls, self.behaviour)

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]


# ---- fixtures ------------------------------------------------------------------------------


@contextmanager
def as_tenant(name: str = TENANT) -> Iterator[None]:
    tokens = tenancy.bind(name, "rq_outer")
    try:
        yield
    finally:
        tenancy.unbind(tokens)


@dataclass
class Harness:
    store: FusionStore
    runner: BlockingRunner
    settings: FusionSettings

    async def recommend(
        self,
        down: FakeDownstream,
        request: F.RecommendRequest | None = None,
        time_left_s: float | None = None,
        recommender: Recommender | None = None,
    ) -> F.RecommendResponse:
        recommender = recommender or self.recommender(down)
        with as_tenant():
            try:
                return await recommender.recommend(
                    request or recommend_request(), METADATA, time_left_s
                )
            finally:
                await asyncio.sleep(0)  # let queued pre-generation start
                await recommender.close()

    def recommender(self, down: FakeDownstream) -> Recommender:
        return Recommender(self.store, down, self.settings, self.runner)  # type: ignore[arg-type]

    def served_rows(self) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(select(schema.served).order_by(schema.served.c.item_id)))


@pytest.fixture
def harness(fusion_store: FusionStore, runner: BlockingRunner) -> Harness:
    return Harness(fusion_store, runner, FusionSettings())


def recommend_request(**fields: Any) -> F.RecommendRequest:
    base: dict[str, Any] = dict(
        user_id="u-1",
        context=common_pb2.Context(channel=common_pb2.CHANNEL_AD_COPY, locale="en-US"),
        n=3,
        latency_budget_ms=5000,
    )
    base.update(fields)
    return F.RecommendRequest(**base)


def degradations(reply: F.RecommendResponse) -> list[tuple[str, str, str]]:
    return [(d.component, d.fallback, d.reason) for d in reply.degradations]


# ---- RecommendCall -------------------------------------------------------------------------


def test_call_left_is_a_share_of_the_budget_never_below_a_millisecond() -> None:
    call = RecommendCall.start(recommend_request(), METADATA, TENANT, budget_s=2.0)
    assert call.reply.request_id.startswith("rq_") and len(call.reply.request_id) == 23
    assert call.left() == pytest.approx(1.9, abs=0.05)  # 5% is kept for the reply
    assert call.left(0.25) == pytest.approx(0.475, abs=0.02)
    call.end = time.monotonic() - 1
    assert call.left() == 0.001


def test_call_rng_is_seeded_by_the_request_id() -> None:
    call = RecommendCall.start(recommend_request(), METADATA, TENANT, budget_s=1.0)
    assert call.rng.random() == random.Random(call.reply.request_id).random()


def test_call_degrade_records_the_error_code_or_text() -> None:
    call = RecommendCall.start(recommend_request(), METADATA, TENANT, budget_s=1.0)
    call.degrade("profile", "cold-start profile", rpc_error(grpc.StatusCode.UNAVAILABLE))
    call.degrade("prediction", "prior scores", TimeoutError())
    call.degrade("generation", "fallback copy", ValueError("bad"))
    call.degrade("generation", "fallback copy", "no creatives")
    assert degradations(call.reply) == [
        ("profile", "cold-start profile", "UNAVAILABLE"),
        ("prediction", "prior scores", "DEADLINE_EXCEEDED"),
        ("generation", "fallback copy", "ValueError"),
        ("generation", "fallback copy", "no creatives"),
    ]


# ---- Recommend -----------------------------------------------------------------------------


async def test_all_healthy_serves_pool_copy_scored_by_the_model(harness: Harness) -> None:
    down = FakeDownstream()
    reply = await harness.recommend(down)

    assert degradations(reply) == []
    assert not reply.cold_start
    assert reply.request_id.startswith("rq_")
    assert sorted(r.item_id for r in reply.recommendations) == ["sku-0", "sku-1", "sku-2"]
    assert [r.rank for r in reply.recommendations] == [1, 2, 3]
    for rec in reply.recommendations:
        assert rec.copy.source == F.COPY_SOURCE_POOL
        assert rec.copy.creative_id.startswith(f"cr-{rec.item_id}-")
        assert rec.copy.template_version == "t1"
        assert rec.p_ctr == pytest.approx(p_ctr_of(rec.copy.creative_id))
        assert rec.p_cvr == pytest.approx(0.2)
        assert rec.model_version == MODEL_VERSION
        assert rec.currency_code == "USD"
        assert rec.impression_id.startswith("im_")
        assert rec.reasons  # at least the price band or discount fits
    # Every downstream call carries the caller's credentials and request id.
    assert {c.metadata for c in down.calls} == {METADATA}
    assert not down.called("Generate") and not down.called("GetItems")
    (scored,) = down.called("Score")
    assert len(scored.request.candidates) == 6  # two pool options for each in-stock item
    assert scored.request.profile == PROFILE

    rows = harness.served_rows()
    assert [r.impression_id for r in rows] == [
        r.impression_id for r in sorted(reply.recommendations, key=lambda r: r.item_id)
    ]
    for row in rows:
        assert row.tenant_id == TENANT
        assert row.request_id == reply.request_id
        assert row.user_id == "u-1"
        assert row.segment == "bargain_hunter"  # the first non-fan segment
        assert row.copy_source == "COPY_SOURCE_POOL"
        assert row.model_version == MODEL_VERSION
        assert (row.experiment_id, row.arm_id) == ("", "")
        # The impression is logged as it was scored: the candidate Score was sent (the item's
        # scoring fields and its popularity), so training sees what serving saw.
        sent = next(c for c in scored.request.candidates if c.creative_id == row.creative_id)
        logged = json_format.ParseDict(row.features["candidate"], prediction_pb2.ScoreCandidate())
        assert logged == sent and logged.item_popularity > 0
    assert all(not c.item.title for c in scored.request.candidates)  # only what Score reads


async def test_candidate_ids_are_read_instead_of_recalled(harness: Harness) -> None:
    down = FakeDownstream()
    reply = await harness.recommend(
        down, recommend_request(candidate_item_ids=["sku-2", "sku-gone"])
    )
    assert [r.item_id for r in reply.recommendations] == ["sku-2"]  # out of stock is dropped
    assert down.called("GetItems") and not down.called("RecallItems")


async def test_profile_down_degrades_to_a_cold_start_profile(harness: Harness) -> None:
    down = FakeDownstream(GetUserProfile=grpc.StatusCode.UNAVAILABLE)
    reply = await harness.recommend(down)

    assert degradations(reply) == [("profile", "cold-start profile", "UNAVAILABLE")]
    assert reply.cold_start
    assert len(reply.recommendations) == 3
    (scored,) = down.called("Score")
    assert scored.request.profile == common_pb2.UserProfile(user_id="u-1", cold_start=True)
    assert {r.segment for r in harness.served_rows()} == {"new_user"}


async def test_recall_down_without_cached_candidates_is_unavailable(harness: Harness) -> None:
    down = FakeDownstream(RecallItems=grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(Unavailable, match=r"no candidates: .*\(UNAVAILABLE\)") as raised:
        await harness.recommend(down)
    assert raised.value.retry_after_s == 1.0
    assert harness.served_rows() == []


async def test_recall_down_serves_the_last_good_recall(harness: Harness) -> None:
    down = FakeDownstream()
    recommender = harness.recommender(down)
    await harness.recommend(down, recommender=recommender)  # fills the tenant's cache

    down.behaviour["RecallItems"] = grpc.StatusCode.UNAVAILABLE
    reply = await harness.recommend(down, recommender=recommender)
    assert degradations(reply) == [("profile", "cached candidates", "UNAVAILABLE")]
    assert len(reply.recommendations) == 3


async def test_generation_down_serves_fallback_copy(harness: Harness) -> None:
    down = FakeDownstream(
        GetCreatives=grpc.StatusCode.UNAVAILABLE,
        Generate=grpc.StatusCode.UNAVAILABLE,
        PregenerateCreatives=grpc.StatusCode.UNAVAILABLE,
    )
    reply = await harness.recommend(down)

    assert degradations(reply) == [
        ("generation", "fallback copy", "UNAVAILABLE"),
        ("generation", "fallback copy for items without creatives", "UNAVAILABLE"),
    ]
    assert len(reply.recommendations) == 3
    for rec in reply.recommendations:
        assert rec.copy.source == F.COPY_SOURCE_FALLBACK
        assert rec.copy.creative_id == f"fallback:{rec.item_id}"
        assert rec.copy.template_version == "fallback"
        assert rec.copy.text
        assert rec.model_version == MODEL_VERSION  # prediction still scored the fallback copy
    assert len(down.called("Generate")) == 3  # generate_inline_max items tried inline
    (queued,) = down.called("PregenerateCreatives")  # the pool is refilled in the background
    assert sorted(i.item_id for i in queued.request.items) == ["sku-0", "sku-1", "sku-2"]
    assert queued.timeout == 10
    assert {r.copy_source for r in harness.served_rows()} == {"COPY_SOURCE_FALLBACK"}


async def test_empty_pool_generates_inline(harness: Harness) -> None:
    down = FakeDownstream(
        GetCreatives=lambda req: generation_pb2.GetCreativesResponse(
            items=[generation_pb2.ItemCreatives(item_id=q.item_id) for q in req.queries]
        )
    )
    reply = await harness.recommend(down)
    assert degradations(reply) == []
    for rec in reply.recommendations:
        assert rec.copy.source == F.COPY_SOURCE_GENERATED
        assert rec.copy.creative_id.startswith(f"gen:{rec.item_id}:")
    (generate_call, *_) = down.called("Generate")
    assert generate_call.request.audience.segment == "bargain_hunter"
    assert generate_call.request.audience.profile_summary == "likes shoes; price band mid"


async def test_prediction_down_serves_prior_scores(harness: Harness) -> None:
    down = FakeDownstream(Score=grpc.StatusCode.UNAVAILABLE)
    reply = await harness.recommend(down)

    assert degradations(reply) == [("prediction", "prior scores", "UNAVAILABLE")]
    assert len(reply.recommendations) == 3
    for rec in reply.recommendations:
        assert (rec.p_ctr, rec.p_cvr) == (PRIOR_CTR, PRIOR_CVR)
        assert rec.model_version == PRIOR_VERSION
        assert rec.copy.source == F.COPY_SOURCE_POOL
    assert {r.model_version for r in harness.served_rows()} == {PRIOR_VERSION}


async def test_generic_copy_arm_skips_the_pool(harness: Harness) -> None:
    harness.store.create_experiment(
        TENANT,
        "copy-test",
        "",
        [
            ArmSpec("generic-a", "ARM_STRATEGY_GENERIC_COPY", 1.0),
            ArmSpec("generic-b", "ARM_STRATEGY_GENERIC_COPY", 1.0),
        ],
    )
    down = FakeDownstream()
    reply = await harness.recommend(down)

    assert reply.assignment.experiment_id == "copy-test"
    assert reply.assignment.arm_id in ("generic-a", "generic-b")
    assert not down.called("GetCreatives") and not down.called("Generate")
    by_id = {i.item_id: i for i in ITEMS}
    for rec in reply.recommendations:
        assert rec.copy.source == F.COPY_SOURCE_GENERIC
        assert rec.copy.creative_id == f"generic:{rec.item_id}"
        assert rec.copy.text == f"{by_id[rec.item_id].title} - waterproof"
        assert rec.p_ctr == pytest.approx(p_ctr_of(rec.copy.creative_id))
    rows = harness.served_rows()
    assert {(r.experiment_id, r.arm_id) for r in rows} == {("copy-test", reply.assignment.arm_id)}
    counts = harness.store.arm_counts(TENANT, "copy-test")
    assert counts[reply.assignment.arm_id].users == 1


async def test_slow_prediction_uses_up_its_share_and_the_reply_keeps_the_budget(
    harness: Harness,
) -> None:
    budget_s = 0.6
    down = FakeDownstream(Score=Slow(delay_s=30.0))
    started = time.monotonic()
    reply = await harness.recommend(down, recommend_request(latency_budget_ms=600))
    elapsed = time.monotonic() - started

    assert degradations(reply) == [("prediction", "prior scores", "DEADLINE_EXCEEDED")]
    assert all(r.model_version == PRIOR_VERSION for r in reply.recommendations)
    (scored,) = down.called("Score")
    # Prediction gets 90% of what is left of the 95% of the budget Recommend plans with.
    assert scored.timeout is not None and 0.3 < scored.timeout <= 0.9 * 0.95 * budget_s
    assert elapsed < budget_s + 0.25  # the reply (and its store write) in about the budget


async def test_slow_pool_leaves_the_rest_of_the_budget_to_inline_generation(
    harness: Harness,
) -> None:
    budget_s = 1.0
    down = FakeDownstream(GetCreatives=Slow(delay_s=30.0))
    reply = await harness.recommend(down, recommend_request(latency_budget_ms=1000))

    assert degradations(reply) == [("generation", "fallback copy", "DEADLINE_EXCEEDED")]
    (pool_call,) = down.called("GetCreatives")
    assert pool_call.timeout is not None and pool_call.timeout <= 0.25 * 0.95 * budget_s
    # What the pool left (over the 150 ms minimum) goes to inline generation: half of it.
    generate_calls = down.called("Generate")
    assert len(generate_calls) == 3
    assert all(c.timeout is not None and c.timeout <= 0.5 * 0.75 * 0.95 for c in generate_calls)
    assert {r.copy.source for r in reply.recommendations} == {F.COPY_SOURCE_GENERATED}


async def test_the_caller_deadline_caps_the_budget(harness: Harness) -> None:
    down = FakeDownstream()
    await harness.recommend(down, recommend_request(latency_budget_ms=60_000), time_left_s=2.0)
    (profile_call,) = down.called("GetUserProfile")
    assert profile_call.timeout is not None
    assert 0.5 < profile_call.timeout <= 0.4 * 0.95 * 2.0


async def test_no_budget_set_uses_the_default(harness: Harness) -> None:
    down = FakeDownstream()
    await harness.recommend(down, recommend_request(latency_budget_ms=0))
    (profile_call,) = down.called("GetUserProfile")
    default_s = harness.settings.default_budget_ms / 1000
    assert profile_call.timeout is not None
    assert 0.5 * 0.4 * default_s < profile_call.timeout <= 0.4 * 0.95 * default_s


async def test_fake_downstream_has_the_stubs_recommend_uses() -> None:
    """The fake answers to the same names as the real Downstream's stubs."""
    real = Downstream("127.0.0.1:1", "127.0.0.1:1", "127.0.0.1:1")
    try:
        for name in FakeDownstream().behaviour:
            assert any(
                hasattr(getattr(real, service), name)
                for service in ("profile", "generation", "prediction")
            ), name
    finally:
        await real.close()


async def test_items_served_lately_rank_lower_and_each_copy_carries_its_propensity(
    harness: Harness,
) -> None:
    first = await harness.recommend(FakeDownstream(), recommend_request(n=1))
    top = first.recommendations[0]
    assert 0 < top.copy.propensity <= 1
    assert top.expected_value == pytest.approx(top.copy.posterior_ctr * top.p_cvr)
    # Served once already: the same item is now worth (1 + 1) ** -0.5 of its value to this
    # shopper, so a second request does not open with it again.
    second = await harness.recommend(FakeDownstream(), recommend_request(n=3))
    again = next(r for r in second.recommendations if r.item_id == top.item_id)
    assert again.expected_value == pytest.approx(again.copy.posterior_ctr * again.p_cvr * 2**-0.5)
    others = [r for r in second.recommendations if r.item_id != top.item_id]
    assert all(r.expected_value == pytest.approx(r.copy.posterior_ctr * r.p_cvr) for r in others)
    # Another shopper has seen nothing: no discount.
    fresh = await harness.recommend(FakeDownstream(), recommend_request(user_id="u-2", n=3))
    assert all(
        r.expected_value == pytest.approx(r.copy.posterior_ctr * r.p_cvr)
        for r in fresh.recommendations
    )


# ---- arms that pin a copywriter or prompt template version ----------------------------------


def versioned_pool(
    request: generation_pb2.GetCreativesRequest,
) -> generation_pb2.GetCreativesResponse:
    """A pool where sku-0 has copy of copywriter versions 1 and 2, sku-1 only of version 1 and
    sku-2 none at all. It honours the version filter (as GenerationService does), except that
    it sends sku-0's version-1 creative whatever is asked: fusion must drop it itself."""
    written = {"sku-0": ["1", "2"], "sku-1": ["1"], "sku-2": []}
    items = []
    for q in request.queries:
        creatives = [
            generation_pb2.Creative(
                creative_id=f"cr-{q.item_id}-v{version}",
                item_id=q.item_id,
                text=f"Copy by copywriter {version} for {q.item_id}",
                template_version="v2",
                model_version=version,
            )
            for version in written.get(q.item_id, [])
            if not request.model_version
            or version == request.model_version
            or (q.item_id, version) == ("sku-0", "1")
        ]
        items.append(generation_pb2.ItemCreatives(item_id=q.item_id, creatives=creatives))
    return generation_pb2.GetCreativesResponse(items=items)


def pin_every_arm(harness: Harness, copywriter: str = "2", template: str = "") -> None:
    harness.store.create_experiment(
        TENANT,
        "copywriter-test",
        "",
        [
            ArmSpec("pinned-a", "ARM_STRATEGY_PERSONALISED_BANDIT", 1.0, copywriter, template),
            ArmSpec("pinned-b", "ARM_STRATEGY_GREEDY_PREDICTED", 1.0, copywriter, template),
        ],
    )


async def test_an_arm_pinning_a_copywriter_version_serves_only_that_versions_copy(
    harness: Harness,
) -> None:
    pin_every_arm(harness, "2", "v2")
    down = FakeDownstream(GetCreatives=versioned_pool)
    reply = await harness.recommend(down)

    (pool_call,) = down.called("GetCreatives")
    assert pool_call.request.model_version == "2"
    assert pool_call.request.template_version == "v2"
    assert "model_version" in pool_call.request.read_mask.paths
    copy = {r.item_id: r.copy for r in reply.recommendations}
    assert copy["sku-0"].creative_id == "cr-sku-0-v2"
    assert copy["sku-0"].source == F.COPY_SOURCE_POOL
    # sku-1 and sku-2 have no version-2 copy: the same fallback as an empty pool (generated
    # now, with the arm's versions), and the reply says so.
    for item_id in ("sku-1", "sku-2"):
        assert copy[item_id].source == F.COPY_SOURCE_GENERATED
    generated = down.called("Generate")
    assert {c.request.item.item_id for c in generated} == {"sku-1", "sku-2"}
    assert {(c.request.model_version, c.request.template_version) for c in generated} == {
        ("2", "v2")
    }
    (pregeneration,) = down.called("PregenerateCreatives")
    assert (pregeneration.request.model_version, pregeneration.request.template_version) == (
        "2",
        "v2",
    )
    assert degradations(reply) == [
        (
            "copy",
            "copy generated now or a template",
            "no creatives of copywriter version 2 and prompt template version v2 for 2 items",
        )
    ]


async def test_an_arm_without_versions_sends_no_filter_and_reads_the_usual_fields(
    harness: Harness,
) -> None:
    down = FakeDownstream(GetCreatives=versioned_pool)
    reply = await harness.recommend(down)

    (pool_call,) = down.called("GetCreatives")
    assert pool_call.request.model_version == "" and pool_call.request.template_version == ""
    assert "model_version" not in pool_call.request.read_mask.paths
    assert degradations(reply) == []
    sources = {r.item_id: r.copy.source for r in reply.recommendations}
    assert sources["sku-0"] == sources["sku-1"] == F.COPY_SOURCE_POOL


async def test_a_pinned_arm_with_generation_down_reports_only_the_outage(
    harness: Harness,
) -> None:
    """Nothing was learned about the pool, so there is no "no creatives of version" claim."""
    pin_every_arm(harness, "2")
    down = FakeDownstream(
        GetCreatives=grpc.StatusCode.UNAVAILABLE, Generate=grpc.StatusCode.UNAVAILABLE
    )
    reply = await harness.recommend(down)
    components = [d[0] for d in degradations(reply)]
    assert "copy" not in components and "generation" in components
    assert all(r.copy.source == F.COPY_SOURCE_FALLBACK for r in reply.recommendations)


async def test_pregeneration_is_queued_once_per_version(harness: Harness) -> None:
    """An arm pinning version 2 must not be starved of pre-generation because the unpinned arm
    asked for the same items a moment earlier (and the other way round)."""
    empty = FakeDownstream(
        GetCreatives=lambda req: generation_pb2.GetCreativesResponse(
            items=[generation_pb2.ItemCreatives(item_id=q.item_id) for q in req.queries]
        )
    )
    recommender = harness.recommender(empty)
    with as_tenant():
        try:
            await recommender.recommend(recommend_request(), METADATA, None)
            pin_every_arm(harness, "2")
            await recommender.recommend(recommend_request(), METADATA, None)
            await recommender.recommend(recommend_request(), METADATA, None)
        finally:
            await asyncio.sleep(0)
            await recommender.close()
    versions = [c.request.model_version for c in empty.called("PregenerateCreatives")]
    assert versions == ["", "2"]


def test_copy_versions_of_an_arm() -> None:
    assert CopyVersions.of(None) is ANY_VERSION
    assert CopyVersions.of(ArmSpec("a", "ARM_STRATEGY_PERSONALISED_BANDIT", 1.0)) is ANY_VERSION
    both = CopyVersions.of(ArmSpec("a", "ARM_STRATEGY_PERSONALISED_BANDIT", 1.0, "2", "v3"))
    assert both.pinned and not ANY_VERSION.pinned
    assert both.describe() == "copywriter version 2 and prompt template version v3"
    assert CopyVersions(template="v3").describe() == "prompt template version v3"
    assert both.admits("2", "v3")
    assert not both.admits("2", "v2") and not both.admits("", "v3")
    assert CopyVersions(copywriter="2").admits("2", "anything")


async def test_one_item_without_the_version_is_said_in_the_singular(harness: Harness) -> None:
    pin_every_arm(harness, "2")
    down = FakeDownstream(GetCreatives=versioned_pool)
    reply = await harness.recommend(down, recommend_request(candidate_item_ids=["sku-0", "sku-1"]))
    assert (
        "copy",
        "copy generated now or a template",
        "no creatives of copywriter version 2 for 1 item",
    ) in degradations(reply)
