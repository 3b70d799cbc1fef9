"""From raw LLM outputs to checked, de-duplicated, ordered copy variants.

The caller (the gRPC servicer) owns the LLM loop: it calls `process_variants` with what the
model wrote, regenerates `result.shortfall(wanted)` more if it can afford to (marking them
attempt >= 1 and passing all outputs again), and finally calls `fill_with_fallbacks` so a
request always gets its variants. Every step is pure and deterministic.

Per output: clean -> fill slots (a frame such as "{discount_pct} off {title}" gets the item's
facts; an unknown slot or a fact the item lacks rejects it with rule "slot", and a currency
amount or percentage typed outside a slot that is not the item's own rejects it with rule
"raw_number") -> remove personal data -> fit the length (leaving room for a missing
disclaimer) -> compliance -> coverage and quality. Plain text without slots is checked as
is. Passing variants are ordered by quality and near-duplicates of a better one are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from copyloop.generation.claims import Promotion
from copyloop.generation.compliance import (
    ComplianceReport,
    CopyConstraints,
    Violation,
    check_compliance,
    contains_term,
    disclaimer_reserve,
)
from copyloop.generation.coverage import CoverageReport, attribute_coverage
from copyloop.generation.dedupe import DEFAULT_THRESHOLD, dedupe
from copyloop.generation.fallback import ANGLE_LABEL, build_fallbacks, format_money
from copyloop.generation.fluency import non_words
from copyloop.generation.frames import frame_of
from copyloop.generation.grammar import grammar_problems, item_facts
from copyloop.generation.length import LengthResult, effective_max_chars, fit_to_length
from copyloop.generation.pii import redact_pii
from copyloop.generation.prompts.brief import CopyBrief, validate_brief
from copyloop.generation.quality import QualityReport, QualityWeights, quality_score
from copyloop.generation.review import shop_terms, truth_findings
from copyloop.generation.slots import (
    SLOT_RE,
    fill_slots_detailed,
    slot_values,
    unslotted_amounts,
)

SOURCE_MODEL = "model"
SOURCE_MODEL_REGENERATED = "model_regenerated"
SOURCE_TEMPLATE_FALLBACK = "template_fallback"


@dataclass(frozen=True)
class RawOutput:
    """One text the LLM returned, with its scores when the backend reports them."""

    text: str
    cumulative_logprob: float | None = None
    num_output_tokens: int | None = None
    attempt: int = 0  # 0 = first generation; >= 1 = a regeneration


@dataclass(frozen=True)
class PipelineSettings:
    dedupe_threshold: float = DEFAULT_THRESHOLD
    weights: QualityWeights = QualityWeights()
    # Variants whose attribute coverage is below this are rejected (rule "coverage").
    # 0.3 = at least one of product, brand, selling point; copy that names none of them
    # (e.g. "Free shipping!") is useless in a feed. Fallbacks are exempt.
    min_coverage: float = 0.3
    # The served model learned its sentences from the frame grammar (the demo copywriter): all
    # of its slot frames are held to it, not only those in the grammar's words.
    strict_grammar: bool = False


@dataclass
class CheckedVariant:
    text: str
    source: str  # model | model_regenerated | template_fallback
    compliance: ComplianceReport
    coverage: CoverageReport
    quality: QualityReport
    raw_index: int | None = None  # position in raw_outputs; None for fallbacks
    length: LengthResult | None = None  # None for fallbacks (built to fit)
    template: str = ""  # the fallback template used
    frame: str = ""  # the model's text before slot filling (== text's source for plain copy)
    slots: tuple[str, ...] = ()  # slot names the frame used
    angle: str = ""  # the brief's marketing angle, when it set one
    sentiment: float = 0.0  # towards the product, in [-1, 1]


@dataclass
class RejectedOutput:
    raw_index: int
    raw_text: str
    source: str
    reasons: list[Violation]  # compliance violations, or "slot" / "raw_number" / "fluency" /
    # "grammar" / "duplicate" / "coverage" / "repetition" / "language"
    compliance: ComplianceReport | None = None


@dataclass
class PipelineResult:
    variants: list[CheckedVariant]  # best first; fallbacks (if any) after model variants
    rejected: list[RejectedOutput]
    max_chars: int
    constraints: CopyConstraints  # request constraints merged with the brief's

    def shortfall(self, wanted: int) -> int:
        """How many more variants are needed to reach `wanted`."""
        return max(0, wanted - len(self.variants))


_SPECIAL_TOKEN_RE = re.compile(r"<\|[a-z_]+\|>|</?s>|\[/?INST\]", re.IGNORECASE)
_LEADING_LABEL_RE = re.compile(r"^\s*(?:copy|文案|广告语|answer|output)\s*[:：]\s*", re.IGNORECASE)
_LIST_MARKER_RE = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)、])\s+")
_QUOTE_PAIRS = (('"', '"'), ("'", "'"), ("“", "”"), ("「", "」"), ("『", "』"), ("‘", "’"))


def clean_model_output(text: str) -> str:
    """Strip what models wrap copy in: special tokens, 'Copy:' labels, list markers, quotes."""
    text = _SPECIAL_TOKEN_RE.sub(" ", text or "").strip()
    text = _LEADING_LABEL_RE.sub("", text)
    text = _LIST_MARKER_RE.sub("", text).strip()
    for left, right in _QUOTE_PAIRS:
        inner = text[len(left) : -len(right)]
        if len(text) >= 2 and text.startswith(left) and text.endswith(right) and left not in inner:
            text = inner.strip()
            break
    return text


def merge_constraints(brief: CopyBrief, constraints: CopyConstraints) -> CopyConstraints:
    """The request's constraints plus the brief's must-include terms and limit."""
    return CopyConstraints(
        banned_terms=tuple(dict.fromkeys(t for t in constraints.banned_terms if t.strip())),
        must_include=tuple(
            dict.fromkeys(t for t in constraints.must_include + brief.must_include if t.strip())
        ),
        required_disclaimer=constraints.required_disclaimer.strip(),
        max_chars=effective_max_chars(
            brief.channel, brief.locale, brief.max_chars, constraints.max_chars
        ),
    )


def _score(
    text: str, brief: CopyBrief, settings: PipelineSettings, raw: RawOutput | None
) -> tuple[CoverageReport, QualityReport]:
    coverage = attribute_coverage(text, brief)
    quality = quality_score(
        text,
        brief.locale,
        brief.tone,
        coverage.score,
        cumulative_logprob=raw.cumulative_logprob if raw else None,
        num_output_tokens=raw.num_output_tokens if raw else None,
        weights=settings.weights,
    )
    return coverage, quality


def _check_one(
    text: str, brief: CopyBrief, constraints: CopyConstraints
) -> tuple[ComplianceReport, LengthResult]:
    redaction = redact_pii(text)
    budget = constraints.max_chars
    disclaimer = constraints.required_disclaimer
    if disclaimer and not contains_term(redaction.text, disclaimer):
        reserved = budget - disclaimer_reserve(disclaimer, brief.locale)
        # With no room left for copy, keep the copy and let compliance report the disclaimer.
        budget = reserved if reserved > 0 else budget
    fitted = fit_to_length(redaction.text, budget)
    report = check_compliance(
        fitted.text, brief.locale, constraints, constraints.max_chars, redaction.redactions
    )
    return report, fitted


_HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def speaks_locale(frame: str, locale: str) -> bool:
    """The words the copywriter chose (outside the item's facts) are in the shopper's language:
    a zh-CN frame has Chinese of its own beyond the slots, an en-US one English words. A title
    followed by punctuation ("{title}。。") is not copy in any language."""
    own = SLOT_RE.sub(" ", frame)
    if locale == "zh-CN":
        return len(_HAN.findall(own)) >= 2
    return len(_LATIN_WORD.findall(own)) >= 1


_CLAUSE_END = re.compile(r"[.!?。！？，,;；:：]+")
_TITLE_STEM = re.compile(r"\s*(?:,|，|\(|（| - | – )")  # where a title's variant starts
SHORT_COPY_CHARS = 100  # a one-line text: push, SMS, ad line, email subject


def unreadable_reason(text: str, brief: CopyBrief) -> Violation | None:
    """What no marketer would publish however true it is: a broken character (a byte-level
    model can emit half a UTF-8 sequence), the same clause twice ("Reply STOP to opt out.
    Reply STOP to opt out."), or the product's name or price three times (twice in one line)."""
    if "\ufffd" in text:
        return Violation("encoding", "contains a broken character")
    clauses = [" ".join(c.casefold().split()) for c in _CLAUSE_END.split(text)]
    seen: set[str] = set()
    for clause in clauses:
        if len(clause) >= 6 and clause in seen:
            return Violation("repetition", f"says {clause!r} twice")
        seen.add(clause)
    # The name as copy says it: the full title, or its stem before a variant ("Endurance Bike
    # Helmet" of "Endurance Bike Helmet, White"). A one-line text (push, SMS, ad line) that
    # names the product twice reads as a glitch ("X makes every day X!"); longer copy may
    # name it twice, never three times.
    # Its short name counts too ("Rainbow Plush Bear! ... Why wait? Plush Bear!"): every
    # mention of the full name contains it, so its count is the number of times named.
    folded = text.casefold()
    names = {
        brief.item_title.casefold().strip(),
        _TITLE_STEM.split(brief.item_title)[0],
        slot_values(brief).get("short_title", ""),
    }
    named = max((folded.count(n) for n in {n.casefold().strip() for n in names} if n), default=0)
    allowed = 1 if len(text) <= SHORT_COPY_CHARS else 2
    if named > allowed:
        return Violation("repetition", f"names the product {named} times")
    # The same goes for the price: "Just $23.99. Your cart is what $23.99." says one fact
    # as filler.
    for amount in (brief.price, brief.list_price or 0.0):
        if amount > 0:
            shown = format_money(amount, brief.currency, brief.locale)
            times = len(re.findall(re.escape(shown) + r"(?![\d])", text))
            if times > allowed:
                return Violation("repetition", f"states {shown} {times} times")
    return None


def _facts(brief: CopyBrief) -> list[str]:
    """The item's own words, which copy may name however rare they are."""
    return [
        brief.item_title,
        brief.brand,
        *brief.category_path,
        *brief.selling_points,
        *(f"{key} {value}" for key, value in brief.attributes),
    ]


def process_variants(
    brief: CopyBrief,
    constraints: CopyConstraints,
    raw_outputs: Sequence[RawOutput],
    settings: PipelineSettings = PipelineSettings(),
    existing_texts: Sequence[str] = (),
    promotion: Promotion | None = None,
) -> PipelineResult:
    """Check, order and de-duplicate the model's outputs: every claim must be supported by the
    item (or `promotion`) and the copy must not speak ill of the product.

    `existing_texts` are copies already approved for this slot (e.g. in the creative pool):
    near-duplicates of them are rejected too.
    """
    problems = validate_brief(brief)
    if problems:
        raise ValueError("invalid CopyBrief: " + "; ".join(f"{f}: {p}" for f, p in problems))
    merged = merge_constraints(brief, constraints)
    passed: list[CheckedVariant] = []
    rejected: list[RejectedOutput] = []
    for index, raw in enumerate(raw_outputs):
        source = SOURCE_MODEL if raw.attempt == 0 else SOURCE_MODEL_REGENERATED
        frame = clean_model_output(raw.text)
        fill = fill_slots_detailed(frame, brief)
        if fill.filled is None:
            rejected.append(
                RejectedOutput(index, raw.text, source, [Violation("slot", fill.problem)])
            )
            continue
        if frame.strip() and not speaks_locale(frame, brief.locale):
            reason = Violation("language", f"the copy around the facts is not in {brief.locale}")
            rejected.append(RejectedOutput(index, raw.text, source, [reason]))
            continue
        strange = non_words(frame, brief.locale, _facts(brief))
        if strange:
            reason = Violation("fluency", "not words: " + ", ".join(dict.fromkeys(strange)))
            rejected.append(RejectedOutput(index, raw.text, source, [reason]))
            continue
        # Sentences a marketer would publish, not a splice of two ("Watch what {title}!").
        broken = grammar_problems(
            frame,
            brief.locale,
            item_facts(brief),
            shop_terms(merged),
            strict=settings.strict_grammar,
        )
        if broken:
            reason = Violation("grammar", broken[0])
            rejected.append(RejectedOutput(index, raw.text, source, [reason]))
            continue
        invented = unslotted_amounts(frame, brief)
        if invented:
            reason = Violation("raw_number", ", ".join(invented))
            rejected.append(RejectedOutput(index, raw.text, source, [reason]))
            continue
        unreadable = unreadable_reason(fill.filled.text, brief)
        if unreadable:
            rejected.append(RejectedOutput(index, raw.text, source, [unreadable]))
            continue
        report, fitted = _check_one(fill.filled.text, brief, merged)
        if not report.passed:
            reasons = list(report.violations)
            rejected.append(RejectedOutput(index, raw.text, source, reasons, report))
            continue
        # Again on what will be shown: cut to the channel's length, a long text that could
        # name the price twice becomes a one-liner that may not ("... for $20.99. $20.99.").
        unreadable = unreadable_reason(report.text, brief)
        if unreadable:
            rejected.append(RejectedOutput(index, raw.text, source, [unreadable], report))
            continue
        truth = truth_findings(report.text, brief, promotion, shop_terms(merged))
        if not truth.passed:
            reasons = [Violation(f.check, f.message) for f in truth.findings]
            rejected.append(RejectedOutput(index, raw.text, source, reasons, report))
            continue
        coverage, quality = _score(report.text, brief, settings, raw)
        if coverage.score < settings.min_coverage:
            reason = Violation("coverage", f"{coverage.score:.2f} < {settings.min_coverage:.2f}")
            rejected.append(RejectedOutput(index, raw.text, source, [reason], report))
            continue
        passed.append(
            CheckedVariant(
                report.text,
                source,
                report,
                coverage,
                quality,
                index,
                fitted,
                frame=frame,
                slots=fill.filled.slots,
                angle=brief.angle,
                sentiment=truth.sentiment,
            )
        )

    passed.sort(key=lambda v: (-v.quality.overall, v.raw_index))
    passed = _one_per_frame(passed, brief, raw_outputs, rejected)
    keep, drops = dedupe([v.text for v in passed], settings.dedupe_threshold, existing_texts)
    for drop in drops:
        variant = passed[drop.index]
        target = (
            f"existing #{-1 - drop.duplicate_of}"
            if drop.duplicate_of < 0
            else f"raw #{passed[drop.duplicate_of].raw_index}"
        )
        reason = Violation("duplicate", f"of {target} (similarity {drop.similarity:.2f})")
        raw_index = variant.raw_index if variant.raw_index is not None else -1
        rejected.append(
            RejectedOutput(
                raw_index, raw_outputs[raw_index].text, variant.source, [reason], variant.compliance
            )
        )
    rejected.sort(key=lambda r: r.raw_index)
    return PipelineResult(
        variants=[passed[i] for i in keep],
        rejected=rejected,
        max_chars=merged.max_chars,
        constraints=merged,
    )


def _one_per_frame(
    passed: list[CheckedVariant],
    brief: CopyBrief,
    raw_outputs: Sequence[RawOutput],
    rejected: list[RejectedOutput],
) -> list[CheckedVariant]:
    """Keeps the best variant of each frame (`frames.frame_of`: the wording with the item's
    facts taken out), for slot frames and a production model's plain text alike: two variants
    that differ only in which facts fill the same wording read as one template to a shopper
    (passed is best first)."""
    seen: dict[str, CheckedVariant] = {}
    kept: list[CheckedVariant] = []
    for variant in passed:
        key = frame_of(variant.text, brief)
        first = seen.get(key) if key else None
        if first is None:
            if key:
                seen[key] = variant
            kept.append(variant)
            continue
        raw_index = variant.raw_index if variant.raw_index is not None else -1
        reason = Violation("duplicate", f"same frame as raw #{first.raw_index}")
        rejected.append(
            RejectedOutput(
                raw_index, raw_outputs[raw_index].text, variant.source, [reason], variant.compliance
            )
        )
    return kept


def fill_with_fallbacks(
    result: PipelineResult,
    brief: CopyBrief,
    wanted: int,
    settings: PipelineSettings = PipelineSettings(),
) -> PipelineResult:
    """Top the result up to `wanted` variants with template fallbacks (after model ones).

    Fallbacks differing only by template may be similar; they are de-duplicated exactly,
    not by the near-duplicate threshold, so a short banner can still get several. Fewer
    than `wanted` come back when the item data supports fewer distinct templates; a failing
    fallback is never added (its constraints cannot be met).
    """
    missing = result.shortfall(wanted)
    if missing == 0:
        return result
    present = {v.text for v in result.variants}
    # Spare candidates: a template can still fail the claim or sentiment checks below, and the
    # plain generic lines at the end of the list always pass them, so when nothing is added
    # it is the request's constraints that cannot be met (FAILED_PRECONDITION upstream).
    fallbacks = build_fallbacks(brief, result.constraints, count=missing + len(present) + 8)
    added: list[CheckedVariant] = []
    for fallback in fallbacks:
        if len(added) >= missing:
            break
        if not fallback.report.passed or fallback.text in present:
            continue
        # Templates state facts too: they pass the same claim checks.
        truth = truth_findings(fallback.text, brief, None, shop_terms(result.constraints))
        if not truth.passed:
            continue
        present.add(fallback.text)
        coverage, quality = _score(fallback.text, brief, settings, None)
        added.append(
            CheckedVariant(
                fallback.text,
                SOURCE_TEMPLATE_FALLBACK,
                fallback.report,
                coverage,
                quality,
                template=fallback.template,
                sentiment=truth.sentiment,
                # Only a template written for the brief's angle speaks in it.
                angle=brief.angle if fallback.template.startswith(ANGLE_LABEL) else "",
            )
        )
    return replace(result, variants=result.variants + added)
