"""ListCreativePerformance over real gRPC on SQLite and PostgreSQL: pool creatives by shrunk
lift, best first, paged with tokens across ties, filtered by impressions and segment, each
tenant seeing only its own; and experiment arms that pin a copywriter or template version,
stored and returned.

The bandit statistics are seeded through the store the running service uses (serves, then
outcomes: the path ReportOutcome takes), with pCTRs that are binary fractions so every sum of
expected clicks is exact and the expected order does not hang on rounding."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from tests.support.grpc_helpers import API_KEYS, OTHER_API_KEY, auth, field_violations

from copyloop.fusion.main import FusionService, start_fusion_service
from copyloop.fusion.performance import shrunk_lift
from copyloop.fusion.settings import FusionSettings
from copyloop.fusion.store import OutcomeIn, ServedRow
from copyloop.v1 import fusion_pb2, fusion_pb2_grpc

F = fusion_pb2
UNREACHABLE = "127.0.0.1:9"  # ListCreativePerformance and experiments need no dependency


@dataclass(frozen=True)
class Seed:
    creative_id: str
    segment: str
    impressions: int
    clicks: int
    p_ctr: float  # a binary fraction: sums of it are exact
    item_id: str = "sku-1"
    angle: str = "value"

    @property
    def expected(self) -> float:
        return self.impressions * self.p_ctr

    @property
    def lift(self) -> float:
        return shrunk_lift(self.clicks, self.expected)


TENANT_A = [
    Seed("cr_win", "deal_seeker", 80, 10, 0.0625, "sku-1", "value"),  # 20 / 15
    Seed("cr_rare", "deal_seeker", 2, 2, 0.125, "sku-2", "urgency"),  # 12 / 10.25: lucky
    # Four at exactly 1.0 (12/12, 11/11): ordered by creative id, then segment.
    Seed("cr_tie_b", "deal_seeker", 8, 1, 0.125, "sku-3", "gift"),
    Seed("cr_tie_a", "quality_seeker", 8, 1, 0.125, "sku-3", "quality"),
    Seed("cr_tie_a", "deal_seeker", 8, 1, 0.125, "sku-3", "quality"),
    Seed("cr_mid", "deal_seeker", 32, 2, 0.0625, "sku-4", "value"),
    Seed("cr_lose", "deal_seeker", 80, 0, 0.0625, "sku-5", "value"),  # 10 / 15
    # Fusion's own stand-ins are not pool creatives: never listed, however well they did.
    Seed("fallback:sku-9", "deal_seeker", 8, 8, 0.125, "sku-9", ""),
    Seed("gen:sku-9:0", "deal_seeker", 8, 8, 0.125, "sku-9", ""),
]
TENANT_B = [Seed("cr_other", "deal_seeker", 8, 8, 0.125, "b-sku", "value")]
ORDER_A = [
    ("cr_win", "deal_seeker"),
    ("cr_rare", "deal_seeker"),
    ("cr_mid", "deal_seeker"),
    ("cr_tie_a", "deal_seeker"),
    ("cr_tie_a", "quality_seeker"),
    ("cr_tie_b", "deal_seeker"),
    ("cr_lose", "deal_seeker"),
]


def seed(service: FusionService, tenant: str, seeds: list[Seed]) -> None:
    rows: list[ServedRow] = []
    events: list[OutcomeIn] = []
    for s in seeds:
        for n in range(s.impressions):
            row = ServedRow(
                impression_id=f"im_{s.creative_id}_{s.segment}_{n}",
                request_id=f"rq_{s.creative_id}_{s.segment}_{n}",
                user_id=f"u{n}",
                item_id=s.item_id,
                creative_id=s.creative_id,
                segment=s.segment,
                experiment_id="",
                arm_id="",
                p_ctr=s.p_ctr,
                p_cvr=0.05,
                price=20.0,
                copy_source="COPY_SOURCE_POOL",
                model_version="v1",
                serve_time=1_700_000_000.0 + n,
                features={},
                angle=s.angle,
            )
            rows.append(row)
            kinds = ["impression", "click"] if n < s.clicks else ["impression"]
            events += [
                OutcomeIn(
                    len(events) + k,
                    f"{row.impression_id}:{kind}",
                    row.request_id,
                    row.impression_id,
                    kind,
                    0.0,
                    1_700_000_000.0 + n,
                )
                for k, kind in enumerate(kinds)
            ]
    service.store.log_served(tenant, rows)
    applied, duplicate, rejected = service.store.apply_outcomes(tenant, events)
    assert (len(applied), duplicate, rejected) == (len(events), 0, [])


@pytest.fixture
async def fusion(database_url: str) -> AsyncIterator[FusionService]:
    service = await start_fusion_service(
        FusionSettings(
            port=0,
            database_url=database_url,
            api_keys=API_KEYS,
            profile_addr=UNREACHABLE,
            generation_addr=UNREACHABLE,
            prediction_addr=UNREACHABLE,
        )
    )
    seed(service, "tenant-a", TENANT_A)
    seed(service, "tenant-b", TENANT_B)
    try:
        yield service
    finally:
        await service.stop(0)


@pytest.fixture
async def stub(fusion: FusionService) -> AsyncIterator[fusion_pb2_grpc.FusionServiceStub]:
    async with grpc.aio.insecure_channel(fusion.address) as channel:
        yield fusion_pb2_grpc.FusionServiceStub(channel)


async def list_all(
    stub: fusion_pb2_grpc.FusionServiceStub, key: str = "", **request: object
) -> tuple[list[F.CreativePerformance], int]:
    """Every page of a listing: (creatives, number of pages)."""
    found: list[F.CreativePerformance] = []
    token, pages = "", 0
    while True:
        reply = await stub.ListCreativePerformance(
            F.ListCreativePerformanceRequest(page_token=token, **request),  # type: ignore[arg-type]
            metadata=auth(key) if key else auth(),
        )
        found += reply.creatives
        pages += 1
        token = reply.next_page_token
        if not token:
            return found, pages


async def test_best_shrunk_lift_first_with_counts_item_angle_and_interval(
    stub: fusion_pb2_grpc.FusionServiceStub,
) -> None:
    found, pages = await list_all(stub)
    assert [(c.creative_id, c.segment) for c in found] == ORDER_A
    assert pages == 1
    seeds = {(s.creative_id, s.segment): s for s in TENANT_A}
    for c in found:
        s = seeds[(c.creative_id, c.segment)]
        assert (c.item_id, c.angle, c.impressions, c.clicks) == (
            s.item_id,
            s.angle,
            s.impressions,
            s.clicks,
        )
        assert c.expected_clicks == pytest.approx(s.expected)
        assert c.lift == pytest.approx(s.lift)
        assert c.lift_interval.lower < c.lift < c.lift_interval.upper
    win = found[0]
    assert win.lift == pytest.approx(20 / 15)
    # The lucky creative (raw lift 8) is shrunk below the steady winner (raw lift 2).
    assert found[1].lift < win.lift


@pytest.mark.parametrize("page_size", [1, 2, 3])
async def test_pages_walk_the_whole_listing_once_across_ties(
    stub: fusion_pb2_grpc.FusionServiceStub, page_size: int
) -> None:
    found, pages = await list_all(stub, page_size=page_size)
    assert [(c.creative_id, c.segment) for c in found] == ORDER_A
    assert pages == -(-len(ORDER_A) // page_size)


async def test_min_impressions_and_segment_filter_and_bind_the_token(
    stub: fusion_pb2_grpc.FusionServiceStub,
) -> None:
    found, _ = await list_all(stub, min_impressions=10, page_size=1)
    assert [c.creative_id for c in found] == ["cr_win", "cr_mid", "cr_lose"]
    found, _ = await list_all(stub, segment="quality_seeker")
    assert [(c.creative_id, c.segment) for c in found] == [("cr_tie_a", "quality_seeker")]
    first = await stub.ListCreativePerformance(
        F.ListCreativePerformanceRequest(page_size=1, min_impressions=10), metadata=auth()
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListCreativePerformance(
            F.ListCreativePerformanceRequest(page_size=1, page_token=first.next_page_token),
            metadata=auth(),
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == {"page_token": "was issued for a different filter"}


async def test_each_tenant_sees_only_its_own_creatives(
    stub: fusion_pb2_grpc.FusionServiceStub,
) -> None:
    mine, _ = await list_all(stub)
    theirs, _ = await list_all(stub, key=OTHER_API_KEY)
    assert "cr_other" not in {c.creative_id for c in mine}
    assert [(c.creative_id, c.item_id) for c in theirs] == [("cr_other", "b-sku")]
    # A token from one tenant's listing pages the other tenant's own rows, never the first's.
    first = await stub.ListCreativePerformance(
        F.ListCreativePerformanceRequest(page_size=1), metadata=auth()
    )
    reply = await stub.ListCreativePerformance(
        F.ListCreativePerformanceRequest(page_size=1, page_token=first.next_page_token),
        metadata=auth(OTHER_API_KEY),
    )
    assert {c.creative_id for c in reply.creatives} <= {"cr_other"}


async def test_bad_requests_are_invalid_argument_naming_each_field(
    stub: fusion_pb2_grpc.FusionServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListCreativePerformance(
            F.ListCreativePerformanceRequest(
                page_size=1001, min_impressions=-5, page_token="not-a-token"
            ),
            metadata=auth(),
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(raised.value)) == {"page_size", "min_impressions", "page_token"}
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListCreativePerformance(
            F.ListCreativePerformanceRequest(segment="s" * 129), metadata=auth()
        )
    assert set(field_violations(raised.value)) == {"segment"}


# ---- experiment arms with versions ----------------------------------------------------------


def versioned_experiment(copywriter: str = "2") -> F.CreateExperimentRequest:
    return F.CreateExperimentRequest(
        experiment_id="copywriter-v2",
        display_name="copywriter 2 vs 1",
        arms=[
            F.Arm(
                arm_id="v1",
                strategy=F.ARM_STRATEGY_PERSONALISED_BANDIT,
                traffic_weight=1,
                copywriter_version="1",
            ),
            F.Arm(
                arm_id="v2",
                strategy=F.ARM_STRATEGY_PERSONALISED_BANDIT,
                traffic_weight=1,
                copywriter_version=copywriter,
                prompt_template_version="v2",
            ),
            F.Arm(arm_id="generic", strategy=F.ARM_STRATEGY_GENERIC_COPY, traffic_weight=1),
        ],
    )


async def test_arm_versions_are_stored_returned_and_part_of_the_experiments_identity(
    stub: fusion_pb2_grpc.FusionServiceStub,
) -> None:
    created = (await stub.CreateExperiment(versioned_experiment(), metadata=auth())).experiment
    want = [("v1", "1", ""), ("v2", "2", "v2"), ("generic", "", "")]
    versions = [(a.arm_id, a.copywriter_version, a.prompt_template_version) for a in created.arms]
    assert versions == want
    got = await stub.GetExperiment(
        F.GetExperimentRequest(experiment_id="copywriter-v2"), metadata=auth()
    )
    assert [
        (a.arm_id, a.copywriter_version, a.prompt_template_version) for a in got.experiment.arms
    ] == want
    listed = await stub.ListExperiments(F.ListExperimentsRequest(), metadata=auth())
    (only,) = listed.experiments
    assert [a.copywriter_version for a in only.arms] == ["1", "2", ""]
    # The same request again is the same experiment; another version under its id conflicts.
    again = await stub.CreateExperiment(versioned_experiment(), metadata=auth())
    assert again.experiment == created
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CreateExperiment(versioned_experiment("3"), metadata=auth())
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    # The other tenant does not see it.
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetExperiment(
            F.GetExperimentRequest(experiment_id="copywriter-v2"), metadata=auth(OTHER_API_KEY)
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_arm_versions_are_invalid_argument(
    stub: fusion_pb2_grpc.FusionServiceStub,
) -> None:
    request = versioned_experiment("two words")
    request.arms[2].prompt_template_version = "v2"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CreateExperiment(request, metadata=auth())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(raised.value)) == {
        "arms[1].copywriter_version",
        "arms[2].strategy",
    }
