"""Find and remove personal data and contact channels from generated copy.

A model trained on scraped marketing text readily invents "call 400-123-4567" or
"加微信 abc123"; such text must never reach a shopper. Matches are removed (not masked in
the copy) and reported in masked form, so the report itself does not leak the data.

Every pattern is linear in its input (hostile request fields reach these regexes: a 1 MB
must-include term once hung the process): a match may only start where a token starts
(lookbehinds), and runs are possessive, so no start position rescans the run after it.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass

from copyloop.generation.prompts.sanitize import URL_RE

# Order matters: labelled ids (WeChat/QQ) before bare digit runs, specific before general.
PII_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Starts only at the beginning of a local-part run: from any later start the match would
    # rescan the same run (quadratic on a long word with no "@").
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)+", re.UNICODE)),
    ("url", URL_RE),
    (
        "wechat_id",
        re.compile(
            r"(?<![A-Za-z])(?:微信|威信|薇信|wechat|weixin|v信|vx|wx)\s*+(?:号|id)?\s*+[:：]?\s*+"
            r"[A-Za-z0-9][-_A-Za-z0-9]{5,19}(?![-_A-Za-z0-9])",
            re.IGNORECASE,
        ),
    ),
    (
        "qq_id",
        re.compile(r"(?:qq|扣扣)\s*+(?:号|群|id)?\s*+[:：]?\s*+\d{5,11}(?!\d)", re.IGNORECASE),
    ),
    ("phone_cn_mobile", re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")),
    (
        "phone_cn_landline",
        re.compile(r"(?<!\d)(?:0\d{2,3}-\d{7,8}|[48]00[\s-]?\d{3}[\s-]?\d{4})(?!\d)"),
    ),
    (
        "phone",
        re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}(?!\d)"),
    ),
    ("long_digits", re.compile(r"(?<!\d)\d(?:[ -]?\d){11,}(?!\d)")),
)


@dataclass(frozen=True)
class Redaction:
    """One removed piece of personal data, masked for the report."""

    kind: str  # "email" | "url" | "wechat_id" | "qq_id" | "phone..." | "long_digits"
    masked: str


@dataclass(frozen=True)
class RedactionResult:
    text: str
    redactions: tuple[Redaction, ...]


def mask(value: str) -> str:
    """Keep just enough to recognise the kind of data ('13***78'), never the whole value."""
    compact = re.sub(r"\s+", "", value)
    if len(compact) <= 6:
        return "*" * len(compact)
    return f"{compact[:2]}***{compact[-2:]}"


_CLAUSE_PUNCT = frozenset(",;!?，。；！？、\n")


def _pii_spans(text: str) -> list[tuple[int, int, Redaction]]:
    """Non-overlapping PII matches, sorted; earlier patterns win (an email is not also a URL).

    One sweep per pattern over the (sorted, disjoint) spans found so far: linear, however
    many matches a hostile text holds."""
    spans: list[tuple[int, int, Redaction]] = []
    for kind, pattern in PII_PATTERNS:
        found: list[tuple[int, int, Redaction]] = []
        i = 0
        for match in pattern.finditer(text):
            start, end = match.span()
            while i < len(spans) and spans[i][1] <= start:
                i += 1
            if i < len(spans) and spans[i][0] < end:
                continue  # overlaps a match of an earlier pattern
            found.append((start, end, Redaction(kind=kind, masked=mask(match.group(0)))))
        if found:
            spans = list(heapq.merge(spans, found, key=lambda span: span[0]))
    return spans


def _clause_spans(text: str, protected: list[tuple[int, int, Redaction]]) -> list[tuple[int, int]]:
    """Clauses with their closing punctuation; never split inside a PII match (a.b@c.com).
    `protected` is sorted and disjoint (as `_pii_spans` returns it)."""
    clauses: list[tuple[int, int]] = []
    start = 0
    p = 0
    for i, char in enumerate(text):
        is_break = char in _CLAUSE_PUNCT or (
            char == "." and (i + 1 == len(text) or text[i + 1].isspace())
        )
        if not is_break:
            continue
        while p < len(protected) and protected[p][1] <= i:
            p += 1
        if p < len(protected) and protected[p][0] <= i:
            continue  # inside a match
        clauses.append((start, i + 1))
        start = i + 1
    if start < len(text):
        clauses.append((start, len(text)))
    return clauses


def _tidy(text: str) -> str:
    """Close the gaps removals leave: spaces, leading/trailing commas, doubled punctuation."""
    text = re.sub(r"[ \t]+", " ", text).strip()
    text = re.sub(r"([，。；：、,;])\1+", r"\1", text)
    return text.strip(" ,;:，；：、")


def redact_pii(text: str) -> RedactionResult:
    """Remove every clause that carries an email, URL, WeChat/QQ id, phone or card number.

    Whole clauses go, not just the matches: "加微信 abc123 领券" minus the id is "加 领券",
    which is nonsense; without the clause the rest of the copy still reads.
    """
    spans = _pii_spans(text)
    if not spans:
        return RedactionResult(text=text, redactions=())
    kept: list[str] = []
    p = 0
    for start, end in _clause_spans(text, spans):  # both sorted: one sweep
        while p < len(spans) and spans[p][1] <= start:
            p += 1
        if p < len(spans) and spans[p][0] < end:
            continue  # the clause carries personal data
        kept.append(text[start:end])
    return RedactionResult(text=_tidy("".join(kept)), redactions=tuple(r for _, _, r in spans))
