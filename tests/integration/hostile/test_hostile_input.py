"""Every RPC of the four services, on SQLite and on PostgreSQL, against hostile input.

A property per RPC (hypothesis drives the fuzzer in fuzz.py): malformed, huge, negative, NaN,
unknown-enum, out-of-range-time and cross-tenant requests get only documented statuses (never
INTERNAL or UNKNOWN, never a hang: each call has a deadline), the services stay healthy, and
the victim tenant's data is neither seen (no reply carries its marker) nor changed.
"""

from __future__ import annotations

import base64
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc

# Imported now, not lazily mid-run: deeply nested hostile messages raise RecursionError in this
# process, and CPython 3.11.7 can then fail to compile a module imported later ("SystemError:
# AST constructor recursion depth mismatch", an interpreter bug); hypothesis imports its
# optimiser on first use, which made one parametrisation fail in CI.
import hypothesis.internal.conjecture.optimiser  # noqa: F401
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.integration.hostile.fuzz import (
    ACCEPTABLE,
    CTX,
    MARKER,
    Target,
    all_rpcs,
    hostile_request,
    item,
    ts,
)

from copyloop.common import pagination
from copyloop.v1 import common_pb2, fusion_pb2, generation_pb2, prediction_pb2, profile_pb2

SERVICES = ("profile", "generation", "prediction", "fusion")
EXAMPLES_PER_RPC = 30


class Attacked:
    """The platform under attack and the victim's data as it was before the attack."""

    def __init__(self, target: Target) -> None:
        self.target = target
        target.seed()
        self.baseline = target.victim_snapshot()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def attacked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Attacked]:
    """One platform per backend, shared by every RPC's property (starting four services and
    seeding two tenants per example would make the suite take many minutes)."""
    urls: dict[str, str] = {}
    created: list[str] = []
    admin_url = ""
    if request.param == "postgresql":
        admin_url = request.getfixturevalue("postgres_admin_url")
        for service in SERVICES:
            url, name = create_postgres_database(admin_url)
            urls[service] = url
            created.append(name)
    target = Target(Path(tmp_path_factory.mktemp(f"hostile-{request.param}")), urls)
    try:
        yield Attacked(target)
    finally:
        target.close()
        for name in created:
            drop_postgres_database(admin_url, name)


@pytest.mark.slow
@pytest.mark.parametrize("rpc", all_rpcs())
def test_rpc_answers_hostile_input_with_documented_statuses(attacked: Attacked, rpc: str) -> None:
    target = attacked.target
    answers: list[str] = []

    @settings(
        max_examples=EXAMPLES_PER_RPC,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(rnd=st.randoms(use_true_random=False))
    def attack(rnd: random.Random) -> None:
        request: Any = hostile_request(rpc, rnd, target.pools)
        result = target.call(rpc, request)
        answers.append(result.code.name)
        assert result.code in ACCEPTABLE, (
            f"{rpc} answered {result.code.name} ({result.detail}) to {request!s:.2000}"
        )
        assert MARKER.encode() not in result.reply, f"{rpc} leaked the victim's data"

    attack()
    assert target.healthy(), f"a service stopped answering its health check after {rpc}"
    assert target.victim_snapshot() == attacked.baseline, f"{rpc} changed the victim's data"
    # The property must have reached the service's logic, not only its door.
    assert "OK" in answers or rpc.split(".")[1] in NEVER_OK, f"{rpc} never succeeded: {answers}"


# RPCs whose plausible request cannot succeed here: no model was ever trained.
NEVER_OK = {"TrainModel", "RollbackModel", "PromoteModel", "GetModelVersion", "RetrainModel"}


# ---- the cases the probe found, one by one ---------------------------------------------------

P, PR, F, G = profile_pb2, prediction_pb2, fusion_pb2, generation_pb2
NOW_S = int(time.time())


def _token(after: object, query: object) -> str:
    payload = {"after": after, "q": pagination.query_hash(query)}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def _impression(**changes: Any) -> PR.LogImpressionsRequest:
    imp = PR.Impression(
        impression_id=f"known-{time.monotonic_ns()}",
        user_id="known-user",
        context=CTX,
        candidate=PR.ScoreCandidate(item=item("known-item")),
        served_p_ctr=0.1,
        impression_time=ts(NOW_S - 60),
    )
    for name, value in changes.items():
        setattr(imp, name, value)
    return PR.LogImpressionsRequest(impressions=[imp])


def _far_future_outcome() -> F.ReportOutcomeRequest:
    event = F.OutcomeEvent(
        event_id="known-late", request_id="r1", impression_id="i1", type=F.FEEDBACK_TYPE_CLICK
    )
    event.event_time.seconds = 253_402_300_800  # year 10000
    return F.ReportOutcomeRequest(events=[event])


def _negative_outcome_time() -> PR.LogOutcomesRequest:
    outcome = PR.Outcome(outcome_id="known-neg", impression_id="i1", type=PR.OUTCOME_TYPE_CLICK)
    outcome.outcome_time.seconds = -86_400
    return PR.LogOutcomesRequest(outcomes=[outcome])


# (rpc, request, the field the BadRequest must name)
INVALID_CASES: dict[str, tuple[str, Callable[[], Any], str]] = {
    "nul-in-title": (
        "profile.UpsertItems",
        lambda: P.UpsertItemsRequest(items=[item("known-1", "Shoe\x00")]),
        "items[0].title",
    ),
    "nul-in-attribute": (
        "profile.UpsertItems",
        lambda: P.UpsertItemsRequest(
            items=[common_pb2.Item(item_id="k2", title="t", attributes={"c": "r\x00"})]
        ),
        "items[0].attributes[c]",
    ),
    "absurd-item-price": (
        "profile.UpsertItems",
        lambda: P.UpsertItemsRequest(items=[item("known-3", price=1e308)]),
        "items[0].price",
    ),
    "long-user-id": (
        "profile.GetUserProfile",
        lambda: P.GetUserProfileRequest(user_id="u" * 129),
        "user_id",
    ),
    "long-reviewer": (
        "generation.ApproveCreative",
        lambda: G.ApproveCreativeRequest(creative_id="c1", reviewer="r" * 129),
        "reviewer",
    ),
    "long-segment": (
        "generation.Generate",
        lambda: G.GenerateRequest(
            item=item("known-4"),
            channel=common_pb2.CHANNEL_PUSH,
            locale="en-US",
            audience=G.Audience(segment="s" * 129),
        ),
        "audience.segment",
    ),
    "unknown-template-version": (
        "generation.Generate",
        lambda: G.GenerateRequest(
            item=item("known-5"),
            channel=common_pb2.CHANNEL_PUSH,
            locale="en-US",
            template_version="../v1",
        ),
        "template_version",
    ),
    "long-model-version": (
        "prediction.LogImpressions",
        lambda: _impression(model_version="m" * 65),
        "impressions[0].model_version",
    ),
    "nan-served-p-ctr": (
        "prediction.LogImpressions",
        lambda: _impression(served_p_ctr=math.nan),
        "impressions[0].served_p_ctr",
    ),
    "negative-outcome-time": (
        "prediction.LogOutcomes",
        _negative_outcome_time,
        "outcomes[0].outcome_time",
    ),
    "outcome-after-9999": ("fusion.ReportOutcome", _far_future_outcome, "events[0].event_time"),
    "nan-traffic-weight": (
        "fusion.CreateExperiment",
        lambda: F.CreateExperimentRequest(
            experiment_id="known-nan",
            arms=[
                F.Arm(arm_id="a", strategy=F.ARM_STRATEGY_GENERIC_COPY, traffic_weight=math.nan),
                F.Arm(arm_id="b", strategy=F.ARM_STRATEGY_GENERIC_COPY, traffic_weight=1),
            ],
        ),
        "arms[0].traffic_weight",
    ),
    "long-arm-copywriter-version": (
        "fusion.CreateExperiment",
        lambda: F.CreateExperimentRequest(
            experiment_id="known-version",
            arms=[
                F.Arm(
                    arm_id="a",
                    strategy=F.ARM_STRATEGY_PERSONALISED_BANDIT,
                    traffic_weight=1,
                    copywriter_version="9" * 65,
                ),
                F.Arm(arm_id="b", strategy=F.ARM_STRATEGY_GENERIC_COPY, traffic_weight=1),
            ],
        ),
        "arms[0].copywriter_version",
    ),
    "negative-min-impressions": (
        "fusion.ListCreativePerformance",
        lambda: F.ListCreativePerformanceRequest(min_impressions=-1),
        "min_impressions",
    ),
    "performance-token-with-a-forged-key": (
        "fusion.ListCreativePerformance",
        lambda: F.ListCreativePerformanceRequest(
            page_token=_token("exp-1", ["creative-performance", "", 1])
        ),
        "page_token",
    ),
    "unknown-channel-in-recommend": (
        "fusion.Recommend",
        lambda: F.RecommendRequest(
            user_id="u1", context=common_pb2.Context(channel=99, locale="en-US")
        ),
        "context.channel",
    ),
    "recommend-filter-beyond-max-price": (
        "fusion.Recommend",
        lambda: F.RecommendRequest(
            user_id="u1", context=CTX, filter=common_pb2.ItemFilter(max_price=1e9 + 1)
        ),
        "filter.max_price",
    ),
    "recommend-budget-below-a-round-trip": (
        "fusion.Recommend",
        lambda: F.RecommendRequest(user_id="u1", context=CTX, latency_budget_ms=7),
        "latency_budget_ms",
    ),
    "forged-numeric-page-token": (
        "prediction.ListModelVersions",
        lambda: PR.ListModelVersionsRequest(page_token=_token("9" * 40, "versions")),
        "page_token",
    ),
    "forged-unicode-digits-page-token": (
        "prediction.ListModelVersions",
        lambda: PR.ListModelVersionsRequest(page_token=_token("²³", "versions")),
        "page_token",
    ),
    "forged-nul-page-token": (
        "generation.ListCreatives",
        lambda: G.ListCreativesRequest(page_token=_token("\x00", {"item_id": "", "status": 0})),
        "page_token",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_CASES))
def test_known_hostile_request_is_invalid_argument_naming_its_field(
    attacked: Attacked, case: str
) -> None:
    rpc, build, field = INVALID_CASES[case]
    result = attacked.target.call(rpc, build())
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT, (result.code, result.detail)
    assert field in result.detail, result.detail


def test_bad_events_are_rejected_one_by_one_and_totals_stay_finite(attacked: Attacked) -> None:
    """Unknown channel, quantity 2^31, price 1e308, time past 9999 or before 1970: each such
    event is rejected alone; a purchase at the largest allowed price and quantity leaves a
    finite monetary total that scoring accepts."""
    target = attacked.target
    user = f"known-buyer-{time.monotonic_ns()}"
    expensive = item(f"known-lux-{time.monotonic_ns()}", price=1e9)
    expensive.list_price = 0
    assert target.call("profile.UpsertItems", P.UpsertItemsRequest(items=[expensive])).code == (
        grpc.StatusCode.OK
    )

    def purchase(n: int, **changes: Any) -> P.Event:
        ev = P.Event(
            event_id=f"{user}-{n}",
            user_id=user,
            type=P.EVENT_TYPE_PURCHASE,
            item_id=expensive.item_id,
            event_time=ts(NOW_S - 60),
            quantity=2**31 - 1,
            context=CTX,
        )
        for name, value in changes.items():
            if name == "seconds":
                ev.event_time.seconds = value
            elif name == "channel":
                ev.context.channel = value
            else:
                setattr(ev, name, value)
        return ev

    events = [
        purchase(0, channel=42),
        purchase(1, quantity=2**31),
        purchase(2, price=1e308),
        purchase(3, seconds=253_402_300_800),
        purchase(4, seconds=-5),
        purchase(5),
        purchase(6),
    ]
    result = target.call("profile.IngestEvents", P.IngestEventsRequest(events=events))
    assert result.code == grpc.StatusCode.OK, result.detail
    summary = P.IngestEventsResponse.FromString(result.reply).summary
    assert (summary.accepted, summary.rejected) == (2, 5)
    assert [r.field for r in summary.rejections] == [
        "context.channel",
        "quantity",
        "price",
        "event_time",
        "event_time",
    ]
    reply = target.call("profile.GetUserProfile", P.GetUserProfileRequest(user_id=user))
    profile = P.GetUserProfileResponse.FromString(reply.reply).profile
    assert math.isfinite(profile.monetary_total) and profile.purchase_count == 2
    scored = target.call(
        "prediction.Score",
        PR.ScoreRequest(
            user_id=user,
            profile=profile,
            context=CTX,
            candidates=[PR.ScoreCandidate(item=expensive)],
        ),
    )
    assert scored.code == grpc.StatusCode.OK, scored.detail
    recommended = target.call(
        "fusion.Recommend", F.RecommendRequest(user_id=user, context=CTX, n=2)
    )
    assert recommended.code == grpc.StatusCode.OK, recommended.detail
