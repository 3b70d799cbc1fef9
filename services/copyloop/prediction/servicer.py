"""PredictionService gRPC servicer: validates, converts, calls the domain."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import replace

import grpc

from copyloop.common import pagination, validation
from copyloop.common.errors import Violations
from copyloop.common.idempotency import validate_key
from copyloop.common.tenancy import current_tenant
from copyloop.prediction import messages
from copyloop.prediction.domain import PredictionDomain
from copyloop.v1 import prediction_pb2, prediction_pb2_grpc

log = logging.getLogger("copyloop.prediction")
P = prediction_pb2
VERSION_KEY = re.compile(r"[0-9]{1,18}")  # a version's sequence number (BIGINT)
FULL_NAME = P.DESCRIPTOR.services_by_name["PredictionService"].full_name


@validation.checked_by(messages.validate_request)
class PredictionServicer(prediction_pb2_grpc.PredictionServiceServicer):
    def __init__(self, domain: PredictionDomain) -> None:
        self.domain = domain
        self.candidates = messages.CandidateCache()

    async def Score(
        self, request: P.ScoreRequest, context: grpc.aio.ServicerContext
    ) -> P.ScoreResponse:
        # Validating and converting the candidates, scoring them and encoding the reply is all
        # CPU work: one hop to a worker does it (the loop keeps taking calls meanwhile: health
        # checks, a drain on SIGTERM), instead of a hop per step, each a wait for the GIL.
        return await self.domain.in_worker(self._score, current_tenant(), request)

    def _score(self, tenant: str, request: P.ScoreRequest) -> P.ScoreResponse:
        inputs = messages.score_inputs(
            request, self.domain.settings.max_candidates, self.candidates
        )
        scores = self.domain.score_now(
            tenant,
            inputs.user,
            inputs.context,
            inputs.candidates,
            request.model_version,
            explanation_count(request),
        )
        return messages.score_reply(inputs.prefixes, scores)

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


def explanation_count(request: P.ScoreRequest) -> int:
    """Top features per candidate: none when omitted, else as asked (3 when 0)."""
    return 0 if request.omit_explanations else request.explanation_count or 3


async def warm_up(servicer: PredictionServicer, tenants: Iterable[str]) -> dict[str, str]:
    """Runs one made-up Score for each tenant through the servicer's own path (messages, the
    tenant's live version or prior, attribution, the reply), so loading the version and the
    text model happens before the server takes calls, not in the first callers' deadlines;
    then embeds the copy texts the tenant served last (the copy its callers send again).
    A tenant whose version cannot be loaded is logged and left to fail as it would have; the
    rest still warm. Returns tenant -> the version that will serve it."""
    request = messages.warm_up_request()
    for tenant in sorted(set(tenants)):
        try:
            await servicer.domain.in_worker(servicer._score, tenant, request)
            await servicer.domain.in_worker(servicer.domain.warm_copy_texts, tenant)
        except Exception:
            log.exception("warm-up failed", extra={"tenant": tenant})
    return servicer.domain.served_versions()


def _require_version(version: str) -> None:
    v = Violations()
    v.check(bool(version) and len(version) <= 64, "version", "required")
    v.raise_if_any()
