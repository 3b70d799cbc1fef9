"""PredictionService over real gRPC and a real database: impressions logged with the serving
policy's propensity and the copies it did not choose are stored, weight training, and give the
trained version an off-policy estimate; bad propensities are INVALID_ARGUMENT."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from tests.integration.prediction.test_service import (
    DAY,
    START,
    log_requests,
    window,
)
from tests.support.grpc_helpers import auth, field_violations

from copyloop.demo.market import MarketConfig, SyntheticMarket, synthetic_items
from copyloop.v1 import prediction_pb2

P = prediction_pb2


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(synthetic_items(120, seed=3), MarketConfig(n_shoppers=300), seed=3)


def logged_with_policy(
    market: SyntheticMarket, n: int, prefix: str
) -> tuple[P.LogImpressionsRequest, P.LogOutcomesRequest, int]:
    """The market serves each item's copy uniformly among its variants: propensity
    1/variants, the other variants as alternatives. Every third impression is logged the old
    way (no propensity, no alternatives). Returns the requests and how many carry a policy."""
    examples = market.generate(n, start_time=START, duration_s=10 * DAY, seed=4).examples
    imps, outs = log_requests(examples, prefix)
    with_policy = 0
    for k, (imp, ex) in enumerate(zip(imps.impressions, examples, strict=True)):
        if k % 3 == 0:
            continue
        variants = market.copy_variants(ex.item.item_id)
        imp.propensity = 1.0 / len(variants)
        imp.alternatives.extend(
            P.CopyAlternative(creative_id=f"alt-{j}", copy_text=text)
            for j, text in enumerate(variants)
            if text != ex.copy.text
        )
        with_policy += 1
    return imps, outs, with_policy


async def test_propensities_train_and_give_an_off_policy_estimate(prediction, market) -> None:
    _, stub = prediction
    imps, outs, _ = logged_with_policy(market, 6000, "op")
    logged = await stub.LogImpressions(imps, metadata=auth())
    assert logged.accepted == 6000
    await stub.LogOutcomes(outs, metadata=auth())

    split = START + 8 * DAY
    trained = await stub.TrainModel(
        P.TrainModelRequest(
            train_window=window(START, split),
            eval_window=window(split, START + 10 * DAY),
            epochs=2,
            seed=7,
        ),
        metadata=auth(),
    )
    version = (
        await stub.GetModelVersion(
            P.GetModelVersionRequest(version=trained.model_version.version), metadata=auth()
        )
    ).model_version
    assert version.metrics.ctr.example_count > 0  # old and new rows both evaluated
    # The version's full metrics sit next to its report.
    folder = Path(version.report_uri).parent
    off_policy = json.loads((folder / "metrics.json").read_text())["off_policy"]
    eval_rows = version.metrics.ctr.example_count
    # Two of every three impressions carry a policy; the rest are excluded, not dropped.
    assert off_policy["n"] + off_policy["n_excluded"] == eval_rows
    assert off_policy["n"] == pytest.approx(eval_rows * 2 / 3, abs=2)
    for name in ("ips", "snips", "logging"):
        estimate = off_policy[name]
        assert 0 <= estimate["low"] <= estimate["value"] <= estimate["high"] <= 1
    assert 0 < off_policy["effective_sample_size"] <= off_policy["n"]
    assert "## Off-policy estimate" in Path(version.report_uri).read_text()
    # ... and GetModelVersion carries it beside the AUC.
    assert version.HasField("off_policy")
    assert version.off_policy.impressions == off_policy["n"]
    assert version.off_policy.snips.value == pytest.approx(off_policy["snips"]["value"])
    assert version.off_policy.snips.lower <= version.off_policy.snips.upper


async def test_bad_propensities_and_alternatives_are_invalid_argument(prediction, market) -> None:
    _, stub = prediction
    imps, _, _ = logged_with_policy(market, 6, "bad")
    imps.impressions[1].propensity = 1.5
    imps.impressions[2].propensity = -0.1
    imps.impressions[4].alternatives.extend(
        P.CopyAlternative(creative_id=f"x{j}", copy_text="more copy") for j in range(21)
    )
    imps.impressions[5].alternatives[0].copy_text = "x" * 2001
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.LogImpressions(imps, metadata=auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(err.value)
    assert {
        "impressions[1].propensity",
        "impressions[2].propensity",
        "impressions[4].alternatives",
        "impressions[5].alternatives[0].copy_text",
    } <= set(violations)
    assert not any(k.startswith(("impressions[0]", "impressions[3]")) for k in violations)

    nan = P.LogImpressionsRequest(impressions=[imps.impressions[0]])
    nan.impressions[0].propensity = float("nan")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.LogImpressions(nan, metadata=auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "impressions[0].propensity" in field_violations(err.value)

    # Nothing of the rejected batch was stored: the valid impressions log afresh.
    good = P.LogImpressionsRequest(impressions=[imps.impressions[0], imps.impressions[3]])
    assert (await stub.LogImpressions(good, metadata=auth())).accepted == 2
