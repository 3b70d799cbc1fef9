"""PredictionService retrains on its own over real gRPC and a real database: below the outcome
threshold nothing happens, past it a model is trained on the log, judged on its newest slice
and promoted; a live model whose served pCTR misses the observed clicks is rolled back by the
guardrail, and the reason is kept with the version."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from tests.integration.prediction.test_service import (
    DAY,
    START,
    log_requests,
    settings_for,
    window,
)
from tests.support.grpc_helpers import auth

from copyloop.common.protoconv import epoch_to_ts
from copyloop.demo.market import MarketConfig, SyntheticMarket, synthetic_items
from copyloop.prediction.features.types import TrainingExample
from copyloop.prediction.main import PredictionService, start_prediction_service
from copyloop.v1 import prediction_pb2, prediction_pb2_grpc

P = prediction_pb2
THRESHOLD = 300  # outcomes


@pytest.fixture(scope="module")
def market_log() -> list[TrainingExample]:
    market = SyntheticMarket(synthetic_items(120, seed=3), MarketConfig(n_shoppers=300), seed=3)
    return market.generate(6000, start_time=START, duration_s=10 * DAY, seed=4).examples


@pytest.fixture
async def prediction(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[PredictionService, prediction_pb2_grpc.PredictionServiceStub]]:
    settings = settings_for(database_url, tmp_path / "models").model_copy(
        update={
            "auto_retrain_outcomes": THRESHOLD,
            "auto_retrain_check_s": 0.3,
            "auto_retrain_epochs": 2,
            "guardrail_min_impressions": 400,
        }
    )
    service = await start_prediction_service(settings)
    channel = grpc.aio.insecure_channel(service.address)
    try:
        yield service, prediction_pb2_grpc.PredictionServiceStub(channel)
    finally:
        await channel.close()
        await service.stop(0)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


async def live_version(stub: prediction_pb2_grpc.PredictionServiceStub) -> str:
    try:
        reply = await stub.GetModelVersion(
            P.GetModelVersionRequest(version="live"), metadata=auth()
        )
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        return ""
    return str(reply.model_version.version)


async def test_outcomes_trigger_a_retrain_that_promotes_and_the_guardrail_rolls_back(
    prediction, market_log
) -> None:
    service, stub = prediction
    auto = service.auto_retrain
    assert auto is not None
    imps, outs = log_requests(market_log, "m")
    await stub.LogImpressions(imps, metadata=auth())
    # Fewer outcomes than the threshold: several checks pass and nothing is trained.
    few = list(outs.outcomes)[: THRESHOLD - 1]
    await stub.LogOutcomes(P.LogOutcomesRequest(outcomes=few), metadata=auth())
    await asyncio.sleep(1.5)
    assert auto.decisions == {}
    listed = await stub.ListModelVersions(P.ListModelVersionsRequest(), metadata=auth())
    assert not listed.model_versions

    # The rest arrive: the trigger fires on its own, trains on the log but its newest fifth,
    # and the gate promotes the model against the cold-start prior and popularity on that fifth.
    rest = list(outs.outcomes)[THRESHOLD - 1 :]
    await stub.LogOutcomes(P.LogOutcomesRequest(outcomes=rest), metadata=auth())
    assert await eventually(lambda: _is(live_version(stub), "v1"), timeout_s=180)
    # The promotion is visible before the loop has recorded its decision: wait for both.
    assert await eventually(lambda: _recorded(auto.decisions), timeout_s=30)
    [(tenant, decision)] = auto.decisions.items()
    assert decision.result == "promoted" and decision.version == "v1"
    assert decision.trigger.endswith(f"new outcomes (threshold {THRESHOLD})")
    assert decision.reason.startswith("beats the cold-start prior: ok ")
    assert "; and the popularity baseline: ok " in decision.reason
    assert decision.train_window[1] == decision.eval_window[0]
    assert decision.train_window[0] == market_log[0].timestamp
    assert decision.eval_window[1] > market_log[-1].timestamp
    evaluated = sum(decision.eval_window[0] <= e.timestamp for e in market_log)
    assert evaluated == pytest.approx(0.2 * len(market_log), abs=2)
    v1 = service.domain.store.get(tenant, "v1")
    assert v1.metrics["auto_retrain"]["result"] == "promoted"
    # No new outcomes since v1's evaluation window: no second training.
    await asyncio.sleep(1.0)
    listed = await stub.ListModelVersions(P.ListModelVersionsRequest(), metadata=auth())
    assert len(listed.model_versions) == 1

    # A second version made live by hand, whose served pCTR promised far more clicks than
    # came: the guardrail rolls it back once enough of its impressions are in.
    trained = await stub.TrainModel(
        P.TrainModelRequest(
            train_window=window(START, START + 8 * DAY),
            eval_window=window(START + 8 * DAY, START + 10 * DAY),
            epochs=1,
            seed=3,
        ),
        metadata=auth(),
    )
    assert trained.model_version.version == "v2"
    forced = await stub.PromoteModel(
        P.PromoteModelRequest(version="v2", force=True), metadata=auth()
    )
    assert forced.promoted
    served = [
        P.Impression(
            impression_id=f"served-{n}",
            user_id=market_log[n].user.user_id,
            profile=imps.impressions[n].profile,
            context=imps.impressions[n].context,
            candidate=imps.impressions[n].candidate,
            served_p_ctr=0.3,
            model_version="v2",
            # Older than v1's evaluation window's end: no new data for the trigger.
            impression_time=epoch_to_ts(START + 10 * DAY - 1000 + n * 0.1),
        )
        for n in range(500)
    ]
    clicks = [
        P.Outcome(
            outcome_id=f"served-{n}-c",
            impression_id=f"served-{n}",
            type=P.OUTCOME_TYPE_CLICK,
            outcome_time=epoch_to_ts(START + 10 * DAY - 900 + n * 0.1),
        )
        for n in range(0, 500, 50)  # 10 clicks where 150 were predicted
    ]
    await stub.LogImpressions(P.LogImpressionsRequest(impressions=served[:300]), metadata=auth())
    await asyncio.sleep(1.0)  # 300 < 400 impressions: not judged yet
    assert await live_version(stub) == "v2" and not auto.guardrail[tenant].judged
    # The clicks first (kept until their impressions arrive), so the check that sees 500
    # impressions sees their clicks too.
    await stub.LogOutcomes(P.LogOutcomesRequest(outcomes=clicks), metadata=auth())
    await stub.LogImpressions(P.LogImpressionsRequest(impressions=served[300:]), metadata=auth())
    assert await eventually(lambda: _is(live_version(stub), "v1"), timeout_s=30)
    # The rollback is visible before the loop has written its record on v2: wait for both.
    assert await eventually(lambda: _has_guardrail(service, tenant, "v2"), timeout_s=30)
    check = auto.guardrail[tenant]
    assert check.rollback and check.impressions == 500 and check.observed_clicks == 10
    assert check.expected_clicks == pytest.approx(150)
    kept = service.domain.store.get(tenant, "v2").metrics["guardrail"]
    assert kept["rolled_back_to"] == "v1" and kept["reason"].startswith("miscalibrated")
    # The restored version is what scores now.
    request = P.ScoreRequest(
        user_id=market_log[0].user.user_id,
        profile=imps.impressions[0].profile,
        context=imps.impressions[0].context,
        candidates=[imps.impressions[0].candidate],
    )
    assert (await stub.Score(request, metadata=auth())).model_version == "v1"


async def _is(value: Awaitable[str], expected: str) -> bool:
    return await value == expected


async def _has_guardrail(service: PredictionService, tenant: str, version: str) -> bool:
    return "guardrail" in service.domain.store.get(tenant, version).metrics


async def _recorded(decisions: dict[str, object]) -> bool:
    return bool(decisions)
