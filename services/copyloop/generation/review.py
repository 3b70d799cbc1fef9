"""Is this copy true and fit to go live? The checks every text passes before it is stored or
served, whoever wrote it: the model, a template, or a person through ReviewCopy.

`truth_findings` (claims against the item and promotion, and sentiment towards the product) is
what the generation pipeline adds to compliance and length; `review_copy` runs everything a
reviewer wants to see for one text, without rewriting it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from copyloop.generation.claims import ItemFacts, Promotion, check_claims
from copyloop.generation.compliance import CopyConstraints, check_compliance
from copyloop.generation.coverage import CoverageReport, attribute_coverage
from copyloop.generation.grammar import frame_of_copy, shape_problems
from copyloop.generation.length import effective_max_chars
from copyloop.generation.prompts import CopyBrief
from copyloop.generation.quality import QualityReport, quality_score
from copyloop.generation.sentiment import score_sentiment


@dataclass(frozen=True)
class Finding:
    """One reason a text may not go live; `start`/`end` locate it in the text when they can."""

    check: str  # claim | sentiment | compliance | length | pii | grammar
    message: str
    start: int | None = None
    end: int | None = None
    claim_kind: str = ""


@dataclass(frozen=True)
class TruthReport:
    findings: tuple[Finding, ...]
    sentiment: float

    @property
    def passed(self) -> bool:
        return not self.findings


@dataclass
class ReviewResult:
    passed: bool
    findings: list[Finding]
    sentiment: float
    coverage: CoverageReport
    quality: QualityReport


def shop_terms(constraints: CopyConstraints) -> tuple[str, ...]:
    """What the shop itself requires the copy to say: its own statements, so supported."""
    disclaimer = constraints.required_disclaimer.strip()
    return constraints.must_include + ((disclaimer,) if disclaimer else ())


def truth_findings(
    text: str,
    brief: CopyBrief,
    promotion: Promotion | None = None,
    required_terms: tuple[str, ...] = (),
) -> TruthReport:
    """Claims the item and promotion do not support, and copy that speaks ill of the product.

    Terms the shop requires (the brief's and the request's must_include, `required_terms`) are the
    shop's own statements, so they count as supported facts."""
    facts = ItemFacts.from_brief(brief, promotion)
    required = brief.must_include + required_terms
    if required:
        facts = replace(facts, selling_points=facts.selling_points + required)
    findings = [
        Finding("claim", f.message, f.start, f.end, f.kind)
        for f in check_claims(text, facts, brief.locale)
    ]
    mood = score_sentiment(text, brief.locale)
    if mood.negative:
        findings.append(
            Finding("sentiment", f"speaks ill of the product (sentiment {mood.score:+.2f})")
        )
    return TruthReport(tuple(findings), mood.score)


def review_copy(
    text: str,
    brief: CopyBrief,
    constraints: CopyConstraints,
    promotion: Promotion | None = None,
) -> ReviewResult:
    """Every check on a text as written: nothing is shortened, redacted or appended, because a
    person reviewing their own line wants to hear what is wrong, not get a different line."""
    findings: list[Finding] = []
    disclaimer = constraints.required_disclaimer.strip()
    limit = effective_max_chars(brief.channel, brief.locale, brief.max_chars, constraints.max_chars)
    if len(text) > limit:
        findings.append(
            Finding("length", f"{len(text)} characters; the limit is {limit}", limit, len(text))
        )
    compliance = check_compliance(text, brief.locale, constraints, limit)  # redacts too
    findings.extend(
        Finding("pii", f"contains personal data ({r.kind}: {r.masked})")
        for r in compliance.redactions
    )
    findings.extend(
        Finding("compliance", f"{v.rule}: {v.detail}")
        for v in compliance.violations
        if v.rule != "length"
    )
    if compliance.disclaimer_added:  # the pipeline appends it; a reviewer must add it
        findings.append(Finding("compliance", f"disclaimer: missing {disclaimer!r}"))
    truth = truth_findings(text, brief, promotion, shop_terms(constraints))
    findings.extend(truth.findings)
    # Sentence shape only: a person's (or a production model's) plain line is not held to the
    # demo copywriter's frame grammar, which the pipeline applies to slot frames.
    # (read with the item's facts taken out: a name is not held to sentence rules)
    shape = shape_problems(frame_of_copy(text, brief), brief.locale)
    findings.extend(Finding("grammar", p) for p in shape)
    coverage = attribute_coverage(text, brief)
    quality = quality_score(text, brief.locale, brief.tone, coverage.score)
    findings.sort(key=lambda f: (f.start is None, f.start or 0))
    return ReviewResult(
        passed=not findings,
        findings=findings,
        sentiment=truth.sentiment,
        coverage=coverage,
        quality=quality,
    )
