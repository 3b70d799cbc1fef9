"""PredictionService gRPC servicer: validates, converts, calls the domain."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import replace

import grpc

from copyloop.common import pagination, validation
from copyloop.common.errors import Violations
from copyloop.common.idempotency import validate_key
from copyloop.prediction import messages
from copyloop.prediction.domain import PredictionDomain
from copyloop.prediction.features.types import (
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    ScoreResult,
    UserFeatures,
)
from copyloop.prediction.serving.cold_start import COLD_START_VERSION
from copyloop.v1 import prediction_pb2, prediction_pb2_grpc

P = prediction_pb2
VERSION_KEY = re.compile(r"[0-9]{1,18}")  # a version's sequence number (BIGINT)
FULL_NAME = P.DESCRIPTOR.services_by_name["PredictionService"].full_name
# Score requests with more candidates than this are converted on a worker thread.
OFF_LOOP_CANDIDATES = 256


@validation.checked_by(messages.validate_request)
class PredictionServicer(prediction_pb2_grpc.PredictionServiceServicer):
    def __init__(self, domain: PredictionDomain) -> None:
        self.domain = domain

    async def Score(
        self, request: P.ScoreRequest, context: grpc.aio.ServicerContext
    ) -> P.ScoreResponse:
        # Validating and converting thousands of candidates, and building their reply, takes
        # hundreds of ms of CPU: a big request does it off the event loop so the server keeps
        # taking calls in meanwhile (health checks; and a drain on SIGTERM).
        if len(request.candidates) > OFF_LOOP_CANDIDATES:
            user, ctx, candidates = await asyncio.to_thread(self._features, request)
        else:
            user, ctx, candidates = self._features(request)
        results, version, is_prior = await self.domain.score(
            user, ctx, candidates, request.model_version, request.explanation_count or 3
        )
        if len(results) > OFF_LOOP_CANDIDATES:
            return await asyncio.to_thread(_score_reply, request, results, version, is_prior)
        return _score_reply(request, results, version, is_prior)

    def _features(
        self, request: P.ScoreRequest
    ) -> tuple[UserFeatures, ContextFeatures, list[tuple[ItemFeatures, CopyFeatures]]]:
        messages.validate_score(request, self.domain.settings.max_candidates)
        user = messages.user_features(request.user_id, request.profile)
        ctx = messages.context_features(request.context)
        candidates = [
            messages.candidate_features(c, request.context.locale) for c in request.candidates
        ]
        return user, ctx, candidates

    async def LogImpressions(
        self, request: P.LogImpressionsRequest, context: grpc.aio.ServicerContext
    ) -> P.LogImpressionsResponse:
        v = Violations()
        v.check(
            1 <= len(request.impressions) <= messages.MAX_LOG_BATCH,
            "impressions",
            "1 to 10,000 impressions required",
        )
        rows = [
            messages.impression_from_proto(n, imp, v) for n, imp in enumerate(request.impressions)
        ]
        v.raise_if_any()
        result = await self.domain.log_impressions([r for r in rows if r is not None])
        return P.LogImpressionsResponse(
            accepted=result.accepted, duplicate=result.duplicate, erased=result.erased
        )

    async def LogOutcomes(
        self, request: P.LogOutcomesRequest, context: grpc.aio.ServicerContext
    ) -> P.LogOutcomesResponse:
        v = Violations()
        v.check(
            1 <= len(request.outcomes) <= messages.MAX_LOG_BATCH,
            "outcomes",
            "1 to 10,000 outcomes required",
        )
        rows = [messages.outcome_from_proto(n, o, v) for n, o in enumerate(request.outcomes)]
        v.raise_if_any()
        # The user id (when the caller sends it) lets an early outcome be erased with the user.
        known = [
            replace(
                r, user_id=o.user_id if len(o.user_id) <= 128 and "\x00" not in o.user_id else ""
            )
            for r, o in zip(rows, request.outcomes, strict=True)
            if r is not None
        ]
        result = await self.domain.log_outcomes(known)
        return P.LogOutcomesResponse(
            accepted=result.accepted,
            duplicate=result.duplicate,
            unmatched=result.unmatched,
            erased=result.erased,
        )

    async def DeleteUser(
        self, request: P.PredictionServiceDeleteUserRequest, context: grpc.aio.ServicerContext
    ) -> P.PredictionServiceDeleteUserResponse:
        user_id = messages.delete_user_from_proto(request)
        impressions, outcomes = await self.domain.delete_user(user_id)
        return P.PredictionServiceDeleteUserResponse(
            deleted_impression_count=impressions, deleted_outcome_count=outcomes
        )

    async def TrainModel(
        self, request: P.TrainModelRequest, context: grpc.aio.ServicerContext
    ) -> P.TrainModelResponse:
        v = Violations()
        train = messages.window(request.train_window, "train_window", v)
        evaluate = messages.window(request.eval_window, "eval_window", v)
        v.check(0 <= request.epochs <= 50, "epochs", "must be between 0 and 50")
        if not v and evaluate[0] < train[1]:
            v.add("eval_window.start_time", "must be at or after train_window.end_time")
        v.raise_if_any()
        validate_key(request.idempotency_key)
        outcome = await self.domain.train(
            train,
            evaluate,
            request.epochs,
            request.seed,
            request.promote_if_better,
            request.idempotency_key,
        )
        return P.TrainModelResponse(
            model_version=messages.version_to_proto(outcome.record),
            promoted=outcome.promoted,
            reason=outcome.reason,
        )

    async def PromoteModel(
        self, request: P.PromoteModelRequest, context: grpc.aio.ServicerContext
    ) -> P.PromoteModelResponse:
        _require_version(request.version)
        record, promoted, reason = await self.domain.promote(request.version, request.force)
        return P.PromoteModelResponse(
            model_version=messages.version_to_proto(record), promoted=promoted, reason=reason
        )

    async def RollbackModel(
        self, request: P.RollbackModelRequest, context: grpc.aio.ServicerContext
    ) -> P.RollbackModelResponse:
        validate_key(request.idempotency_key)
        return P.RollbackModelResponse(
            model_version=messages.version_to_proto(await self.domain.rollback())
        )

    async def GetModelVersion(
        self, request: P.GetModelVersionRequest, context: grpc.aio.ServicerContext
    ) -> P.GetModelVersionResponse:
        _require_version(request.version)
        return P.GetModelVersionResponse(
            model_version=messages.version_to_proto(await self.domain.get_version(request.version))
        )

    async def ListModelVersions(
        self, request: P.ListModelVersionsRequest, context: grpc.aio.ServicerContext
    ) -> P.ListModelVersionsResponse:
        page = pagination.parse_page(request.page_size, request.page_token, "versions", VERSION_KEY)
        before = int(page.after) if page.after else 0
        found = await self.domain.list_versions(before, page.size + 1)
        more = len(found) > page.size
        found = found[: page.size]
        return P.ListModelVersionsResponse(
            model_versions=[messages.version_to_proto(r) for r in found],
            next_page_token=pagination.next_token(str(found[-1].sequence), "versions")
            if more
            else "",
        )


def _score_reply(
    request: P.ScoreRequest, results: Sequence[ScoreResult], version: str, is_prior: bool
) -> P.ScoreResponse:
    reply = P.ScoreResponse(
        model_version=version if not is_prior else COLD_START_VERSION,
        mode=P.SCORING_MODE_PRIOR if is_prior else P.SCORING_MODE_MODEL,
    )
    for c, r in zip(request.candidates, results, strict=True):
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


def _require_version(version: str) -> None:
    v = Violations()
    v.check(bool(version) and len(version) <= 64, "version", "required")
    v.raise_if_any()
