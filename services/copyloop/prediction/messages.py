"""Conversion and validation between copyloop.v1 messages and prediction domain types."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from google.protobuf.message import Message
from numpy.typing import NDArray

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
from copyloop.prediction.serving.cold_start import COLD_START_VERSION
from copyloop.prediction.store import (
    CopyAlternative,
    LoggedImpression,
    LoggedOutcome,
    VersionRecord,
)
from copyloop.v1 import common_pb2, prediction_pb2

if TYPE_CHECKING:  # the scorer imports torch
    from copyloop.prediction.serving.scorer import ScoreArrays

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
    Score is checked in score_inputs, which runs off the event loop."""
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


Candidate = tuple[ItemFeatures, CopyFeatures]
# A candidate's features and the start of its CandidateScore on the wire (item and creative id).
Converted = tuple[Candidate, bytes]


class CandidateCache:
    """Candidates already validated and converted, by their wire bytes, per request locale.

    FusionService scores the same catalog items with the same copies call after call, and
    walking every field of every candidate (the edge scan) and building its domain types was
    most of a large Score's CPU. A candidate's validity and its features depend only on its
    own bytes and the locale, so a hit skips both; only valid candidates are kept (an invalid
    one is scanned again, so its violations name its position in each request). Bounded:
    when full it starts afresh, which costs work, never a different result. Shared by the
    scoring workers without a lock: each dict operation is atomic, and a lost count only
    moves the next fresh start."""

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._by_locale: dict[str, dict[bytes, Converted]] = {}
        self._size = 0

    def table(self, locale: str) -> dict[bytes, Converted]:
        found = self._by_locale.get(locale)
        if found is None:
            found = self._by_locale[locale] = {}
        return found

    def add(self, table: dict[bytes, Converted], key: bytes, value: Converted) -> None:
        if self._size >= self.capacity:
            for known in list(self._by_locale.values()):
                known.clear()
            self._size = 0
        table[key] = value
        self._size += 1


def _score_head(req: prediction_pb2.ScoreRequest) -> prediction_pb2.ScoreRequest:
    """The request without its candidates (they are scanned one by one)."""
    head = P.ScoreRequest(
        user_id=req.user_id,
        model_version=req.model_version,
        explanation_count=req.explanation_count,
        omit_explanations=req.omit_explanations,
    )
    if req.HasField("profile"):
        head.profile.CopyFrom(req.profile)
    if req.HasField("context"):
        head.context.CopyFrom(req.context)
    return head


def _check_candidate(v: Violations, n: int, c: prediction_pb2.ScoreCandidate) -> None:
    p = f"candidates[{n}]"
    validation.scan(c, v, LIMITS, p)
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


@dataclass
class ScoreInputs:
    """A validated ScoreRequest as domain types, plus what its reply needs."""

    user: UserFeatures
    context: ContextFeatures
    candidates: list[Candidate]
    prefixes: list[bytes]  # per candidate: its CandidateScore's item_id and creative_id fields


def score_inputs(
    req: prediction_pb2.ScoreRequest, max_candidates: int, cache: CandidateCache | None = None
) -> ScoreInputs:
    """Validates a ScoreRequest (INVALID_ARGUMENT with every violation found) and converts it
    to domain types, candidates in request order. `cache` remembers valid candidates across
    calls (see CandidateCache)."""
    v = Violations()
    validation.scan(_score_head(req), v, LIMITS)
    v.check(
        bool(req.user_id) and len(req.user_id) <= 128, "user_id", "required, at most 128 characters"
    )
    count_ok = v.check(
        1 <= len(req.candidates) <= max_candidates,
        "candidates",
        f"1 to {max_candidates} candidates required",
    )
    v.check(0 <= req.explanation_count <= 10, "explanation_count", "must be between 0 and 10")
    v.check(
        not (req.omit_explanations and req.explanation_count),
        "explanation_count",
        "must be 0 when omit_explanations is set",
    )
    v.check(req.context.channel in CHANNELS, "context.channel", "required: a known channel")
    if req.profile.user_id:
        v.check(req.profile.user_id == req.user_id, "profile.user_id", "must match user_id")
    for name in ("recency_days", "monetary_total", "mean_engaged_price"):
        value = getattr(req.profile, name)
        v.check(
            math.isfinite(value) and value >= 0, f"profile.{name}", "must be a finite number >= 0"
        )
    locale = req.context.locale
    table = cache.table(locale) if cache is not None else {}
    converted: list[Converted] = []
    if count_ok:
        get = table.get
        for n, c in enumerate(req.candidates):
            key = c.SerializeToString()
            found = get(key)
            if found is None:
                if len(v.items) >= validation.MAX_SCAN_VIOLATIONS:
                    break  # enough to tell the caller what is wrong
                problems = Violations()  # its own: a capped scan must not pass a bad one
                _check_candidate(problems, n, c)
                if problems:
                    v.items += problems.items
                    continue
                found = (candidate_features(c, locale), _score_prefix(c))
                if cache is not None:
                    cache.add(table, key, found)
            converted.append(found)
    v.raise_if_any()
    return ScoreInputs(
        user_features(req.user_id, req.profile),
        context_features(req.context),
        [c for c, _ in converted],
        [prefix for _, prefix in converted],
    )


# ---- ScoreResponse, encoded straight from the score arrays -----------------------------------
# A 1,000-candidate reply built message by message (and ScoreResult by ScoreResult before it)
# cost more than scoring it. The wire format of ScoreResponse is simple enough to write from
# the arrays, and the C parser turns the bytes back into the message gRPC sends; the unit tests
# check it equals the message built field by field. Field numbers: prediction.proto.
_SCORE_FIXED = np.dtype(
    [
        ("p_ctr_tag", "u1"),
        ("p_ctr", "<f8"),
        ("p_cvr_tag", "u1"),
        ("p_cvr", "<f8"),
        ("p_ctcvr_tag", "u1"),
        ("p_ctcvr", "<f8"),
        ("quality_tag", "u1"),
        ("copy_quality", "<f8"),
    ]
)  # packed: 36 bytes per candidate
_TAGS = {"p_ctr_tag": 0x19, "p_cvr_tag": 0x21, "p_ctcvr_tag": 0x29, "quality_tag": 0x31}


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string_field(tag: int, value: str) -> bytes:
    if not value:
        return b""
    data = value.encode()
    return bytes((tag,)) + _varint(len(data)) + data


def _score_prefix(c: prediction_pb2.ScoreCandidate) -> bytes:
    """CandidateScore.item_id (1) and .creative_id (2) of this candidate, encoded."""
    return _string_field(0x0A, c.item.item_id) + _string_field(0x12, c.creative_id)


def _feature_head(name: str) -> bytes:
    """CandidateScore.top_features (7) entry up to its double: tag, length, feature (1), the
    contribution's tag (2, fixed64)."""
    feature = _string_field(0x0A, name)
    return b"\x3a" + _varint(len(feature) + 9) + feature + b"\x11"


def _ranges(starts: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """Concatenated [start, start + length) ranges, as one index array."""
    total = int(lengths.sum())
    before = np.cumsum(lengths) - lengths
    ranges: NDArray[np.int64] = np.repeat(starts - before, lengths).astype(np.int64)
    return ranges + np.arange(total, dtype=np.int64)


def _varint_bytes(values: NDArray[np.int64]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Each value (< 2**21) as a varint: [n, 3] bytes (left-aligned) and each one's length."""
    if values.size and int(values.max()) >= 1 << 21:
        raise ValueError("a candidate score of 2 MiB")
    size = 1 + (values >= 0x80) + (values >= 0x4000)
    out = np.zeros((values.size, 3), dtype=np.uint8)
    out[:, 0] = (values & 0x7F) | np.where(size > 1, 0x80, 0)
    out[:, 1] = ((values >> 7) & 0x7F) | np.where(size > 2, 0x80, 0)
    out[:, 2] = values >> 14
    return out, size.astype(np.int64)


def _encode_scores(prefixes: Sequence[bytes], scores: ScoreArrays) -> bytes:
    """The repeated CandidateScore field of a ScoreResponse, written with array operations
    (a Python loop per candidate and feature took milliseconds at 1,000 candidates)."""
    n = len(prefixes)
    if not n:
        return b""
    k = scores.top_index.shape[1]
    fixed = np.empty(n, dtype=_SCORE_FIXED)
    for name, tag in _TAGS.items():
        fixed[name] = tag
    fixed["p_ctr"] = scores.p_ctr
    fixed["p_cvr"] = scores.p_cvr
    fixed["p_ctcvr"] = scores.p_ctcvr
    fixed["copy_quality"] = [0.5 if q is None else q for q in scores.copy_quality]
    size = _SCORE_FIXED.itemsize
    heads = [_feature_head(name) for name in scores.names]
    head_bytes = np.frombuffer(b"".join(heads), dtype=np.uint8)
    head_len = np.asarray([len(h) for h in heads], dtype=np.int64)
    head_at = np.cumsum(head_len) - head_len
    prefix_bytes = np.frombuffer(b"".join(prefixes), dtype=np.uint8)
    prefix_len = np.fromiter(map(len, prefixes), dtype=np.int64, count=n)
    groups = scores.top_index.astype(np.int64, copy=False)  # [n, k]
    feature_len = head_len[groups] + 8  # [n, k]
    body_len = prefix_len + size + feature_len.sum(axis=1)
    varint, varint_len = _varint_bytes(body_len)
    row_len = 1 + varint_len + body_len
    row_at = np.cumsum(row_len) - row_len
    out = np.empty(int(row_len.sum()), dtype=np.uint8)
    out[row_at] = 0x0A  # ScoreResponse.scores (1), length-delimited
    for b in range(3):
        has = varint_len > b
        out[row_at[has] + 1 + b] = varint[has, b]
    body_at = row_at + 1 + varint_len
    out[_ranges(body_at, prefix_len)] = prefix_bytes
    fixed_at = body_at + prefix_len
    out[fixed_at[:, None] + np.arange(size)] = np.frombuffer(fixed.tobytes(), np.uint8).reshape(
        n, size
    )
    if k:
        feature_at = (fixed_at + size)[:, None] + np.cumsum(feature_len, axis=1) - feature_len
        flat_groups = groups.ravel()
        flat_at = feature_at.ravel()
        out[_ranges(flat_at, head_len[flat_groups])] = head_bytes[
            _ranges(head_at[flat_groups], head_len[flat_groups])
        ]
        value_at = flat_at + head_len[flat_groups]
        values = np.ascontiguousarray(scores.top_value, dtype="<f8").view(np.uint8)
        out[value_at[:, None] + np.arange(8)] = values.reshape(n * k, 8)
    return out.tobytes()


def score_reply(prefixes: Sequence[bytes], scores: ScoreArrays) -> prediction_pb2.ScoreResponse:
    """The ScoreResponse for `scores`, row i answering the candidate of `prefixes[i]`."""
    version = COLD_START_VERSION if scores.is_prior else scores.model_version
    mode = P.SCORING_MODE_PRIOR if scores.is_prior else P.SCORING_MODE_MODEL
    return P.ScoreResponse.FromString(
        _encode_scores(prefixes, scores) + _string_field(0x12, version) + b"\x18" + _varint(mode)
    )


def validate_score(req: prediction_pb2.ScoreRequest, max_candidates: int) -> None:
    """INVALID_ARGUMENT with every violation of a ScoreRequest (see `score_inputs`)."""
    score_inputs(req, max_candidates)


def warm_up_request() -> prediction_pb2.ScoreRequest:
    """A made-up one-candidate ScoreRequest that the service scores for itself at start."""
    return P.ScoreRequest(
        user_id="warm-up",
        profile=common_pb2.UserProfile(
            user_id="warm-up", segments=["warm-up"], event_count=1, frequency_30d=1
        ),
        context=common_pb2.Context(
            channel=common_pb2.CHANNEL_PUSH, device=common_pb2.DEVICE_MOBILE, locale="en-US"
        ),
        candidates=[
            P.ScoreCandidate(
                item=common_pb2.Item(
                    item_id="warm-up", category_path=["warm-up"], brand="warm-up", price=10.0
                ),
                creative_id="warm-up",
                copy_text="Warm-up copy, never shown.",
            )
        ],
    )


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
