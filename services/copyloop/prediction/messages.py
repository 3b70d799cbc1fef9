"""Conversion and validation between copyloop.v1 messages and prediction domain types."""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from copyloop.common import validation
from copyloop.common.errors import Violations
from copyloop.common.protoconv import (
    CHANNEL_NAMES,
    PRICE_BAND_NAMES,
    dt_to_ts,
    epoch_to_ts,
    ts_to_epoch,
)
from copyloop.prediction.features.types import (
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    UserFeatures,
)
from copyloop.prediction.store import (
    CopyAlternative,
    LoggedImpression,
    LoggedOutcome,
    VersionRecord,
)
from copyloop.v1 import common_pb2, prediction_pb2

P = prediction_pb2
# Channels and price bands are the platform vocabulary (copyloop.common.protoconv maps the
# enums); devices are only this service's feature.
CHANNELS = CHANNEL_NAMES
PRICE_BANDS = PRICE_BAND_NAMES
DEVICES = {v: k.removeprefix("DEVICE_").lower() for k, v in common_pb2.Device.items() if v}
OUTCOME_TYPES = {
    P.OUTCOME_TYPE_CLICK: "click",
    P.OUTCOME_TYPE_ADD_TO_CART: "add_to_cart",
    P.OUTCOME_TYPE_PURCHASE: "purchase",
}
VERSION_STATES = {
    "registered": P.MODEL_VERSION_STATE_REGISTERED,
    "live": P.MODEL_VERSION_STATE_LIVE,
    "retired": P.MODEL_VERSION_STATE_RETIRED,
}
MAX_LOG_BATCH = 10_000
MAX_COPY_TEXT = 2000
# Copies a policy chooses among per item (fusion's bandit offers a handful); each one is
# scored again for off-policy estimates, so the log bounds them.
MAX_ALTERNATIVES = 20
MAX_PRICE = validation.MAX_PRICE
# Where each request string lands (prediction/schema.py); the rest of common.proto is shared.
LIMITS = validation.limits(
    {
        "copyloop.v1.ScoreRequest.user_id": 128,
        "copyloop.v1.ScoreRequest.model_version": 64,
        "copyloop.v1.ScoreCandidate.creative_id": 128,
        "copyloop.v1.ScoreCandidate.copy_text": 2000,
        "copyloop.v1.Impression.impression_id": 128,
        "copyloop.v1.Impression.request_id": 128,
        "copyloop.v1.Impression.user_id": 128,
        "copyloop.v1.Impression.model_version": 64,
        "copyloop.v1.Impression.experiment_arm": 64,
        "copyloop.v1.CopyAlternative.creative_id": 128,
        "copyloop.v1.CopyAlternative.copy_text": MAX_COPY_TEXT,
        "copyloop.v1.Outcome.outcome_id": 128,
        "copyloop.v1.Outcome.impression_id": 128,
        "copyloop.v1.Outcome.user_id": 128,
        "copyloop.v1.TrainModelRequest.idempotency_key": 128,
        "copyloop.v1.PromoteModelRequest.version": 64,
        "copyloop.v1.RollbackModelRequest.idempotency_key": 128,
        "copyloop.v1.GetModelVersionRequest.version": 64,
        "copyloop.v1.PredictionServiceDeleteUserRequest.user_id": 128,
    }
)


def validate_request(request: Message) -> None:
    """The edge checks every PredictionService RPC runs first (see copyloop.common.validation).
    Score is checked in validate_score, which runs off the event loop."""
    if isinstance(request, prediction_pb2.ScoreRequest):
        return
    v = Violations()
    validation.scan(request, v, LIMITS)
    if isinstance(request, prediction_pb2.LogImpressionsRequest):
        for n, imp in enumerate(request.impressions[: validation.MAX_SCAN_VIOLATIONS]):
            validation.check_number(v, f"impressions[{n}].served_p_ctr", imp.served_p_ctr, 0, 1)
            policy = Violations()
            check_policy(policy, f"impressions[{n}]", imp)
            flagged = {item.field for item in v.items}  # by the scan: one violation a field
            v.items += [item for item in policy.items if item.field not in flagged]
    v.raise_if_any()


def user_features(user_id: str, profile: common_pb2.UserProfile) -> UserFeatures:
    if not profile.user_id and not profile.event_count:
        return UserFeatures(user_id=user_id, cold_start=True)
    return UserFeatures(
        user_id=user_id,
        segments=tuple(profile.segments),
        category_affinity={a.key: a.share for a in profile.category_affinities},
        brand_affinity={a.key: a.share for a in profile.brand_affinities},
        price_band=PRICE_BANDS.get(profile.price_band, ""),
        events_30d=profile.frequency_30d,
        recency_days=profile.recency_days,
        monetary=profile.monetary_total,
        cold_start=profile.cold_start,
    )


def context_features(ctx: common_pb2.Context, now: float | None = None) -> ContextFeatures:
    t = ts_to_epoch(ctx.request_time) if ctx.HasField("request_time") else (now or time.time())
    return ContextFeatures(
        channel=CHANNELS.get(ctx.channel, ""),
        hour=datetime.fromtimestamp(t, UTC).hour,
        device=DEVICES.get(ctx.device, ""),
        locale=ctx.locale,
    )


def candidate_features(
    c: prediction_pb2.ScoreCandidate, locale: str
) -> tuple[ItemFeatures, CopyFeatures]:
    item = ItemFeatures(
        item_id=c.item.item_id,
        category_path=tuple(c.item.category_path),
        brand=c.item.brand,
        price=c.item.price,
        list_price=c.item.list_price,
        popularity=c.item_popularity,
    )
    return item, CopyFeatures(creative_id=c.creative_id, text=c.copy_text, locale=locale)


def validate_score(req: prediction_pb2.ScoreRequest, max_candidates: int) -> None:
    v = Violations()
    validation.scan(req, v, LIMITS)
    v.check(
        bool(req.user_id) and len(req.user_id) <= 128, "user_id", "required, at most 128 characters"
    )
    v.check(
        1 <= len(req.candidates) <= max_candidates,
        "candidates",
        f"1 to {max_candidates} candidates required",
    )
    v.check(0 <= req.explanation_count <= 10, "explanation_count", "must be between 0 and 10")
    v.check(req.context.channel in CHANNELS, "context.channel", "required: a known channel")
    if req.profile.user_id:
        v.check(req.profile.user_id == req.user_id, "profile.user_id", "must match user_id")
    for name in ("recency_days", "monetary_total", "mean_engaged_price"):
        value = getattr(req.profile, name)
        v.check(
            math.isfinite(value) and value >= 0, f"profile.{name}", "must be a finite number >= 0"
        )
    for n, c in enumerate(req.candidates):
        if n >= 1000 and len(v.items) > 50:
            break  # enough to tell the caller what is wrong
        p = f"candidates[{n}]"
        v.check(bool(c.item.item_id), f"{p}.item.item_id", "required")
        v.check(
            math.isfinite(c.item.price) and 0 <= c.item.price <= MAX_PRICE,
            f"{p}.item.price",
            f"must be between 0 and {MAX_PRICE:g}",
        )
        v.check(
            math.isfinite(c.item.list_price) and 0 <= c.item.list_price <= MAX_PRICE,
            f"{p}.item.list_price",
            f"must be between 0 and {MAX_PRICE:g}",
        )
        v.check(
            math.isfinite(c.item_popularity) and c.item_popularity >= 0,
            f"{p}.item_popularity",
            "must be >= 0",
        )
        v.check(len(c.copy_text) <= 2000, f"{p}.copy_text", "at most 2,000 characters")
    v.raise_if_any()


def check_policy(v: Violations, p: str, imp: prediction_pb2.Impression) -> bool:
    """How serving chose the copy: a propensity in [0, 1] (0 = unknown) and a bounded list of
    the copies it did not choose, each with text."""
    ok = validation.check_number(v, f"{p}.propensity", imp.propensity, 0, 1)
    ok &= v.check(
        len(imp.alternatives) <= MAX_ALTERNATIVES,
        f"{p}.alternatives",
        f"at most {MAX_ALTERNATIVES} alternatives",
    )
    for k, alt in enumerate(imp.alternatives[:MAX_ALTERNATIVES]):
        ok &= validation.check_text(
            v, f"{p}.alternatives[{k}].copy_text", alt.copy_text, MAX_COPY_TEXT, required=True
        )
        ok &= validation.check_text(v, f"{p}.alternatives[{k}].creative_id", alt.creative_id, 128)
    return ok


def impression_from_proto(
    n: int, imp: prediction_pb2.Impression, v: Violations
) -> LoggedImpression | None:
    p = f"impressions[{n}]"
    ok = v.check(
        bool(imp.impression_id) and len(imp.impression_id) <= 128, f"{p}.impression_id", "required"
    )
    ok &= v.check(bool(imp.user_id), f"{p}.user_id", "required")
    ok &= v.check(bool(imp.candidate.item.item_id), f"{p}.candidate.item.item_id", "required")
    ok &= v.check(
        imp.HasField("impression_time") and imp.impression_time.seconds > 0,
        f"{p}.impression_time",
        "required",
    )
    ok &= v.check(
        imp.context.channel in CHANNELS, f"{p}.context.channel", "required: a known channel"
    )
    ok &= check_policy(v, p, imp)
    if not ok:
        return None
    t = ts_to_epoch(imp.impression_time)
    ctx = context_features(imp.context, t)
    item, copy = candidate_features(imp.candidate, imp.context.locale)
    features = {
        "user": asdict(user_features(imp.user_id, imp.profile)),
        "item": asdict(item),
        "copy": asdict(copy),
        "context": asdict(ctx),
    }
    return LoggedImpression(
        impression_id=imp.impression_id,
        request_id=imp.request_id,
        user_id=imp.user_id,
        item_id=item.item_id,
        creative_id=imp.candidate.creative_id,
        features=features,
        served_p_ctr=imp.served_p_ctr,
        model_version=imp.model_version,
        experiment_arm=imp.experiment_arm,
        impression_time=t,
        propensity=imp.propensity,
        alternatives=tuple(CopyAlternative(a.creative_id, a.copy_text) for a in imp.alternatives),
    )


def outcome_from_proto(n: int, out: prediction_pb2.Outcome, v: Violations) -> LoggedOutcome | None:
    p = f"outcomes[{n}]"
    ok = v.check(bool(out.outcome_id) and len(out.outcome_id) <= 128, f"{p}.outcome_id", "required")
    ok &= v.check(bool(out.impression_id), f"{p}.impression_id", "required")
    ok &= v.check(
        out.type in OUTCOME_TYPES, f"{p}.type", "required: click, add_to_cart or purchase"
    )
    ok &= v.check(math.isfinite(out.value) and out.value >= 0, f"{p}.value", "must be >= 0")
    if not ok:
        return None
    t = ts_to_epoch(out.outcome_time) if out.HasField("outcome_time") else time.time()
    return LoggedOutcome(out.outcome_id, out.impression_id, OUTCOME_TYPES[out.type], out.value, t)


def window(w: prediction_pb2.TimeWindow, name: str, v: Violations) -> tuple[float, float]:
    ok = v.check(
        w.HasField("start_time") and w.HasField("end_time"),
        name,
        "start_time and end_time required",
    )
    if not ok:
        return 0.0, 0.0
    start, end = ts_to_epoch(w.start_time), ts_to_epoch(w.end_time)
    v.check(start < end, f"{name}.end_time", "must be after start_time")
    return start, end


def _window_proto(w: tuple[float, float]) -> prediction_pb2.TimeWindow:
    return P.TimeWindow(start_time=epoch_to_ts(w[0]), end_time=epoch_to_ts(w[1]))


def _model_metrics(m: dict[str, Any] | None) -> prediction_pb2.ModelMetrics:
    m = m or {}

    def task(name: str) -> prediction_pb2.TaskMetrics:
        t = m.get(name) or {}
        return P.TaskMetrics(
            auc=_num(t.get("auc")),
            logloss=_num(t.get("logloss")),
            ece=_num(t.get("ece")),
            example_count=int(t.get("n") or t.get("example_count") or 0),
            positive_count=int(t.get("positives") or t.get("positive_count") or 0),
        )

    return P.ModelMetrics(ctr=task("ctr"), cvr=task("cvr"), ctcvr=task("ctcvr"))


def _num(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def version_to_proto(r: VersionRecord) -> prediction_pb2.ModelVersion:
    models = r.metrics.get("models", {})
    msg = P.ModelVersion(
        version=r.version,
        state=VERSION_STATES[r.state],
        train_window=_window_proto(r.train_window),
        eval_window=_window_proto(r.eval_window),
        metrics=_model_metrics(models.get("esmm")),
        logistic_baseline_metrics=_model_metrics(models.get("logistic")),
        prior_baseline_metrics=_model_metrics(models.get("popularity")),
        report_uri=r.report_path,
        create_time=dt_to_ts(r.create_time),
    )
    if r.promote_time:
        msg.promote_time.CopyFrom(dt_to_ts(r.promote_time))
    off_policy = r.metrics.get("off_policy")
    if off_policy:
        msg.off_policy.CopyFrom(_off_policy_proto(off_policy))
    return msg


def _off_policy_proto(d: dict[str, Any]) -> prediction_pb2.OffPolicyEstimate:
    def interval(name: str) -> prediction_pb2.EstimateInterval:
        part = d.get(name) or {}
        return P.EstimateInterval(
            value=_nan_if_null(part.get("value")),
            lower=_nan_if_null(part.get("low")),
            upper=_nan_if_null(part.get("high")),
        )

    return P.OffPolicyEstimate(
        ips=interval("ips"),
        snips=interval("snips"),
        logging=interval("logging"),
        impressions=int(d.get("n") or 0),
        effective_sample_size=_nan_if_null(d.get("effective_sample_size")),
        agreement=_nan_if_null(d.get("agreement")),
    )


def _nan_if_null(value: Any) -> float:
    """A stored figure; None (NaN stored as JSON null) back to NaN."""
    return math.nan if value is None else float(value)


def delete_user_from_proto(req: prediction_pb2.PredictionServiceDeleteUserRequest) -> str:
    v = Violations()
    v.check(
        bool(req.user_id) and len(req.user_id) <= 128 and "\x00" not in req.user_id,
        "user_id",
        "required, at most 128 characters",
    )
    v.raise_if_any()
    return req.user_id
