"""End to end across all four services: Recommend and ReportOutcome feedback reach
PredictionService's training log through fusion's outbox relay, the outcomes trigger a
retraining nobody asked for, and the gate promotes the model, which then scores Recommend."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.e2e.test_platform import Clients, start_loaded
from tests.support.grpc_helpers import API_KEYS, auth

from copyloop.common.protoconv import epoch_to_ts
from copyloop.platform import Platform, PlatformConfig
from copyloop.v1 import common_pb2, fusion_pb2

F = fusion_pb2
THRESHOLD = 60  # clicks
# Clicks depend on the device, which per-item popularity cannot see and the model can.
CLICK_RATE = {common_pb2.DEVICE_MOBILE: 0.5, common_pb2.DEVICE_DESKTOP: 0.04}


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[Platform, Clients]]:
    p, clients = await start_loaded(
        PlatformConfig(
            var_dir=tmp_path,
            api_keys=API_KEYS,
            embedder="hashing",
            prediction_overrides={
                "min_train_impressions": 100,
                "min_train_clicks": 10,
                "min_train_conversions": 0,
                "min_eval_impressions": 30,
                "min_eval_clicks": 3,
                "auto_retrain_outcomes": THRESHOLD,
                "auto_retrain_check_s": 0.5,
                "auto_retrain_epochs": 8,  # tiny windows: enough passes to fit and calibrate
                # ECE over ~150 impressions in 15 bins is mostly sampling noise.
                "gate_ece_tolerance": 0.05,
            },
        )
    )
    try:
        yield p, clients
    finally:
        await clients.close()
        await p.stop(0)


async def test_feedback_reaches_the_training_log_and_a_triggered_retrain_promotes(
    platform,
) -> None:
    p, c = platform
    rng = random.Random(5)
    impressions: list[F.OutcomeEvent] = []
    clicks: list[F.OutcomeEvent] = []
    for n in range(180):
        device = common_pb2.DEVICE_MOBILE if n % 2 else common_pb2.DEVICE_DESKTOP
        reply = await c.fusion.Recommend(
            F.RecommendRequest(
                user_id=f"visitor-{n}",
                context=common_pb2.Context(
                    channel=common_pb2.CHANNEL_PUSH, locale="en-US", device=device
                ),
                n=4,
                latency_budget_ms=30_000,
            ),
            metadata=auth(),
        )
        shown = time.time()
        for rec in reply.recommendations:
            assert rec.model_version.startswith("prior")  # nothing trained yet
            impressions.append(
                F.OutcomeEvent(
                    event_id=f"imp-{rec.impression_id}",
                    request_id=reply.request_id,
                    impression_id=rec.impression_id,
                    type=F.FEEDBACK_TYPE_IMPRESSION,
                    event_time=epoch_to_ts(shown),
                )
            )
            if rng.random() < CLICK_RATE[device]:
                clicks.append(
                    F.OutcomeEvent(
                        event_id=f"clk-{rec.impression_id}",
                        request_id=reply.request_id,
                        impression_id=rec.impression_id,
                        type=F.FEEDBACK_TYPE_CLICK,
                        event_time=epoch_to_ts(shown + 1),
                    )
                )
    assert len(clicks) > THRESHOLD
    for events in (impressions, clicks):
        result = await c.fusion.ReportOutcome(
            F.ReportOutcomeRequest(events=events), metadata=auth()
        )
        assert result.rejected == 0
    assert await p.fusion.relay.settle(timeout_s=30)

    # The feedback is in the training log: every impression, each click joined to it.
    logged = [
        r
        for r in p.prediction.domain.store.labelled("tenant-a", 0, time.time() + 60)
        if r.impression.user_id.startswith("visitor-")
    ]
    assert len(logged) == len(impressions)
    assert sum(r.clicked for r in logged) == len(clicks)

    # Nobody calls RetrainModel: the outcomes trigger a training, which the gate promotes.
    auto = p.prediction.auto_retrain
    assert auto is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.prediction.domain.store.live("tenant-a") is None:
        await asyncio.sleep(0.5)
    live = p.prediction.domain.store.live("tenant-a")
    assert live is not None, auto.decisions
    # The promotion is visible before the loop has recorded its decision: wait for it too.
    while time.monotonic() < deadline + 30 and "tenant-a" not in auto.decisions:
        await asyncio.sleep(0.2)
    decision = auto.decisions["tenant-a"]
    assert decision.result == "promoted" and decision.version == live.version
    assert decision.reason.startswith("beats the cold-start prior: ok "), decision.reason
    assert "; and the popularity baseline: ok " in decision.reason
    assert "new outcomes" in decision.trigger
    assert live.metrics["auto_retrain"]["result"] == "promoted"

    # Recommend now scores with the promoted model.
    reply = await c.fusion.Recommend(
        F.RecommendRequest(
            user_id="visitor-0", context=fusion_ctx(), n=2, latency_budget_ms=30_000
        ),
        metadata=auth(),
    )
    assert {r.model_version for r in reply.recommendations} == {live.version}


def fusion_ctx() -> common_pb2.Context:
    return common_pb2.Context(
        channel=common_pb2.CHANNEL_PUSH, locale="en-US", device=common_pb2.DEVICE_MOBILE
    )
