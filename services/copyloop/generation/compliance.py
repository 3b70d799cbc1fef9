"""Per-locale compliance checks for generated copy.

A variant with a banned claim fails outright (the caller regenerates or falls back):
deleting "最" or "第一" from Chinese text leaves broken sentences, and deleting "guaranteed"
changes the meaning. Personal data is different: it is removed and reported, and the copy
may still pass. A missing required disclaimer is appended when it fits.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from copyloop.generation.confusables import skeleton
from copyloop.generation.pii import Redaction, redact_pii

MAX_TERM_CHARS = 100  # a must-include or banned term (a word or a phrase)
MAX_DISCLAIMER_CHARS = 200


@dataclass(frozen=True)
class CopyConstraints:
    """The request's own rules, on top of the locale's legal ones."""

    banned_terms: tuple[str, ...] = ()
    must_include: tuple[str, ...] = ()
    required_disclaimer: str = ""
    max_chars: int = 0  # 0 = channel default


@dataclass(frozen=True)
class Violation:
    # banned_term | request_banned_term | must_include | disclaimer | length | empty |
    # no_text | prompt_leak (the pipeline adds duplicate | coverage)
    rule: str
    detail: str  # the term, or what is wrong


@dataclass
class ComplianceReport:
    passed: bool
    text: str  # the copy after redaction and any appended disclaimer
    violations: list[Violation] = field(default_factory=list)
    redactions: list[Redaction] = field(default_factory=list)
    disclaimer_added: bool = False


@dataclass(frozen=True)
class BannedTerm:
    """A banned claim: its name in reports, a regex on folded text, and harmless uses."""

    term: str
    pattern: re.Pattern[str]
    exceptions: tuple[str, ...] = ()

    @property
    def exception_pattern(self) -> re.Pattern[str] | None:
        return _exception_pattern(self.exceptions)


@lru_cache(maxsize=256)
def _exception_pattern(exceptions: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(map(re.escape, exceptions))) if exceptions else None


def _zh(term: str, *exceptions: str) -> BannedTerm:
    return BannedTerm(term, re.compile(re.escape(term)), exceptions)


def _en(term: str, pattern: str) -> BannedTerm:
    return BannedTerm(term, re.compile(pattern))


# Absolute claims forbidden by the PRC Advertising Law (art. 9: 国家级、最高级、最佳 ...) and
# the usual platform rules. Exceptions are ordinary words that contain a term (第一次 = "the
# first time", 最近 = "recently").
ZH_BANNED: tuple[BannedTerm, ...] = (
    _zh("最", "最近", "最后", "最终", "最初"),
    _zh(
        "第一",
        "第一次",
        "第一步",
        "第一天",
        "第一眼",
        "第一代",
        "第一季",
        "第一章",
        "第一册",
        "第一件",
    ),
    _zh("唯一"),
    _zh("国家级"),
    _zh("世界级"),
    _zh("顶级"),
    _zh("顶尖"),
    _zh("极致"),
    _zh("极品"),
    _zh("独一无二"),
    _zh("史无前例"),
    _zh("前无古人"),
    _zh("万能"),
    _zh("100%有效"),
    _zh("百分之百"),
    _zh("绝对"),
    _zh("首选"),
    _zh("首个"),
    _zh("无敌"),
    _zh("王牌"),
    _zh("冠军"),
    _zh("领导品牌"),
    _zh("永久"),
    _zh("特效"),
    _zh("根治"),
    _zh("包治"),
    _zh("零风险"),
    _zh("无副作用"),
    _zh("秒杀全网"),
)

EN_BANNED: tuple[BannedTerm, ...] = (
    _en("#1", r"(?<![\w#])#\s?1(?![\d])"),
    _en("number one", r"\bnumber\s*one\b"),
    _en("no. 1", r"\bno\.\s?1(?!\d)"),
    _en("guaranteed", r"\bguaranteed?\b(?!\s+(?:for|by)\s+\d)"),
    _en("best ever", r"\bbest\s+(?:\w+\s+)?ever\b"),
    _en("world's best", r"\bworld'?s\s+best\b|\bbest\s+in\s+the\s+world\b"),
    _en("best on the market", r"\bbest\s+on\s+the\s+market\b"),
    _en("risk-free", r"\brisk[\s-]?free\b"),
    _en("cure", r"\bcur(?:e|es|ed|ing)\b"),
    _en("miracle", r"\bmiracle\w*\b"),
    _en("100% effective", r"\b100\s?%\s*(?:effective|safe|natural|guaranteed)\b"),
    _en("clinically proven", r"\bclinically\s+proven\b"),
    _en("lowest price ever", r"\blowest\s+price\s+ever\b|\blowest\s+price\s+anywhere\b"),
    _en("unbeatable", r"\bunbeatable\b"),
    _en("no side effects", r"\bno\s+side[\s-]effects\b"),
)

LOCALE_BANNED: dict[str, tuple[BannedTerm, ...]] = {"zh-CN": ZH_BANNED, "en-US": EN_BANNED}

# The prompt's own format leaking into the copy (the model echoed its input). A lone ">>"
# is allowed: "立即抢购>>" is an ordinary call-to-action arrow. Leading blanks are matched
# within the line only (possessive), so a text of many blank lines is scanned once.
_PROMPT_LEAK_RE = re.compile(
    r"<<|<\|[a-z_]+\|>|^[^\S\n]*+(?:task|locale|tone|max_chars|product|brand|selling_points|"
    r"must_include|attributes|system|user|assistant)\s*+:",
    re.IGNORECASE | re.MULTILINE,
)


def fold(text: str) -> str:
    """Matching form: full-width -> ASCII, look-alike letters -> Latin ("Bеst" with a Cyrillic
    е is "best"), invisible characters dropped, case-folded, whitespace collapsed."""
    return re.sub(r"\s+", " ", skeleton(text)).strip()


def _fold_dense(text: str) -> str:
    """Folded with spaces removed between CJK characters ("100% 有效" -> "100%有效")."""
    return re.sub(r"\s+", "", fold(text))


def _matches(term: BannedTerm, folded: str) -> bool:
    exceptions = term.exception_pattern
    spans_ok = [m.span() for m in exceptions.finditer(folded)] if exceptions else []
    for match in term.pattern.finditer(folded):
        inside_exception = any(s <= match.start() and match.end() <= e for s, e in spans_ok)
        if not inside_exception:
            return True
    return False


def find_banned_terms(text: str, locale: str) -> list[str]:
    """Banned claims in `text`: the locale's list first, then the other locales' lists.

    All lists apply to every copy because copy mixes scripts ("LEGO #1热卖").
    """
    ordered = [locale, *sorted(k for k in LOCALE_BANNED if k != locale)]
    found: list[str] = []
    for key in ordered:
        folded = _fold_dense(text) if key == "zh-CN" else fold(text)
        found.extend(t.term for t in LOCALE_BANNED.get(key, ()) if _matches(t, folded))
    return found


def _term_pattern(term: str) -> re.Pattern[str]:
    """Word-bounded for Latin words ("cure" must not hit "secure"), substring otherwise."""
    folded = fold(term)
    body = re.escape(folded).replace(r"\ ", r"\s*")
    if folded[:1].isascii() and folded[:1].isalnum():
        body = r"(?<![\w])" + body
    if folded[-1:].isascii() and folded[-1:].isalnum():
        body = body + r"(?![\w])"
    return re.compile(body)


def contains_term(text: str, term: str) -> bool:
    """Whether `term` occurs in `text`, ignoring case, width and spacing differences."""
    if not term.strip():
        return True
    return bool(_term_pattern(term).search(fold(text)))


def has_text_content(text: str) -> bool:
    """False for copy that is only emoji, symbols or punctuation."""
    return any(unicodedata.category(c)[0] in ("L", "N") for c in text)


def disclaimer_suffix(text: str, disclaimer: str, locale: str) -> str:
    """What appending the disclaimer adds: a sentence break if needed, then the disclaimer."""
    disclaimer = disclaimer.strip()
    stripped = text.rstrip()
    if locale == "zh-CN":
        sep = "" if not stripped or stripped[-1] in "。！？!?…" else "。"
    else:
        sep = " " if stripped and stripped[-1] in ".!?…" else ". " if stripped else ""
    return sep + disclaimer


def disclaimer_reserve(disclaimer: str, locale: str) -> int:
    """Characters to keep free so a disclaimer can be appended after a text without a period."""
    return len(disclaimer_suffix("x", disclaimer, locale)) if disclaimer.strip() else 0


def check_compliance(
    text: str,
    locale: str,
    constraints: CopyConstraints,
    max_chars: int,
    prior_redactions: tuple[Redaction, ...] | list[Redaction] = (),
) -> ComplianceReport:
    """Redact, check every rule and append a missing disclaimer when it fits.

    `max_chars` is the effective limit (channel default lowered by the request); pass the
    redactions of an earlier pass (the pipeline redacts before cutting) to keep them reported.
    """
    redaction = redact_pii(text)
    body = re.sub(r"\s+", " ", redaction.text).strip()
    report = ComplianceReport(
        passed=False, text=body, redactions=list(prior_redactions) + list(redaction.redactions)
    )
    violations = report.violations

    if not body:
        violations.append(Violation("empty", "no copy left"))
    elif not has_text_content(body):
        violations.append(Violation("no_text", "only emoji, symbols or punctuation"))
    if _PROMPT_LEAK_RE.search(text):
        violations.append(Violation("prompt_leak", "copy contains prompt markup"))
    for term in find_banned_terms(body, locale):
        violations.append(Violation("banned_term", term))
    for term in constraints.banned_terms:
        if term.strip() and contains_term(body, term):
            violations.append(Violation("request_banned_term", term))

    disclaimer = constraints.required_disclaimer.strip()
    if disclaimer and body and not contains_term(body, disclaimer):
        suffix = disclaimer_suffix(body, disclaimer, locale)
        if len(body) + len(suffix) <= max_chars:
            report.text = body + suffix
            report.disclaimer_added = True
        else:
            violations.append(
                Violation("disclaimer", f"needs {len(suffix)} more chars, limit {max_chars}")
            )
    if len(report.text) > max_chars:
        violations.append(Violation("length", f"{len(report.text)} > {max_chars} chars"))
    for term in constraints.must_include:
        if not contains_term(report.text, term):
            violations.append(Violation("must_include", term))

    report.passed = not violations
    return report


def validate_constraints(constraints: CopyConstraints, locale: str) -> list[tuple[str, str]]:
    """(field, problem) pairs for constraints no copy could satisfy; for BadRequest details."""
    problems: list[tuple[str, str]] = []
    if constraints.max_chars < 0:
        problems.append(("max_chars", "must be >= 0 (0 = channel default)"))
    # Lengths first, before any pattern sees a term: a term is a word or a phrase, and copy is
    # a few hundred characters at most, so nothing longer can be meant (or ever fit).
    too_long = False
    for name, terms in (
        ("must_include", constraints.must_include),
        ("banned_terms", constraints.banned_terms),
    ):
        if any(len(t) > MAX_TERM_CHARS for t in terms):
            problems.append((name, f"each term at most {MAX_TERM_CHARS} characters"))
            too_long = True
    if len(constraints.required_disclaimer) > MAX_DISCLAIMER_CHARS:
        problems.append(("required_disclaimer", f"at most {MAX_DISCLAIMER_CHARS} characters"))
        too_long = True
    if too_long:
        return problems
    for term in constraints.must_include:
        banned = find_banned_terms(term, locale) + [
            b for b in constraints.banned_terms if b.strip() and contains_term(term, b)
        ]
        if banned:
            problems.append(("must_include", f"{term!r} contains banned term(s) {banned}"))
        if redact_pii(term).redactions:
            problems.append(("must_include", f"{term!r} contains contact details"))
    disclaimer = constraints.required_disclaimer
    if disclaimer and (find_banned_terms(disclaimer, locale) or redact_pii(disclaimer).redactions):
        problems.append(("required_disclaimer", "contains a banned term or contact details"))
    return problems
