"""End to end across all four services over real gRPC (no LLM here: the Triton path has its own
end-to-end test): Recommend, the feedback loop, experiments, degradation, deadlines, tenants."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from tests.support.grpc_helpers import API_KEYS, OTHER_API_KEY, auth, field_violations
from tests.support.tcp_proxy import TcpProxy

from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import load_catalog, stream_events
from copyloop.demo.shoppers import generate_events, make_shoppers
from copyloop.platform import Platform, PlatformConfig, start_platform
from copyloop.v1 import (
    common_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    profile_pb2,
    profile_pb2_grpc,
)

F = fusion_pb2
CTX = common_pb2.Context(
    channel=common_pb2.CHANNEL_PUSH, locale="en-US", device=common_pb2.DEVICE_MOBILE
)


class Clients:
    def __init__(self, platform: Platform) -> None:
        self.channels = [
            grpc.aio.insecure_channel(a)
            for a in (
                platform.fusion.address,
                platform.profile.address,
                platform.generation.address,
            )
        ]
        self.fusion = fusion_pb2_grpc.FusionServiceStub(self.channels[0])
        self.profile = profile_pb2_grpc.ProfileServiceStub(self.channels[1])
        self.generation = generation_pb2_grpc.GenerationServiceStub(self.channels[2])

    async def close(self) -> None:
        for c in self.channels:
            await c.close()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database every service runs on: SQLite unless a test asks for both (`BOTH`)."""
    return str(getattr(request, "param", "sqlite"))


# The tests that run on both databases (the production one is PostgreSQL), each service on a
# fresh database of its own: what Recommend, ReportOutcome and the fallbacks write must fit.
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


def database_urls(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    if backend == "sqlite":
        return {}  # the platform's SQLite files under var_dir
    fresh = request.getfixturevalue("postgres_databases")
    return {s: fresh() for s in ("profile", "generation", "prediction", "fusion")}


async def start_loaded(cfg: PlatformConfig) -> tuple[Platform, Clients]:
    """The platform with the demo catalog and 40 shoppers' browsing history."""
    p = await start_platform(cfg)
    clients = Clients(p)
    catalog = generate_catalog(48)
    await load_catalog(clients.profile, catalog, auth())
    shoppers = make_shoppers(catalog, 40)
    await stream_events(
        clients.profile, generate_events(catalog, shoppers, now=time.time()), auth()
    )
    return p, clients


@pytest.fixture
async def platform(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Platform, Clients]]:
    p, clients = await start_loaded(
        PlatformConfig(
            var_dir=tmp_path,
            api_keys=API_KEYS,
            embedder="hashing",
            database_urls=database_urls(backend, request),
        )
    )
    try:
        yield p, clients
    finally:
        await clients.close()
        await p.stop(0)


@BOTH
async def test_recommend_returns_ranked_personalised_compliant_results(platform) -> None:
    _, c = platform
    # A budget no busy machine runs out of (a timed-out profile call would serve cold start).
    reply = await c.fusion.Recommend(
        F.RecommendRequest(user_id="shopper-00001", context=CTX, n=6, latency_budget_ms=30_000),
        metadata=auth(),
    )
    assert reply.request_id and len(reply.recommendations) == 6 and not reply.cold_start
    assert [r.rank for r in reply.recommendations] == list(range(1, 7))
    values = [r.expected_value for r in reply.recommendations]
    assert values[0] == max(values)
    for r in reply.recommendations:
        assert r.copy.text and r.copy.creative_id and r.impression_id and r.title
        assert len(r.copy.text) <= 90  # the push channel's limit
        assert r.copy.source in (
            F.COPY_SOURCE_POOL,
            F.COPY_SOURCE_GENERATED,
            F.COPY_SOURCE_FALLBACK,
        )
        assert 0 < r.p_ctr < 1 and r.model_version
    assert any(r.reasons for r in reply.recommendations)
    profile = (
        await c.profile.GetUserProfile(
            profile_pb2.GetUserProfileRequest(user_id="shopper-00001"), metadata=auth()
        )
    ).profile
    top = {a.key for a in profile.category_affinities[:2]}
    items = (
        await c.profile.GetItems(
            profile_pb2.GetItemsRequest(item_ids=[r.item_id for r in reply.recommendations]),
            metadata=auth(),
        )
    ).items
    assert any(i.category_path[0] in top for i in items)  # personalised, not just popular

    cold = await c.fusion.Recommend(
        F.RecommendRequest(user_id="brand-new", context=CTX, n=3, latency_budget_ms=30_000),
        metadata=auth(),
    )
    assert cold.cold_start and len(cold.recommendations) == 3


@BOTH
async def test_outcomes_change_later_copy_choices(platform) -> None:
    p, c = platform
    item = (
        await c.profile.GetItems(
            profile_pb2.GetItemsRequest(item_ids=["demo-00003"]), metadata=auth()
        )
    ).items[0]
    generated = await c.generation.Generate(
        generation_pb2.GenerateRequest(
            item=item,
            channel=CTX.channel,
            locale="en-US",
            variant_count=2,
            store_in_pool=True,
            audience=generation_pb2.Audience(segment="new_user"),
        ),
        metadata=auth(),
    )
    ids = [v.creative_id for v in generated.variants]
    for cid in ids:
        await c.generation.ApproveCreative(
            generation_pb2.ApproveCreativeRequest(creative_id=cid, make_live=True), metadata=auth()
        )
    loser, winner = ids

    # New visitors share the "new_user" segment, whose posteriors the feedback updates.
    def request(n: int) -> F.RecommendRequest:
        return F.RecommendRequest(  # a budget no busy machine runs out of
            user_id=f"visitor-{n}",
            context=CTX,
            n=1,
            candidate_item_ids=["demo-00003"],
            latency_budget_ms=30_000,
        )

    events: list[F.OutcomeEvent] = []
    shown = Counter()
    for n in range(120):
        reply = await c.fusion.Recommend(request(n), metadata=auth())
        rec = reply.recommendations[0]
        shown[rec.copy.creative_id] += 1
        assert 0 < rec.copy.propensity <= 1  # logged for off-policy evaluation
        assert rec.copy.posterior_ctr > 0
        events.append(
            F.OutcomeEvent(
                event_id=f"imp-{n}",
                request_id=reply.request_id,
                impression_id=rec.impression_id,
                type=F.FEEDBACK_TYPE_IMPRESSION,
            )
        )
        if rec.copy.creative_id == winner:
            events.append(
                F.OutcomeEvent(
                    event_id=f"clk-{n}",
                    request_id=reply.request_id,
                    impression_id=rec.impression_id,
                    type=F.FEEDBACK_TYPE_CLICK,
                )
            )
    assert set(shown) == {winner, loser}  # both were explored
    result = await c.fusion.ReportOutcome(F.ReportOutcomeRequest(events=events), metadata=auth())
    assert (result.accepted, result.duplicate, result.rejected) == (len(events), 0, 0)
    replay = await c.fusion.ReportOutcome(
        F.ReportOutcomeRequest(events=events[:5]), metadata=auth()
    )
    assert (replay.accepted, replay.duplicate) == (0, 5)

    after = Counter()
    for n in range(1000, 1030):
        reply = await c.fusion.Recommend(request(n), metadata=auth())
        rec = reply.recommendations[0]
        after[rec.copy.creative_id] += 1
        if rec.copy.creative_id == winner:
            # Ranking reads the same posterior: the clicks lifted it above the model's pCTR.
            assert rec.copy.posterior_ctr > 2 * rec.p_ctr
            assert rec.expected_value == pytest.approx(rec.copy.posterior_ctr * rec.p_cvr)
    assert after[winner] >= 27  # the posterior now clearly prefers the copy that gets clicks
    # The feedback reached the profile (impressions and clicks are behaviour events there),
    # forwarded by fusion's outbox relay.
    assert await p.fusion.relay.settle(timeout_s=30)
    profile = (
        await c.profile.GetUserProfile(
            profile_pb2.GetUserProfileRequest(user_id="visitor-0"), metadata=auth()
        )
    ).profile
    assert profile.event_count >= 1 and not profile.cold_start
    # Each impression reached the training log with the policy's propensity and the copy it
    # did not choose, so training can reweight and a candidate can be evaluated off-policy.
    logged = [
        r.impression
        for r in p.prediction.domain.store.labelled("tenant-a", 0, time.time() + 60)
        if r.impression.user_id.startswith("visitor-")
    ]
    assert len(logged) == 120
    assert all(0 < i.propensity <= 1 for i in logged)
    assert all(
        [a.creative_id for a in i.alternatives] == [cid for cid in ids if cid != i.creative_id]
        for i in logged
    )


async def test_experiment_assigns_arms_and_reports(platform) -> None:
    _, c = platform
    await c.fusion.CreateExperiment(
        F.CreateExperimentRequest(
            experiment_id="copy-test",
            display_name="Copy test",
            arms=[
                F.Arm(arm_id="generic", strategy=F.ARM_STRATEGY_GENERIC_COPY, traffic_weight=1),
                F.Arm(
                    arm_id="bandit", strategy=F.ARM_STRATEGY_PERSONALISED_BANDIT, traffic_weight=1
                ),
            ],
        ),
        metadata=auth(),
    )
    arms: dict[str, set[str]] = {}
    events = []
    for u in range(24):
        user = f"shopper-{u:05d}"
        for _ in range(2):
            reply = await c.fusion.Recommend(
                F.RecommendRequest(user_id=user, context=CTX, n=2, latency_budget_ms=30_000),
                metadata=auth(),
            )
            arms.setdefault(user, set()).add(reply.assignment.arm_id)
            for r in reply.recommendations:
                events.append(
                    F.OutcomeEvent(
                        event_id=f"{r.impression_id}-i",
                        request_id=reply.request_id,
                        impression_id=r.impression_id,
                        type=F.FEEDBACK_TYPE_IMPRESSION,
                    )
                )
                if reply.assignment.arm_id == "generic":
                    assert r.copy.source == F.COPY_SOURCE_GENERIC
                if hash(r.impression_id) % 4 == 0:
                    events.append(
                        F.OutcomeEvent(
                            event_id=f"{r.impression_id}-c",
                            request_id=reply.request_id,
                            impression_id=r.impression_id,
                            type=F.FEEDBACK_TYPE_CLICK,
                        )
                    )
    assert all(len(a) == 1 for a in arms.values())  # one arm per user
    assert {next(iter(a)) for a in arms.values()} == {"generic", "bandit"}
    await c.fusion.ReportOutcome(F.ReportOutcomeRequest(events=events), metadata=auth())
    report = await c.fusion.GetExperimentReport(
        F.GetExperimentReportRequest(experiment_id="copy-test", include_chart=True), metadata=auth()
    )
    by_arm = {a.arm_id: a for a in report.arms}
    assert (
        sum(a.impressions for a in report.arms) == 96
        and sum(a.user_count for a in report.arms) == 24
    )
    assert sum(a.clicks for a in report.arms) == sum(
        1 for e in events if e.type == F.FEEDBACK_TYPE_CLICK
    )
    assert report.baseline_arm_id == "generic" and by_arm["generic"].ctr_lift == 0
    assert abs(sum(a.probability_best for a in report.arms) - 1) < 1e-6
    assert report.chart_png.startswith(b"\x89PNG")
    assert 0 <= report.sample_ratio_p_value <= 1

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await c.fusion.GetExperiment(
            F.GetExperimentRequest(experiment_id="copy-test"), metadata=auth(OTHER_API_KEY)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_stopped_prediction_service_degrades_to_prior_scores(platform) -> None:
    p, c = platform
    await p.prediction.stop(0)
    # A budget no busy machine runs out of: what is degraded is what is down, nothing else.
    reply = await c.fusion.Recommend(
        F.RecommendRequest(user_id="shopper-00002", context=CTX, n=3, latency_budget_ms=30_000),
        metadata=auth(),
    )
    assert len(reply.recommendations) == 3
    degraded = [(d.component, d.fallback, d.reason) for d in reply.degradations]
    assert ("prediction", "prior scores", "UNAVAILABLE") in degraded
    # No other service failed or ran out of time ("llm": this suite runs without Triton).
    assert {d.component for d in reply.degradations} <= {"prediction", "llm"}, degraded
    assert all(r.model_version == "prior:fusion" for r in reply.recommendations)


@BOTH
async def test_stopped_generation_service_degrades_to_fallback_copy(platform) -> None:
    p, c = platform
    await p.generation.stop(0)
    reply = await c.fusion.Recommend(
        F.RecommendRequest(user_id="shopper-00002", context=CTX, n=3, latency_budget_ms=30_000),
        metadata=auth(),
    )
    assert len(reply.recommendations) == 3
    assert "generation" in [d.component for d in reply.degradations]
    assert all(
        r.copy.source == F.COPY_SOURCE_FALLBACK and r.copy.text for r in reply.recommendations
    )


async def test_a_slow_dependency_runs_the_server_out_of_time(tmp_path: Path) -> None:
    """The server, not the client, runs out of time: prediction is reached through a link that
    holds every packet for 5 s; Recommend's 4 s budget (ample for everything else, on a busy
    machine too) runs out on the server, which answers before the client's own deadline with
    prior scores and says why."""
    slow = TcpProxy("127.0.0.1", 0)
    slow.start()
    p, c = await start_loaded(
        PlatformConfig(
            var_dir=tmp_path,
            api_keys=API_KEYS,
            embedder="hashing",
            fusion_overrides={"prediction_addr": f"127.0.0.1:{slow.port}"},
        )
    )
    try:
        host, _, port = p.prediction.address.rpartition(":")
        slow.target, slow.delay_s = (host, int(port)), 5.0
        reply = await c.fusion.Recommend(
            F.RecommendRequest(user_id="shopper-00003", context=CTX, n=5, latency_budget_ms=4000),
            metadata=auth(),
            timeout=60,
        )
        assert len(reply.recommendations) == 5
        assert ("prediction", "prior scores", "DEADLINE_EXCEEDED") in [
            (d.component, d.fallback, d.reason) for d in reply.degradations
        ]
        assert all(r.model_version == "prior:fusion" for r in reply.recommendations)
    finally:
        await c.close()
        await p.stop(0)
        slow.cut()


@BOTH
async def test_bad_input_and_tenant_isolation(platform) -> None:
    _, c = platform
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await c.fusion.Recommend(
            F.RecommendRequest(
                user_id="",
                context=common_pb2.Context(locale="fr"),
                n=500,
                candidate_item_ids=["a", "a"],
            ),
            metadata=auth(),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(err.value)) == {
        "user_id",
        "context.channel",
        "context.locale",
        "n",
        "candidate_item_ids",
    }
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await c.fusion.ReportOutcome(
            F.ReportOutcomeRequest(events=[F.OutcomeEvent(event_id="e")]), metadata=auth()
        )
    assert set(field_violations(err.value)) == {
        "events[0].impression_id",
        "events[0].request_id",
        "events[0].type",
    }
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await c.fusion.CreateExperiment(
            F.CreateExperimentRequest(experiment_id="Bad Id", arms=[F.Arm(arm_id="a")]),
            metadata=auth(),
        )
    assert {"experiment_id", "arms", "arms[0].strategy", "arms[0].traffic_weight"} <= set(
        field_violations(err.value)
    )

    # Tenant B has no catalog: it cannot see tenant A's items, users or creatives.
    empty = await c.fusion.Recommend(
        F.RecommendRequest(user_id="shopper-00001", context=CTX, n=3), metadata=auth(OTHER_API_KEY)
    )
    assert not empty.recommendations and empty.cold_start
    reply = await c.fusion.Recommend(
        F.RecommendRequest(
            user_id="shopper-00001", context=CTX, n=3, candidate_item_ids=["demo-00001"]
        ),
        metadata=auth(OTHER_API_KEY),
    )
    assert not reply.recommendations and reply.cold_start
    a_reply = await c.fusion.Recommend(
        F.RecommendRequest(user_id="shopper-00001", context=CTX, n=1, latency_budget_ms=30_000),
        metadata=auth(),
    )
    rejected = await c.fusion.ReportOutcome(
        F.ReportOutcomeRequest(
            events=[
                F.OutcomeEvent(
                    event_id="x",
                    request_id=a_reply.request_id,
                    impression_id=a_reply.recommendations[0].impression_id,
                    type=F.FEEDBACK_TYPE_CLICK,
                )
            ]
        ),
        metadata=auth(OTHER_API_KEY),
    )
    assert rejected.rejected == 1 and "unknown impression" in rejected.rejection_reasons[0]


async def test_concurrent_recommends(platform) -> None:
    _, c = platform
    replies = await asyncio.gather(
        *(
            c.fusion.Recommend(
                F.RecommendRequest(
                    user_id=f"shopper-{n:05d}", context=CTX, n=4, latency_budget_ms=5000
                ),
                metadata=auth(),
            )
            for n in range(16)
        )
    )
    assert all(len(r.recommendations) == 4 for r in replies)
    assert len({r.request_id for r in replies}) == 16
