"""PredictionService over real gRPC and a real database: training log, training on a time window,
evaluation on a later one, promotion, restart survival, rollback, scoring and bad input."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from tests.support.grpc_helpers import API_KEYS, OTHER_API_KEY, auth, detail, field_violations

from copyloop.common.protoconv import epoch_to_ts
from copyloop.demo.market import MarketConfig, SyntheticMarket, synthetic_items
from copyloop.prediction.features.types import TrainingExample, UserFeatures
from copyloop.prediction.main import start_prediction_service
from copyloop.prediction.settings import PredictionSettings
from copyloop.v1 import common_pb2, prediction_pb2, prediction_pb2_grpc

P = prediction_pb2
START = 1_760_000_000.0
DAY = 86_400.0
CHANNEL = {
    v: k
    for k, v in {
        common_pb2.CHANNEL_AD_COPY: "ad_copy",
        common_pb2.CHANNEL_PUSH: "push",
        common_pb2.CHANNEL_SMS: "sms",
        common_pb2.CHANNEL_EMAIL_SUBJECT: "email_subject",
        common_pb2.CHANNEL_SOCIAL_POST: "social_post",
        common_pb2.CHANNEL_PROMO_BANNER: "promo_banner",
        common_pb2.CHANNEL_PRODUCT_DESCRIPTION: "product_description",
    }.items()
}
DEVICE = {
    "mobile": common_pb2.DEVICE_MOBILE,
    "desktop": common_pb2.DEVICE_DESKTOP,
    "tablet": common_pb2.DEVICE_TABLET,
    "app": common_pb2.DEVICE_APP,
    "": 0,
}
BAND = {"": 0, "budget": 1, "mid": 2, "premium": 3, "luxury": 4}


def profile_proto(u: UserFeatures) -> common_pb2.UserProfile:
    return common_pb2.UserProfile(
        user_id=u.user_id,
        cold_start=u.cold_start,
        segments=list(u.segments),
        category_affinities=[
            common_pb2.AffinityScore(key=k, score=v, share=v)
            for k, v in u.category_affinity.items()
        ],
        brand_affinities=[
            common_pb2.AffinityScore(key=k, score=v, share=v) for k, v in u.brand_affinity.items()
        ],
        price_band=BAND[u.price_band],
        frequency_30d=u.events_30d,
        recency_days=u.recency_days,
        monetary_total=u.monetary,
        event_count=0 if u.cold_start else max(1, u.events_30d),
    )


def candidate(ex: TrainingExample) -> P.ScoreCandidate:
    i = ex.item
    return P.ScoreCandidate(
        item=common_pb2.Item(
            item_id=i.item_id,
            title=i.item_id,
            brand=i.brand,
            category_path=list(i.category_path),
            price=i.price,
            list_price=i.list_price,
        ),
        creative_id=ex.copy.creative_id,
        copy_text=ex.copy.text,
        item_popularity=i.popularity,
    )


def context(ex: TrainingExample) -> common_pb2.Context:
    t = (
        ex.timestamp
        - ex.timestamp % 3600
        + ex.context.hour * 3600
        - (ex.timestamp % DAY // 3600) * 3600
    )
    return common_pb2.Context(
        channel=CHANNEL[ex.context.channel],
        locale=ex.context.locale,
        device=DEVICE[ex.context.device],
        request_time=epoch_to_ts(t),
    )


def log_requests(
    examples: list[TrainingExample], prefix: str
) -> tuple[P.LogImpressionsRequest, P.LogOutcomesRequest]:
    imps, outs = [], []
    for n, ex in enumerate(examples):
        iid = f"{prefix}-{n}"
        imps.append(
            P.Impression(
                impression_id=iid,
                user_id=ex.user.user_id,
                profile=profile_proto(ex.user),
                context=context(ex),
                candidate=candidate(ex),
                impression_time=epoch_to_ts(ex.timestamp),
            )
        )
        if ex.clicked:
            outs.append(
                P.Outcome(
                    outcome_id=f"{iid}-c",
                    impression_id=iid,
                    type=P.OUTCOME_TYPE_CLICK,
                    outcome_time=epoch_to_ts(ex.timestamp + 5),
                )
            )
        if ex.clicked and ex.converted:
            outs.append(
                P.Outcome(
                    outcome_id=f"{iid}-p",
                    impression_id=iid,
                    type=P.OUTCOME_TYPE_PURCHASE,
                    value=20.0,
                    outcome_time=epoch_to_ts(ex.timestamp + 60),
                )
            )
    return P.LogImpressionsRequest(impressions=imps), P.LogOutcomesRequest(outcomes=outs)


def shuffled_labels(examples: list[TrainingExample], start: float) -> list[TrainingExample]:
    """The same impressions moved to begin at `start`, each with another one's outcome: the
    click rate is kept, every relation between features and outcomes is gone."""
    order = np.random.default_rng(11).permutation(len(examples))
    shift = start - examples[0].timestamp
    return [
        replace(
            ex,
            timestamp=ex.timestamp + shift,
            clicked=examples[j].clicked,
            converted=examples[j].converted,
        )
        for ex, j in zip(examples, order, strict=True)
    ]


def window(a: float, b: float) -> P.TimeWindow:
    return P.TimeWindow(start_time=epoch_to_ts(a), end_time=epoch_to_ts(b))


@pytest.fixture(scope="module")
def market_log() -> list[TrainingExample]:
    market = SyntheticMarket(synthetic_items(120, seed=3), MarketConfig(n_shoppers=300), seed=3)
    return market.generate(6000, start_time=START, duration_s=10 * DAY, seed=4).examples


def settings_for(database_url: str, root: Path) -> PredictionSettings:
    return PredictionSettings(
        port=0,
        database_url=database_url,
        api_keys=API_KEYS,
        model_root=str(root),
        embedder="hashing",
        min_train_impressions=500,
        min_train_clicks=20,
        min_train_conversions=3,
        min_eval_impressions=100,
        min_eval_clicks=5,
        # Trainings here are asked for; tests/integration/prediction/test_auto_retrain.py
        # covers the trigger and the guardrail.
        auto_retrain_outcomes=0,
        guardrail_min_impressions=0,
    )


def score_request(examples: list[TrainingExample]) -> P.ScoreRequest:
    first = examples[0]
    return P.ScoreRequest(
        user_id=first.user.user_id,
        profile=profile_proto(first.user),
        context=context(first),
        candidates=[candidate(e) for e in examples],
        explanation_count=2,
    )


async def test_cold_start_scores_with_the_prior_and_says_so(prediction, market_log) -> None:
    _, stub = prediction
    reply = await stub.Score(score_request(market_log[:20]), metadata=auth())
    assert reply.mode == P.SCORING_MODE_PRIOR and reply.model_version.startswith("prior")
    assert len(reply.scores) == 20 and all(0 < s.p_ctr < 1 for s in reply.scores)
    assert all(s.p_ctcvr == pytest.approx(s.p_ctr * s.p_cvr) for s in reply.scores)


async def test_train_evaluate_promote_survives_restart_and_rolls_back(
    prediction, market_log, database_url, tmp_path
) -> None:
    service, stub = prediction
    imps, outs = log_requests(market_log, "m")
    logged = await stub.LogImpressions(imps, metadata=auth())
    assert (logged.accepted, logged.duplicate) == (6000, 0)
    again = await stub.LogImpressions(
        P.LogImpressionsRequest(impressions=imps.impressions[:10]), metadata=auth()
    )
    assert (again.accepted, again.duplicate) == (0, 10)
    out = await stub.LogOutcomes(outs, metadata=auth())
    assert out.accepted == len(outs.outcomes) and out.unmatched == 0
    orphan = await stub.LogOutcomes(
        P.LogOutcomesRequest(
            outcomes=[P.Outcome(outcome_id="x", impression_id="nope", type=P.OUTCOME_TYPE_CLICK)]
        ),
        metadata=auth(),
    )
    assert orphan.unmatched == 1

    split = START + 8 * DAY
    train_request = P.TrainModelRequest(
        train_window=window(START, split),
        eval_window=window(split, START + 10 * DAY),
        epochs=4,
        seed=7,
        idempotency_key="train-1",
    )
    first = await stub.TrainModel(train_request, metadata=auth())
    v1 = first.model_version
    assert (
        not first.promoted and v1.version == "v1" and v1.state == P.MODEL_VERSION_STATE_REGISTERED
    )
    assert v1.metrics.ctr.auc > 0.6 and v1.metrics.ctr.example_count > 0
    assert v1.metrics.ctr.auc > v1.prior_baseline_metrics.ctr.auc
    assert 0 <= v1.metrics.ctr.ece < 0.05
    assert Path(v1.report_uri).exists() and (Path(v1.report_uri).parent / "roc.png").exists()
    replay = await stub.TrainModel(train_request, metadata=auth())
    assert replay.model_version.version == "v1"  # the retry did not train again
    # The first model must pass the gate against the cold-start prior it replaces (scored on
    # the same window) and the popularity baseline fit on its training window: it learned from
    # the profile and the copy, popularity only from the item.
    gated = await stub.PromoteModel(P.PromoteModelRequest(version="v1"), metadata=auth())
    assert gated.promoted, gated.reason
    assert gated.reason.startswith("beats the cold-start prior: ok "), gated.reason
    assert "; and the popularity baseline: ok " in gated.reason, gated.reason
    assert "FAIL" not in gated.reason

    request = score_request(market_log[-50:])
    scored = await stub.Score(request, metadata=auth())
    assert scored.mode == P.SCORING_MODE_MODEL and scored.model_version == "v1"
    assert all(len(s.top_features) == 2 for s in scored.scores)
    assert scored == await stub.Score(request, metadata=auth())  # deterministic
    # Without the attribution pass: the same scores, no top features.
    omitted = P.ScoreRequest()
    omitted.CopyFrom(request)
    omitted.explanation_count, omitted.omit_explanations = 0, True
    bare = await stub.Score(omitted, metadata=auth())
    assert [s.p_ctr for s in bare.scores] == pytest.approx([s.p_ctr for s in scored.scores])
    assert [s.p_cvr for s in bare.scores] == pytest.approx([s.p_cvr for s in scored.scores])
    assert not any(s.top_features for s in bare.scores)

    # A model trained on the same impressions with their outcomes shuffled among them knows
    # nothing: on v1's evaluation window the gate refuses it, naming the rules it failed.
    shuffled = shuffled_labels(market_log[: int(len(market_log) * 0.8)], START - 10 * DAY)
    imps, outs = log_requests(shuffled, "shuffled")
    await stub.LogImpressions(imps, metadata=auth())
    await stub.LogOutcomes(outs, metadata=auth())
    second = await stub.TrainModel(
        P.TrainModelRequest(
            train_window=window(START - 10 * DAY, START - 2 * DAY),
            eval_window=window(split, START + 10 * DAY),
            epochs=1,
            seed=8,
            promote_if_better=True,
        ),
        metadata=auth(),
    )
    assert second.model_version.version == "v2" and not second.promoted
    assert second.reason.startswith("not better than live v1: FAIL"), second.reason
    refused = await stub.PromoteModel(P.PromoteModelRequest(version="v2"), metadata=auth())
    assert not refused.promoted
    assert refused.reason.startswith("not better than live v1: FAIL auc_not_worse:"), refused.reason
    live = await stub.GetModelVersion(P.GetModelVersionRequest(version="live"), metadata=auth())
    assert live.model_version.version == "v1"
    assert (await stub.Score(request, metadata=auth())) == scored
    forced = await stub.PromoteModel(
        P.PromoteModelRequest(version="v2", force=True), metadata=auth()
    )
    assert forced.promoted and forced.model_version.state == P.MODEL_VERSION_STATE_LIVE
    assert (await stub.Score(request, metadata=auth())).model_version == "v2"  # hot-swapped

    # Restart on the same database and model root: the promoted model is still live.
    await service.stop(0)
    restarted = await start_prediction_service(settings_for(database_url, tmp_path / "models"))
    try:
        channel = grpc.aio.insecure_channel(restarted.address)
        stub2 = prediction_pb2_grpc.PredictionServiceStub(channel)
        after = await stub2.Score(request, metadata=auth())
        assert after.model_version == "v2" and after.mode == P.SCORING_MODE_MODEL
        rolled = await stub2.RollbackModel(P.RollbackModelRequest(), metadata=auth())
        assert rolled.model_version.version == "v1"
        assert (await stub2.Score(request, metadata=auth())).scores == scored.scores
        versions = await stub2.ListModelVersions(
            P.ListModelVersionsRequest(page_size=1), metadata=auth()
        )
        assert [v.version for v in versions.model_versions] == ["v2"] and versions.next_page_token
        # Another tenant sees none of it.
        other = await stub2.Score(request, metadata=auth(OTHER_API_KEY))
        assert other.mode == P.SCORING_MODE_PRIOR
        await channel.close()
    finally:
        await restarted.stop(0)


async def test_a_first_model_that_learned_nothing_does_not_replace_the_cold_start_prior(
    prediction, market_log
) -> None:
    """Nothing is live, so the cold-start prior serves. A first model trained on outcomes
    shuffled among their impressions knows nothing; on a real later window the prior's category
    affinity ranks better, so the gate keeps the prior, naming it."""
    _, stub = prediction
    shuffled = shuffled_labels(market_log[: int(len(market_log) * 0.8)], START - 10 * DAY)
    for examples, prefix in ((shuffled, "shuffled"), (market_log, "real")):
        imps, outs = log_requests(examples, prefix)
        await stub.LogImpressions(imps, metadata=auth())
        await stub.LogOutcomes(outs, metadata=auth())
    trained = await stub.TrainModel(
        P.TrainModelRequest(
            train_window=window(START - 10 * DAY, START - 2 * DAY),
            eval_window=window(START + 8 * DAY, START + 10 * DAY),
            epochs=2,
            seed=8,
            promote_if_better=True,
        ),
        metadata=auth(),
    )
    assert not trained.promoted
    assert trained.reason.startswith("not better than the cold-start prior: FAIL"), trained.reason
    reply = await stub.Score(score_request(market_log[-20:]), metadata=auth())
    assert reply.mode == P.SCORING_MODE_PRIOR


async def test_too_little_data_fails_with_failed_precondition(prediction, market_log) -> None:
    _, stub = prediction
    imps, outs = log_requests(market_log[:200], "small")
    await stub.LogImpressions(imps, metadata=auth())
    await stub.LogOutcomes(outs, metadata=auth())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.TrainModel(
            P.TrainModelRequest(
                train_window=window(START, START + 5 * DAY),
                eval_window=window(START + 5 * DAY, START + 10 * DAY),
            ),
            metadata=auth(),
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "insufficient data" in err.value.details()
    assert detail(err.value, error_details_pb2.PreconditionFailure) is not None
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RollbackModel(P.RollbackModelRequest(), metadata=auth())
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetModelVersion(P.GetModelVersionRequest(version="v99"), metadata=auth())
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_score_requests_get_field_violations(prediction, market_log) -> None:
    _, stub = prediction
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Score(
            P.ScoreRequest(
                user_id="u", context=common_pb2.Context(channel=common_pb2.CHANNEL_PUSH)
            ),
            metadata=auth(),
        )
    assert field_violations(err.value) == {"candidates": "1 to 5000 candidates required"}
    bad = score_request(market_log[:3])
    bad.user_id = ""
    bad.candidates[1].item.price = -5
    bad.candidates[2].item_popularity = float("nan")
    bad.context.channel = 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Score(bad, metadata=auth())
    assert set(field_violations(err.value)) == {
        "user_id",
        "profile.user_id",
        "candidates[1].item.price",
        "candidates[2].item_popularity",
        "context.channel",
    }
    both = score_request(market_log[:3])  # explanation_count 2 and none at all
    both.omit_explanations = True
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Score(both, metadata=auth())
    assert set(field_violations(err.value)) == {"explanation_count"}
    big = score_request(market_log[:1])
    big.candidates.extend([big.candidates[0]] * 5000)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Score(big, metadata=auth())
    assert "candidates" in field_violations(err.value)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.TrainModel(
            P.TrainModelRequest(
                train_window=window(START + DAY, START), eval_window=window(START, START + DAY)
            ),
            metadata=auth(),
        )
    assert "train_window.end_time" in field_violations(err.value)
