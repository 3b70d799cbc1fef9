"""Score's message conversion: the candidate cache gives what a fresh conversion gives (and
never skips validating a bad candidate), and the reply encoded from the score arrays equals
the reply built message by message."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from copyloop.common.errors import InvalidArgument
from copyloop.demo.market import SyntheticMarket
from copyloop.prediction import messages
from copyloop.prediction.features.types import (
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    ScoreResult,
    UserFeatures,
)
from copyloop.prediction.model.version import ModelVersion
from copyloop.prediction.serving.cold_start import COLD_START_VERSION
from copyloop.prediction.serving.scorer import ScoreArrays, Scorer
from copyloop.v1 import common_pb2, prediction_pb2

P = prediction_pb2


def candidate(n: int, creative_id: str | None = None, text: str = "") -> P.ScoreCandidate:
    return P.ScoreCandidate(
        item=common_pb2.Item(
            item_id=f"sku-{n}",
            title=f"Item {n}",
            brand="Acme",
            category_path=["home", "lamps"],
            price=10.0 + n,
            list_price=20.0 + n,
            attributes={"color": "red"},
            selling_points=["bright"],
        ),
        creative_id=f"c{n}" if creative_id is None else creative_id,
        copy_text=text or f"Copy {n}: bright light for less",
        item_popularity=float(n),
    )


def request(candidates: list[P.ScoreCandidate], locale: str = "en-US") -> P.ScoreRequest:
    return P.ScoreRequest(
        user_id="u1",
        profile=common_pb2.UserProfile(
            user_id="u1",
            segments=["deal_seeker"],
            category_affinities=[common_pb2.AffinityScore(key="home", share=0.7)],
            event_count=3,
            frequency_30d=3,
        ),
        context=common_pb2.Context(channel=common_pb2.CHANNEL_PUSH, locale=locale),
        candidates=candidates,
    )


def built_field_by_field(
    req: P.ScoreRequest, results: list[ScoreResult], version: str, is_prior: bool
) -> P.ScoreResponse:
    """The reply as Score built it before it was encoded from arrays."""
    reply = P.ScoreResponse(
        model_version=COLD_START_VERSION if is_prior else version,
        mode=P.SCORING_MODE_PRIOR if is_prior else P.SCORING_MODE_MODEL,
    )
    for c, r in zip(req.candidates, results, strict=True):
        reply.scores.add(
            item_id=c.item.item_id,
            creative_id=c.creative_id,
            p_ctr=r.p_ctr,
            p_cvr=r.p_cvr,
            p_ctcvr=r.p_ctcvr,
            copy_quality=0.5 if r.copy_quality is None else r.copy_quality,
            top_features=[
                P.FeatureContribution(feature=n, contribution=v) for n, v in r.top_features
            ],
        )
    return reply


def test_cached_conversion_equals_a_fresh_one_and_reuses_it() -> None:
    cache = messages.CandidateCache()
    req = request([candidate(n) for n in range(5)])
    fresh = messages.score_inputs(req, 100)
    first = messages.score_inputs(req, 100, cache)
    second = messages.score_inputs(P.ScoreRequest.FromString(req.SerializeToString()), 100, cache)
    assert fresh == first == second
    assert fresh.candidates == [messages.candidate_features(c, "en-US") for c in req.candidates]
    assert fresh.user == messages.user_features("u1", req.profile)
    assert all(a is b for a, b in zip(first.candidates, second.candidates, strict=True))
    # The same candidate bytes under another locale are another copy.
    other = messages.score_inputs(request([candidate(0)], "zh-CN"), 100, cache)
    assert other.candidates[0][1].locale == "zh-CN"
    assert other.candidates[0][0] == first.candidates[0][0]


def test_a_bad_candidate_is_never_cached_and_named_where_it_is() -> None:
    cache = messages.CandidateCache()
    bad = candidate(1, text="nul \x00 inside")
    bad.item.price = -1.0
    for req, at in ((request([candidate(0), bad]), 1), (request([bad, candidate(0)]), 0)):
        with pytest.raises(InvalidArgument) as err:
            messages.score_inputs(req, 100, cache)
        fields = {v.field for v in err.value.violations}
        assert fields == {f"candidates[{at}].item.price", f"candidates[{at}].copy_text"}
    assert messages.score_inputs(request([candidate(0)]), 100, cache).candidates


def test_request_level_checks_still_apply() -> None:
    cache = messages.CandidateCache()
    req = request([candidate(0)])
    req.user_id = ""
    req.context.channel = common_pb2.CHANNEL_UNSPECIFIED
    with pytest.raises(InvalidArgument) as err:
        messages.score_inputs(req, 100, cache)
    assert {v.field for v in err.value.violations} == {
        "user_id",
        "profile.user_id",
        "context.channel",
    }
    with pytest.raises(InvalidArgument) as err:
        messages.score_inputs(request([candidate(n) for n in range(3)]), 2, cache)
    assert [v.field for v in err.value.violations] == ["candidates"]
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_full_cache_starts_afresh_with_the_same_results() -> None:
    cache = messages.CandidateCache(capacity=3)
    req = request([candidate(n) for n in range(5)])
    expected = messages.score_inputs(req, 100)
    for _ in range(3):
        assert messages.score_inputs(req, 100, cache) == expected


@pytest.mark.parametrize("k", [0, 1, 3])
def test_the_encoded_reply_equals_the_one_built_message_by_message(k: int) -> None:
    rng = np.random.default_rng(k)
    n = 40
    candidates = [
        candidate(i, creative_id="" if i % 7 == 0 else "c" * (i * 3), text=f"t{i}")
        for i in range(n)
    ]
    candidates[3].item.item_id = "é" * 100  # a long id: two-byte lengths
    req = request(candidates)
    names = ["user_segment", "copy_ünïcode", "x" * 150, "discount"]
    scores = ScoreArrays(
        rng.random(n),
        rng.random(n),
        rng.random(n),
        [None if i % 3 == 0 else float(rng.random()) for i in range(n)],
        rng.integers(0, len(names), (n, k)),
        rng.normal(size=(n, k)).round(6),
        names,
        "v7",
        is_prior=False,
    )
    scores.p_ctr[5] = 0.0  # a default value: left out by the serialiser, equal when parsed
    inputs = messages.score_inputs(req, 100)
    encoded = messages.score_reply(inputs.prefixes, scores)
    assert encoded == built_field_by_field(req, scores.results(), "v7", False)
    assert [len(s.top_features) for s in encoded.scores] == [k] * n


def test_the_prior_reply_says_so() -> None:
    req = request([candidate(n) for n in range(4)])
    scores = Scorer(None).score_arrays(*_domain(req))
    encoded = messages.score_reply(messages.score_inputs(req, 100).prefixes, scores)
    assert encoded == built_field_by_field(req, scores.results(), COLD_START_VERSION, True)
    assert encoded.mode == P.SCORING_MODE_PRIOR and encoded.model_version == COLD_START_VERSION


def test_a_trained_models_reply_equals_the_one_built_from_its_results(
    trained: ModelVersion, market: SyntheticMarket
) -> None:
    items = [market.item_features(i) for i in market.item_ids[:30]]
    req = request(
        [
            P.ScoreCandidate(
                item=common_pb2.Item(
                    item_id=item.item_id,
                    brand=item.brand,
                    category_path=list(item.category_path),
                    price=item.price,
                    list_price=item.list_price,
                ),
                creative_id=f"c{n}",
                copy_text=market.copy_variants(item.item_id)[n % 3],
                item_popularity=item.popularity,
            )
            for n, item in enumerate(items)
        ]
    )
    scorer = Scorer(trained, top_k=3)
    inputs = messages.score_inputs(req, 100)
    scores = scorer.score_arrays(inputs.user, inputs.context, inputs.candidates, 3)
    results = scorer.score(inputs.user, inputs.context, inputs.candidates, 3)
    encoded = messages.score_reply(inputs.prefixes, scores)
    assert encoded == built_field_by_field(req, results, trained.version_id, False)
    assert all(len(s.top_features) == 3 for s in encoded.scores)


def _domain(
    req: P.ScoreRequest,
) -> tuple[UserFeatures, ContextFeatures, list[tuple[ItemFeatures, CopyFeatures]]]:
    inputs = messages.score_inputs(req, 100)
    return inputs.user, inputs.context, inputs.candidates
