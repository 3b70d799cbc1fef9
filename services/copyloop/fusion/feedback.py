"""The feedback path: outcomes update the bandit and experiment metrics here, then flow on, via
the outbox (see `outbox`), to the profile (behaviour events) and the prediction service's
training log (impressions with the features as served, and outcomes joined by impression id).
User deletion takes the same path."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from google.protobuf import json_format

from copyloop.common.db import BlockingRunner
from copyloop.common.protoconv import epoch_to_ts
from copyloop.common.tenancy import current_tenant
from copyloop.fusion.outbox import (
    DELETE_USER,
    EVENT,
    IMPRESSION,
    OUTCOME,
    PREDICTION,
    PROFILE,
    OutboxMessage,
    Relay,
    to_payload,
)
from copyloop.fusion.store import (
    UNKNOWN_IMPRESSION,
    AppliedOutcome,
    FusionStore,
    OutcomeIn,
    UserDeletion,
)
from copyloop.v1 import common_pb2, prediction_pb2, profile_pb2

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
    """Outcomes and deletions commit locally together with their forwarding rows (the outbox);
    the relay delivers those, so a reply never waits on, or is lost to, a slow or down
    downstream service."""

    def __init__(
        self, store: FusionStore, runner: BlockingRunner, relay: Relay | None = None
    ) -> None:
        self.store = store
        self.runner = runner
        self.relay = relay

    def notify(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    async def settle(self, timeout_s: float) -> bool:
        """Waits (bounded) until this tenant's training-log rows are delivered, so a retrain
        started right after ReportOutcome learns from those outcomes too."""
        if self.relay is None:
            return True
        return await self.relay.settle(current_tenant(), PREDICTION, timeout_s)

    async def report(
        self, events: Sequence[OutcomeIn]
    ) -> tuple[int, int, list[tuple[OutcomeIn, str]]]:
        tenant = current_tenant()
        applied, duplicate, rejected = await self.runner.run(
            self.store.apply_outcomes, tenant, events, forwarding
        )
        unknown = [e for e, why in rejected if why.startswith(UNKNOWN_IMPRESSION)]
        if unknown and self.store.serve_grace_s > 0:
            # Another replica may still hold the serve in its write-behind: one more try after
            # its flush, waited here (not on a store thread, which Recommend needs).
            await asyncio.sleep(self.store.serve_grace_s)
            more, more_duplicate, still = await self.runner.run(
                self.store.apply_outcomes, tenant, unknown, forwarding
            )
            retried = {id(e) for e in unknown}
            applied += more
            duplicate += more_duplicate
            rejected = [r for r in rejected if id(r[0]) not in retried] + still
        if applied:
            self.notify()
        return len(applied), duplicate, rejected

    async def delete_user(self, user_id: str) -> UserDeletion:
        deletion = await self.runner.run(
            self.store.delete_user, current_tenant(), user_id, deletion_forwarding(user_id)
        )
        self.notify()
        return deletion


def forwarding(applied: Sequence[AppliedOutcome]) -> list[OutboxMessage]:
    """The outbox rows for newly applied outcomes, in delivery order: the training log's
    impressions before their outcomes, then the profile's behaviour events. Each row's key is
    the natural id its target deduplicates on, so a redelivery is counted as a duplicate."""
    impressions = [
        OutboxMessage(
            PREDICTION,
            IMPRESSION,
            a.served.impression_id,
            a.served.user_id,
            to_payload(_impression(a)),
        )
        for a in applied
        if a.outcome.type == "impression" and a.first_of_type
    ]
    outcomes = [
        OutboxMessage(
            PREDICTION,
            OUTCOME,
            a.outcome.event_id,
            a.served.user_id,
            to_payload(
                prediction_pb2.Outcome(
                    outcome_id=a.outcome.event_id,
                    impression_id=a.outcome.impression_id,
                    type=OUTCOME_TYPES[a.outcome.type],
                    value=a.outcome.value,
                    outcome_time=epoch_to_ts(a.outcome.event_time),
                    user_id=a.served.user_id,
                )
            ),
        )
        for a in applied
        if a.outcome.type in OUTCOME_TYPES
    ]
    events = [
        OutboxMessage(
            PROFILE,
            EVENT,
            f"fusion:{a.outcome.event_id}",
            a.served.user_id,
            to_payload(
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
            ),
        )
        for a in applied
    ]
    return [*impressions, *outcomes, *events]


def deletion_forwarding(user_id: str) -> list[OutboxMessage]:
    """The user's deletion for prediction and profile, delivered through the same outbox (so it
    follows anything about the user already delivered, and survives restarts)."""
    return [
        OutboxMessage(
            PREDICTION,
            DELETE_USER,
            user_id,
            user_id,
            to_payload(prediction_pb2.PredictionServiceDeleteUserRequest(user_id=user_id)),
        ),
        OutboxMessage(
            PROFILE,
            DELETE_USER,
            user_id,
            user_id,
            to_payload(profile_pb2.DeleteUserRequest(user_id=user_id)),
        ),
    ]


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
        propensity=float(f.get("propensity") or 0.0),
        alternatives=[
            prediction_pb2.CopyAlternative(
                creative_id=str(alt.get("creative_id", "")), copy_text=str(alt.get("copy_text", ""))
            )
            for alt in f.get("alternatives") or ()
        ],
    )
