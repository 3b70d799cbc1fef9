"""The feedback path: outcomes update the bandit and experiment metrics here, then flow on to
the profile (behaviour events) and the prediction service's training log (impressions with the
features as served, and outcomes joined by impression id)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from google.protobuf import json_format
from prometheus_client import Counter

from copyloop.common.db import BlockingRunner
from copyloop.common.observability import REGISTRY
from copyloop.common.protoconv import epoch_to_ts
from copyloop.common.tenancy import current_tenant
from copyloop.fusion.downstream import Downstream, Metadata
from copyloop.fusion.store import AppliedOutcome, FusionStore, OutcomeIn
from copyloop.v1 import common_pb2, prediction_pb2, profile_pb2

log = logging.getLogger("copyloop.fusion")
FORWARD_FAILURES = Counter(
    "copyloop_fusion_feedback_forward_failures_total",
    "Outcome batches that could not be forwarded to a downstream service.",
    ["target"],
    registry=REGISTRY,
)
PROFILE_TYPES = {
    "impression": profile_pb2.EVENT_TYPE_IMPRESSION,
    "click": profile_pb2.EVENT_TYPE_CLICK,
    "add_to_cart": profile_pb2.EVENT_TYPE_ADD_TO_CART,
    "purchase": profile_pb2.EVENT_TYPE_PURCHASE,
}
OUTCOME_TYPES = {
    "click": prediction_pb2.OUTCOME_TYPE_CLICK,
    "add_to_cart": prediction_pb2.OUTCOME_TYPE_ADD_TO_CART,
    "purchase": prediction_pb2.OUTCOME_TYPE_PURCHASE,
}


class Feedback:
    def __init__(self, store: FusionStore, downstream: Downstream, runner: BlockingRunner) -> None:
        self.store = store
        self.down = downstream
        self.runner = runner

    async def report(
        self, events: Sequence[OutcomeIn], metadata: Metadata
    ) -> tuple[int, int, list[tuple[OutcomeIn, str]]]:
        applied, duplicate, rejected = await self.runner.run(
            self.store.apply_outcomes, current_tenant(), events
        )
        if applied:
            await self._forward(applied, metadata)
        return len(applied), duplicate, rejected

    async def _forward(self, applied: Sequence[AppliedOutcome], metadata: Metadata) -> None:
        """Training log first (impressions before their outcomes), then the profile."""
        impressions = [
            _impression(a) for a in applied if a.outcome.type == "impression" and a.first_of_type
        ]
        outcomes = [
            prediction_pb2.Outcome(
                outcome_id=a.outcome.event_id,
                impression_id=a.outcome.impression_id,
                type=OUTCOME_TYPES[a.outcome.type],
                value=a.outcome.value,
                outcome_time=epoch_to_ts(a.outcome.event_time),
            )
            for a in applied
            if a.outcome.type in OUTCOME_TYPES
        ]
        try:
            if impressions:
                await self.down.prediction.LogImpressions(
                    prediction_pb2.LogImpressionsRequest(impressions=impressions),
                    metadata=metadata,
                    timeout=5,
                )
            if outcomes:
                await self.down.prediction.LogOutcomes(
                    prediction_pb2.LogOutcomesRequest(outcomes=outcomes),
                    metadata=metadata,
                    timeout=5,
                )
        except Exception:
            FORWARD_FAILURES.labels("prediction").inc()
            log.warning("could not forward outcomes to the prediction service", exc_info=True)
        events = [
            profile_pb2.Event(
                event_id=f"fusion:{a.outcome.event_id}",
                user_id=a.served.user_id,
                type=PROFILE_TYPES[a.outcome.type],
                item_id=a.served.item_id,
                event_time=epoch_to_ts(a.outcome.event_time),
                price=a.outcome.value if a.outcome.type == "purchase" else 0.0,
                request_id=a.served.request_id,
                creative_id=a.served.creative_id,
                context=_context(a),
            )
            for a in applied
        ]
        try:
            await self.down.profile.IngestEvents(
                profile_pb2.IngestEventsRequest(events=events), metadata=metadata, timeout=5
            )
        except Exception:
            FORWARD_FAILURES.labels("profile").inc()
            log.warning("could not forward outcomes to the profile service", exc_info=True)


def _context(a: AppliedOutcome) -> common_pb2.Context:
    return json_format.ParseDict(
        a.served.features.get("context", {}), common_pb2.Context(), ignore_unknown_fields=True
    )


def _impression(a: AppliedOutcome) -> prediction_pb2.Impression:
    f = a.served.features
    return prediction_pb2.Impression(
        impression_id=a.served.impression_id,
        request_id=a.served.request_id,
        user_id=a.served.user_id,
        profile=json_format.ParseDict(
            f.get("profile", {}), common_pb2.UserProfile(), ignore_unknown_fields=True
        ),
        context=_context(a),
        candidate=json_format.ParseDict(
            f.get("candidate", {}), prediction_pb2.ScoreCandidate(), ignore_unknown_fields=True
        ),
        served_p_ctr=a.served.p_ctr,
        model_version=a.served.model_version,
        impression_time=epoch_to_ts(a.outcome.event_time),
        experiment_arm=a.served.arm_id,
    )
