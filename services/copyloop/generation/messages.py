"""Conversion and validation between copyloop.v1 messages and GenerationService domain types."""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import json_format

from copyloop.common.errors import Violations
from copyloop.common.protoconv import dt_to_ts
from copyloop.generation.compliance import CopyConstraints, validate_constraints
from copyloop.generation.domain import GenerationRequest, GenerationResult
from copyloop.generation.llm_client import SamplingParams
from copyloop.generation.pipeline import (
    SOURCE_MODEL,
    SOURCE_MODEL_REGENERATED,
    SOURCE_TEMPLATE_FALLBACK,
    CheckedVariant,
)
from copyloop.generation.prompts import CopyBrief, validate_brief
from copyloop.generation.store import APPROVED, DRAFT, LIVE, RETIRED, CreativeRecord, JobRecord
from copyloop.v1 import common_pb2, generation_pb2

CHANNELS = {
    common_pb2.CHANNEL_AD_COPY: "ad_copy",
    common_pb2.CHANNEL_PRODUCT_DESCRIPTION: "product_description",
    common_pb2.CHANNEL_PUSH: "push",
    common_pb2.CHANNEL_SMS: "sms",
    common_pb2.CHANNEL_EMAIL_SUBJECT: "email_subject",
    common_pb2.CHANNEL_SOCIAL_POST: "social_post",
    common_pb2.CHANNEL_PROMO_BANNER: "promo_banner",
}
CHANNEL_ENUMS = {v: k for k, v in CHANNELS.items()}
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
LOCALES = ("en-US", "zh-CN")
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


def generation_request(
    req: generation_pb2.GenerateRequest, v: Violations, prefix: str = ""
) -> GenerationRequest | None:
    """Validates the request; returns None when it has violations (collected in `v`)."""
    item = req.item
    channel = CHANNELS.get(req.channel, "")
    v.check(bool(channel), f"{prefix}channel", "required: one of " + ", ".join(CHANNELS.values()))
    v.check(req.locale in LOCALES, f"{prefix}locale", f"required: one of {', '.join(LOCALES)}")
    v.check(
        bool(item.item_id) and len(item.item_id) <= 128,
        f"{prefix}item.item_id",
        "required, at most 128 characters",
    )
    v.check(
        0 <= req.variant_count <= MAX_VARIANTS,
        f"{prefix}variant_count",
        f"must be between 0 and {MAX_VARIANTS}",
    )
    v.check(req.tone == 0 or req.tone in TONES, f"{prefix}tone", "unknown tone")
    v.check(
        len(req.audience.profile_summary) <= 500,
        f"{prefix}audience.profile_summary",
        "at most 500 characters",
    )
    v.check(math.isfinite(item.price), f"{prefix}item.price", "must be a finite number")
    sampling = _sampling(req.sampling, v, f"{prefix}sampling")
    c = req.constraints
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
    v.check(len(req.idempotency_key) <= 128, f"{prefix}idempotency_key", "at most 128 characters")
    if v:
        return None
    constraints = CopyConstraints(
        banned_terms=tuple(c.banned_terms),
        must_include=tuple(c.must_include),
        required_disclaimer=c.required_disclaimer,
        max_chars=c.max_chars,
    )
    brief = CopyBrief(
        item_title=item.title,
        brand=item.brand,
        category_path=tuple(item.category_path),
        price=item.price,
        list_price=item.list_price or None,
        currency=item.currency_code or "USD",
        selling_points=tuple(item.selling_points),
        attributes=tuple(sorted(item.attributes.items())),
        channel=channel,
        locale=req.locale,
        tone=TONES.get(req.tone) or DEFAULT_TONES[channel],
        audience_segment=req.audience.segment,
        audience_summary=req.audience.profile_summary,
        max_chars=c.max_chars,
        must_include=tuple(c.must_include),
    )
    for name, problem in validate_brief(brief):
        v.add(prefix + BRIEF_FIELDS.get(name, name), problem)
    for name, problem in validate_constraints(constraints, req.locale):
        v.add(f"{prefix}constraints.{name}", problem)
    if v:
        return None
    return GenerationRequest(
        brief=brief,
        constraints=constraints,
        variant_count=req.variant_count or 3,
        sampling=sampling,
        item_id=item.item_id,
        item_version=item.version,
        store_in_pool=req.store_in_pool,
        template_version=req.template_version or "v1",
    )


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
        model_version=result.model_version
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
        coverage=generation_pb2.AttributeCoverage(
            score=cov.score,
            name_mentioned=cov.product_covered,
            brand_mentioned=bool(cov.brand_covered),
            selling_point_mentioned=bool(cov.selling_point_covered),
        ),
        quality=generation_pb2.QualityScore(
            overall=q.overall,
            fluency=q.fluency or 0.0,
            tone_match=q.tone,
            readability=q.readability,
        ),
        latency_ms=latency_ms,
        source=SOURCES[variant.source],
        creative_id=creative_id,
    )


def variant_json(variant: generation_pb2.Variant) -> dict[str, Any]:
    return json_format.MessageToDict(variant, preserving_proto_field_name=True)


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


def creative_to_proto(r: CreativeRecord) -> generation_pb2.Creative:
    variant = _variant(r)
    return generation_pb2.Creative(
        creative_id=r.creative_id,
        item_id=r.item_id,
        item_version=r.item_version,
        channel=CHANNEL_ENUMS.get(r.channel, 0),
        locale=r.locale,
        segment=r.segment,
        template_version=r.template_version,
        text=r.text,
        status=STATUS_ENUMS[r.status],
        variant=variant,
        create_time=dt_to_ts(r.create_time),
        update_time=dt_to_ts(r.update_time),
    )


def job_to_proto(j: JobRecord) -> generation_pb2.PregenerationJob:
    return generation_pb2.PregenerationJob(
        job_id=j.job_id,
        state=JOB_STATES[j.state],
        total_count=j.total_count,
        done_count=j.done_count,
        failed_count=j.failed_count,
        creative_count=j.creative_count,
        error=j.error,
        create_time=dt_to_ts(j.create_time),
        update_time=dt_to_ts(j.update_time),
    )
