"""Conversion and validation between copyloop.v1 messages and GenerationService domain types."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from copyloop.common import validation
from copyloop.common.errors import Violations
from copyloop.common.idempotency import validate_key
from copyloop.common.protoconv import CHANNEL_ENUMS, CHANNEL_NAMES, dt_to_ts, ts_to_epoch
from copyloop.common.vocabulary import LOCALES, describe
from copyloop.generation.claims import Promotion
from copyloop.generation.compliance import CopyConstraints, validate_constraints
from copyloop.generation.coverage import CoverageReport
from copyloop.generation.domain import GenerationRequest, GenerationResult
from copyloop.generation.length import effective_max_chars
from copyloop.generation.llm_client import SamplingParams
from copyloop.generation.pipeline import (
    SOURCE_MODEL,
    SOURCE_MODEL_REGENERATED,
    SOURCE_TEMPLATE_FALLBACK,
    CheckedVariant,
)
from copyloop.generation.prompts import (
    DEFAULT_TEMPLATE_VERSION,
    CopyBrief,
    available_versions,
    validate_brief,
)
from copyloop.generation.prompts.brief import ANGLES, angles_for_segment
from copyloop.generation.quality import QualityReport
from copyloop.generation.review import ReviewResult
from copyloop.generation.store import (
    APPROVED,
    DRAFT,
    LIVE,
    RETIRED,
    CreativeRecord,
    Idempotency,
    JobRecord,
)
from copyloop.v1 import common_pb2, generation_pb2

CHANNELS = CHANNEL_NAMES  # proto enum -> vocabulary name
TONES = {
    generation_pb2.TONE_FRIENDLY: "friendly",
    generation_pb2.TONE_PROFESSIONAL: "professional",
    generation_pb2.TONE_PLAYFUL: "playful",
    generation_pb2.TONE_URGENT: "urgent",
    generation_pb2.TONE_LUXURY: "luxury",
    generation_pb2.TONE_INFORMATIVE: "informative",
}
# The tone a channel gets when the request leaves it unset.
DEFAULT_TONES = {
    "ad_copy": "friendly",
    "product_description": "informative",
    "push": "playful",
    "sms": "friendly",
    "email_subject": "friendly",
    "social_post": "playful",
    "promo_banner": "urgent",
}
STATUSES = {
    generation_pb2.CREATIVE_STATUS_DRAFT: DRAFT,
    generation_pb2.CREATIVE_STATUS_APPROVED: APPROVED,
    generation_pb2.CREATIVE_STATUS_LIVE: LIVE,
    generation_pb2.CREATIVE_STATUS_RETIRED: RETIRED,
}
STATUS_ENUMS = {v: k for k, v in STATUSES.items()}
SOURCES = {
    SOURCE_MODEL: generation_pb2.VARIANT_SOURCE_MODEL,
    SOURCE_MODEL_REGENERATED: generation_pb2.VARIANT_SOURCE_MODEL_REGENERATED,
    SOURCE_TEMPLATE_FALLBACK: generation_pb2.VARIANT_SOURCE_TEMPLATE_FALLBACK,
}
JOB_STATES = {
    "pending": generation_pb2.JOB_STATE_PENDING,
    "running": generation_pb2.JOB_STATE_RUNNING,
    "succeeded": generation_pb2.JOB_STATE_SUCCEEDED,
    "failed": generation_pb2.JOB_STATE_FAILED,
}
# Where a CopyBrief field comes from in a GenerateRequest (for field violations).
BRIEF_FIELDS = {
    "item_title": "item.title",
    "price": "item.price",
    "list_price": "item.list_price",
    "channel": "channel",
    "locale": "locale",
    "tone": "tone",
    "max_chars": "constraints.max_chars",
}
MAX_VARIANTS = 8
MAX_QUERIES = 1000
MAX_PREGENERATION_UNITS = 10_000
# Where each request string lands (generation/schema.py); the rest of common.proto is shared.
LIMITS = validation.limits(
    {
        "copyloop.v1.Audience.segment": 128,
        "copyloop.v1.Audience.profile_summary": 500,
        "copyloop.v1.GenerateRequest.idempotency_key": 128,
        "copyloop.v1.GenerateRequest.template_version": 32,
        "copyloop.v1.GenerateRequest.angle": 32,
        "copyloop.v1.GenerateRequest.model_version": 32,
        "copyloop.v1.Promotion.description": 500,
        "copyloop.v1.CreativeQuery.item_id": 128,
        "copyloop.v1.GetCreativesRequest.locale": 16,
        "copyloop.v1.GetCreativesRequest.segment": 128,
        "copyloop.v1.GetCreativesRequest.model_version": 32,
        "copyloop.v1.GetCreativesRequest.template_version": 32,
        "copyloop.v1.ListCreativesRequest.item_id": 128,
        "copyloop.v1.ApproveCreativeRequest.creative_id": 64,
        "copyloop.v1.ApproveCreativeRequest.reviewer": 128,
        "copyloop.v1.RetireCreativeRequest.creative_id": 64,
        "copyloop.v1.RetireCreativeRequest.reason": 1000,
        "copyloop.v1.PregenerateCreativesRequest.locales": 16,
        "copyloop.v1.PregenerateCreativesRequest.segments": 128,
        "copyloop.v1.PregenerateCreativesRequest.idempotency_key": 128,
        "copyloop.v1.PregenerateCreativesRequest.model_version": 32,
        "copyloop.v1.PregenerateCreativesRequest.template_version": 32,
        "copyloop.v1.GetPregenerationJobRequest.job_id": 64,
        "copyloop.v1.ReviewCopyRequest.locale": 16,
        "copyloop.v1.ReviewCopyRequest.segment": 128,
    }
)


def validate_request(request: Message) -> None:
    """The edge checks every GenerationService RPC runs first (see copyloop.common.validation)."""
    v = Violations()
    validation.scan(request, v, LIMITS)
    v.raise_if_any()


def require(field_name: str, value: str) -> None:
    """An id the request must name."""
    v = Violations()
    v.check(bool(value) and len(value) <= 128, field_name, "required, at most 128 characters")
    v.raise_if_any()


def generate_request(req: generation_pb2.GenerateRequest, prefix: str = "") -> GenerationRequest:
    """A validated Generate request; raises INVALID_ARGUMENT with every violation."""
    v = Violations()
    parsed = generation_request(req, v, prefix)
    v.raise_if_any()
    assert parsed is not None
    return parsed


_MODEL_VERSION_RE = re.compile(r"[1-9][0-9]{0,17}")


def check_model_version(v: Violations, path: str, version: str) -> None:
    """A Triton model version is a positive integer ("2"); "" = the newest loaded. Whether
    Triton serves it is asked later (FAILED_PRECONDITION when it does not)."""
    v.check(
        not version or bool(_MODEL_VERSION_RE.fullmatch(version)),
        path,
        "a copywriter model version number such as 2, or empty for the newest",
    )


@dataclass(frozen=True)
class CreativesQuery:
    items: list[tuple[str, int]]  # (item id, item version or 0 = any)
    channel: str
    locale: str
    segment: str
    status: str
    per_item: int
    fields: frozenset[str] = frozenset()  # the Creative fields wanted; empty = all
    model_version: str = ""  # only creatives this copywriter version wrote; "" = any
    template_version: str = ""  # only creatives written with this template version; "" = any


CREATIVE_FIELDS = frozenset(generation_pb2.Creative.DESCRIPTOR.fields_by_name)


def creatives_query(req: generation_pb2.GetCreativesRequest) -> CreativesQuery:
    v = Violations()
    v.check(1 <= len(req.queries) <= MAX_QUERIES, "queries", f"1 to {MAX_QUERIES} queries required")
    for n, q in enumerate(req.queries):
        v.check(bool(q.item_id), f"queries[{n}].item_id", "required")
    channel = CHANNELS.get(req.channel, "")
    v.check(bool(channel), "channel", "required")
    v.check(req.locale in LOCALES, "locale", f"required: {describe(LOCALES)}")
    v.check(0 <= req.max_per_item <= 20, "max_per_item", "must be between 0 and 20")
    unknown = sorted(set(req.read_mask.paths) - CREATIVE_FIELDS)
    v.check(
        not unknown,
        "read_mask",
        f"unknown Creative fields {unknown}: use top-level names such as creative_id, text",
    )
    check_model_version(v, "model_version", req.model_version)
    v.raise_if_any()
    return CreativesQuery(
        items=[(q.item_id, q.item_version) for q in req.queries],
        channel=channel,
        locale=req.locale,
        segment=req.segment,
        status=STATUSES.get(req.status, LIVE),
        per_item=req.max_per_item or 5,
        fields=frozenset(req.read_mask.paths),
        model_version=req.model_version,
        template_version=req.template_version,
    )


def pregeneration_requests(
    req: generation_pb2.PregenerateCreativesRequest,
) -> list[GenerationRequest]:
    """One generation request per (item, channel, locale, segment), validated together."""
    v = Violations()
    validate_key(req.idempotency_key)
    v.check(1 <= len(req.items) <= MAX_PREGENERATION_UNITS, "items", "1 to 10,000 items required")
    v.check(bool(req.channels), "channels", "at least one channel required")
    v.check(bool(req.locales), "locales", "at least one locale required")
    v.check(0 <= req.variants_per_item <= 8, "variants_per_item", "must be between 0 and 8")
    units = len(req.items) * len(req.channels) * len(req.locales) * max(1, len(req.segments))
    v.check(
        units <= MAX_PREGENERATION_UNITS,
        "items",
        f"items x channels x locales x segments must be <= {MAX_PREGENERATION_UNITS} (got {units})",
    )
    v.raise_if_any()
    parsed = []
    for n, item in enumerate(req.items):
        for channel in req.channels:
            for locale in req.locales:
                for segment in list(req.segments) or [""]:
                    for angle, count in angle_plan(segment, req.variants_per_item or 2):
                        one = generation_pb2.GenerateRequest(
                            item=item,
                            channel=channel,
                            locale=locale,
                            audience=generation_pb2.Audience(segment=segment),
                            variant_count=count,
                            angle=angle,
                            model_version=req.model_version,
                            template_version=req.template_version,
                        )
                        found = generation_request(one, v, prefix=f"items[{n}].")
                        if found is not None:
                            parsed.append(found)
    v.raise_if_any()
    return parsed


def angle_plan(
    segment: str, variants: int, most_angles: int | None = None
) -> list[tuple[str, int]]:
    """How a segment's variants are spread over its best angles: [(angle, count), ...].

    A pool slot gets copy in more than one angle, so the bandit can learn which one the segment
    answers to; the segment's preferred angle gets the larger share. Copy for a named segment
    keeps to its best two angles; copy for everyone ("") takes one angle per variant, because
    it is what every segment chooses from, and each segment answers to different angles."""
    if most_angles is None:
        most_angles = 2 if segment else variants
    angles = angles_for_segment(segment)[: max(1, min(most_angles, variants))]
    base, extra = divmod(variants, len(angles))
    return [(a, base + (i < extra)) for i, a in enumerate(angles) if base + (i < extra)]


def generation_request(
    req: generation_pb2.GenerateRequest, v: Violations, prefix: str = ""
) -> GenerationRequest | None:
    """Validates the request; returns None when it has violations (collected in `v`)."""
    v.check(
        0 <= req.variant_count <= MAX_VARIANTS,
        f"{prefix}variant_count",
        f"must be between 0 and {MAX_VARIANTS}",
    )
    v.check(
        len(req.audience.profile_summary) <= 500,
        f"{prefix}audience.profile_summary",
        "at most 500 characters",
    )
    v.check(len(req.idempotency_key) <= 128, f"{prefix}idempotency_key", "at most 128 characters")
    check_model_version(v, f"{prefix}model_version", req.model_version)
    sampling = _sampling(req.sampling, v, f"{prefix}sampling")
    brief, constraints = _brief(
        req.item,
        req.channel,
        req.locale,
        req.tone,
        req.constraints,
        v,
        prefix,
        segment=req.audience.segment,
        summary=req.audience.profile_summary,
    )
    promotion = promotion_from_proto(req.promotion, v, f"{prefix}promotion")
    if v or brief is None or constraints is None:
        return None
    angle = req.angle or angles_for_segment(brief.audience_segment)[0]
    v.check(angle in ANGLES, f"{prefix}angle", f"one of {describe(ANGLES)}")
    v.check(
        angle != "urgency" or (promotion is not None and promotion.end_time is not None),
        f"{prefix}angle",
        "urgency needs a promotion with an end_time: copy may not invent a deadline",
    )
    template_version = req.template_version or DEFAULT_TEMPLATE_VERSION
    v.check(
        template_version in _template_versions(),
        f"{prefix}template_version",
        f"unknown; one of {describe(_template_versions())}",
    )
    if v:
        return None
    return GenerationRequest(
        brief=dataclasses.replace(brief, angle=angle),
        constraints=constraints,
        variant_count=req.variant_count or 3,
        sampling=sampling,
        item_id=req.item.item_id,
        item_version=req.item.version,
        store_in_pool=req.store_in_pool,
        template_version=template_version,
        promotion=promotion,
        model_version=req.model_version,
    )


@functools.cache
def _template_versions() -> tuple[str, ...]:
    """The versions shipped with the service (a folder each; read once)."""
    return tuple(available_versions())


def _brief(
    item: common_pb2.Item,
    channel_enum: common_pb2.Channel.ValueType,
    locale: str,
    tone: generation_pb2.Tone.ValueType,
    c: generation_pb2.CopyConstraints,
    v: Violations,
    prefix: str,
    segment: str = "",
    summary: str = "",
) -> tuple[CopyBrief | None, CopyConstraints | None]:
    """The brief and constraints every copy check works from, validated field by field."""
    channel = CHANNELS.get(channel_enum, "")
    v.check(
        bool(channel), f"{prefix}channel", "required: one of " + describe(tuple(CHANNELS.values()))
    )
    v.check(locale in LOCALES, f"{prefix}locale", f"required: {describe(LOCALES)}")
    v.check(
        bool(item.item_id) and len(item.item_id) <= 128,
        f"{prefix}item.item_id",
        "required, at most 128 characters",
    )
    v.check(tone == 0 or tone in TONES, f"{prefix}tone", "unknown tone")
    v.check(math.isfinite(item.price), f"{prefix}item.price", "must be a finite number")
    v.check(math.isfinite(item.list_price), f"{prefix}item.list_price", "must be a finite number")
    v.check(len(segment) <= 64, f"{prefix}segment", "at most 64 characters")
    v.check(
        c.max_chars >= 0, f"{prefix}constraints.max_chars", "must be >= 0 (0 = channel default)"
    )
    v.check(len(c.must_include) <= 10, f"{prefix}constraints.must_include", "at most 10 terms")
    v.check(len(c.banned_terms) <= 200, f"{prefix}constraints.banned_terms", "at most 200 terms")
    v.check(
        len(c.required_disclaimer) <= 200,
        f"{prefix}constraints.required_disclaimer",
        "at most 200 characters",
    )
    if v:
        return None, None
    constraints = CopyConstraints(
        banned_terms=tuple(c.banned_terms),
        must_include=tuple(c.must_include),
        required_disclaimer=c.required_disclaimer,
        max_chars=c.max_chars,
    )
    brief = item_brief(
        item,
        channel=channel,
        locale=locale,
        tone=TONES.get(tone) or DEFAULT_TONES[channel],
        audience_segment=segment,
        audience_summary=summary,
        max_chars=c.max_chars,
        must_include=tuple(c.must_include),
    )
    for name, problem in validate_brief(brief):
        v.add(prefix + BRIEF_FIELDS.get(name, name), problem)
    for name, problem in validate_constraints(constraints, locale):
        v.add(f"{prefix}constraints.{name}", problem)
    return (None, None) if v else (brief, constraints)


def item_brief(item: common_pb2.Item, **fields: Any) -> CopyBrief:
    """A CopyBrief of the item's facts (the one place they are read from the proto) plus
    `fields` (channel, locale, tone, audience, limits)."""
    return CopyBrief(
        item_title=item.title,
        brand=item.brand,
        category_path=tuple(item.category_path),
        price=item.price,
        list_price=item.list_price or None,
        currency=item.currency_code or "USD",
        selling_points=tuple(item.selling_points),
        attributes=tuple(sorted(item.attributes.items())),
        **fields,
    )


def promotion_from_proto(
    p: generation_pb2.Promotion, v: Violations, prefix: str
) -> Promotion | None:
    """None when the request names no promotion (every field at its default)."""
    if p.ByteSize() == 0:
        return None
    v.check(
        math.isfinite(p.discount_percent) and 0 <= p.discount_percent < 100,
        f"{prefix}.discount_percent",
        "must be in [0, 100)",
    )
    v.check(len(p.description) <= 500, f"{prefix}.description", "at most 500 characters")
    offers = tuple(
        name
        for name, on in (
            ("free_shipping", p.free_shipping),
            ("bogo", p.buy_one_get_one),
            ("gift", p.free_gift),
        )
        if on
    )
    return Promotion(
        discount_pct=p.discount_percent,
        offers=offers,
        end_time=ts_to_epoch(p.end_time) if p.HasField("end_time") else None,
        description=p.description,
    )


@dataclass(frozen=True)
class ReviewCall:
    """A validated ReviewCopy request."""

    text: str
    brief: CopyBrief
    constraints: CopyConstraints
    promotion: Promotion | None


def review_request(req: generation_pb2.ReviewCopyRequest) -> ReviewCall:
    """Validates a ReviewCopy request; raises INVALID_ARGUMENT with every violation."""
    v = Violations()
    v.check(req.HasField("item"), "item", "required")
    v.check(bool(req.text.strip()), "text", "required")
    brief, constraints = _brief(
        req.item, req.channel, req.locale, req.tone, req.constraints, v, "", segment=req.segment
    )
    promotion = promotion_from_proto(req.promotion, v, "promotion")
    if brief is not None:
        hard_limit = 4 * effective_max_chars(brief.channel, brief.locale)
        v.check(
            len(req.text) <= hard_limit,
            "text",
            f"at most {hard_limit} characters (4x the channel's limit)",
        )
    v.raise_if_any()
    assert brief is not None and constraints is not None
    return ReviewCall(req.text, brief, constraints, promotion)


def review_to_proto(
    result: ReviewResult, effect: generation_pb2.CopyEffect | None, degradations: list[str]
) -> generation_pb2.ReviewCopyResponse:
    reply = generation_pb2.ReviewCopyResponse(
        passed=result.passed,
        sentiment=result.sentiment,
        coverage=_coverage(result.coverage),
        quality=_quality(result.quality),
        degradations=degradations,
    )
    for f in result.findings:
        finding = reply.findings.add(check=f.check, message=f.message, claim_kind=f.claim_kind)
        if f.start is not None and f.end is not None:
            finding.span.start, finding.span.end = f.start, f.end
    if effect is not None:
        reply.predicted_effect.CopyFrom(effect)
    return reply


def _sampling(s: generation_pb2.SamplingParameters, v: Violations, prefix: str) -> SamplingParams:
    if s.HasField("temperature"):
        v.check(0 <= s.temperature <= 2, f"{prefix}.temperature", "must be between 0 and 2")
    if s.HasField("top_p"):
        v.check(0 < s.top_p <= 1, f"{prefix}.top_p", "must be in (0, 1]")
    if s.HasField("top_k"):
        v.check(s.top_k >= 0, f"{prefix}.top_k", "must be >= 0")
    if s.HasField("max_tokens"):
        v.check(1 <= s.max_tokens <= 512, f"{prefix}.max_tokens", "must be between 1 and 512")
    return SamplingParams(
        temperature=s.temperature if s.HasField("temperature") else 0.8,
        top_p=s.top_p if s.HasField("top_p") else 0.95,
        top_k=s.top_k if s.HasField("top_k") else 50,
        seed=s.seed if s.HasField("seed") else None,
        max_tokens=s.max_tokens if s.HasField("max_tokens") else 0,
        frequency_penalty=0.5,  # small models loop without it ("$19.99.99.99...")
    )


def variant_to_proto(
    variant: CheckedVariant, result: GenerationResult, latency_ms: float, creative_id: str = ""
) -> generation_pb2.Variant:
    c, cov, q = variant.compliance, variant.coverage, variant.quality
    return generation_pb2.Variant(
        text=variant.text,
        template_id=result.template_id,
        template_version=result.template_version,
        model_name=result.model_name if variant.source != SOURCE_TEMPLATE_FALLBACK else "template",
        model_version=result.version_of(variant)
        if variant.source != SOURCE_TEMPLATE_FALLBACK
        else variant.template,
        compliance=generation_pb2.ComplianceReport(
            passed=c.passed,
            violations=[
                generation_pb2.ComplianceViolation(rule=x.rule, detail=x.detail)
                for x in c.violations
            ],
            redactions=[r.kind for r in c.redactions],
            disclaimer_added=c.disclaimer_added,
            truncated=bool(variant.length and variant.length.truncated),
        ),
        coverage=_coverage(cov),
        quality=_quality(q),
        latency_ms=latency_ms,
        source=SOURCES[variant.source],
        creative_id=creative_id,
        angle=variant.angle,
        sentiment=variant.sentiment,
    )


def _coverage(cov: CoverageReport) -> generation_pb2.AttributeCoverage:
    return generation_pb2.AttributeCoverage(
        score=cov.score,
        name_mentioned=cov.product_covered,
        brand_mentioned=bool(cov.brand_covered),
        selling_point_mentioned=bool(cov.selling_point_covered),
    )


def _quality(q: QualityReport) -> generation_pb2.QualityScore:
    return generation_pb2.QualityScore(
        overall=q.overall, fluency=q.fluency or 0.0, tone_match=q.tone, readability=q.readability
    )


def variant_json(variant: generation_pb2.Variant) -> dict[str, Any]:
    return json_format.MessageToDict(variant, preserving_proto_field_name=True)


def variant_record(variant: CheckedVariant, result: GenerationResult) -> dict[str, Any]:
    """What the pool stores of a variant: the proto's JSON, so readers need no domain types."""
    return variant_json(variant_to_proto(variant, result, result.latency_ms))


_VARIANTS: dict[str, generation_pb2.Variant] = {}  # creative id -> parsed variant (immutable)


def _variant(r: CreativeRecord) -> generation_pb2.Variant:
    """A creative's variant never changes once written, so it is parsed from JSON once."""
    cached = _VARIANTS.get(r.creative_id)
    if cached is None:
        if len(_VARIANTS) > 100_000:
            _VARIANTS.clear()
        cached = json_format.ParseDict(
            r.variant, generation_pb2.Variant(), ignore_unknown_fields=True
        )
        cached.creative_id = r.creative_id
        _VARIANTS[r.creative_id] = cached
    return cached


def creative_to_proto(
    r: CreativeRecord, fields: frozenset[str] = frozenset()
) -> generation_pb2.Creative:
    """The creative as a message: every field, or only `fields` (a read mask)."""
    if fields:
        return _partial_creative(r, fields)
    variant = _variant(r)
    return generation_pb2.Creative(
        creative_id=r.creative_id,
        item_id=r.item_id,
        item_version=r.item_version,
        channel=CHANNEL_ENUMS.get(r.channel, common_pb2.CHANNEL_UNSPECIFIED),
        locale=r.locale,
        segment=r.segment,
        template_version=r.template_version,
        text=r.text,
        status=STATUS_ENUMS[r.status],
        variant=variant,
        create_time=dt_to_ts(r.create_time),
        update_time=dt_to_ts(r.update_time),
        angle=variant.angle,
        model_version=r.model_version,
    )


def _partial_creative(r: CreativeRecord, fields: frozenset[str]) -> generation_pb2.Creative:
    values: dict[str, Any] = {}
    for name in fields:
        if name == "channel":
            values[name] = CHANNEL_ENUMS.get(r.channel, common_pb2.CHANNEL_UNSPECIFIED)
        elif name == "status":
            values[name] = STATUS_ENUMS[r.status]
        elif name == "variant":
            values[name] = _variant(r)
        elif name == "angle":
            values[name] = _variant(r).angle
        elif name in ("create_time", "update_time"):
            values[name] = dt_to_ts(getattr(r, name))
        else:
            values[name] = getattr(r, name)
    return generation_pb2.Creative(**values)


def job_to_proto(j: JobRecord) -> generation_pb2.PregenerationJob:
    return generation_pb2.PregenerationJob(
        job_id=j.job_id,
        state=JOB_STATES[j.state],
        total_count=j.total_count,
        done_count=j.done_count,
        failed_count=j.failed_count,
        creative_count=j.creative_count,
        template_count=j.template_count,
        error=j.error,
        create_time=dt_to_ts(j.create_time),
        update_time=dt_to_ts(j.update_time),
    )


def idempotency(method: str, request: Any) -> Idempotency:
    """The request's idempotency key with a fingerprint of everything else it asks, so a retry
    gets the first reply and a reused key with a different request is refused."""
    key = request.idempotency_key
    validate_key(key)
    if not key:
        return Idempotency(method, "", "")
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("idempotency_key")
    digest = hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()
    return Idempotency(method, key, digest)
