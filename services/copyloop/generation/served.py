"""Copy served outside the generation pipeline (fusion's control arm and its local fallback),
held to the checks generated copy passes: compliance with look-alike letters folded, no contact
details, no injected instructions, claims the item supports and no ill words about it."""

from __future__ import annotations

import threading
from functools import cache, lru_cache

from copyloop.generation import fluency
from copyloop.generation.compliance import CopyConstraints, check_compliance
from copyloop.generation.fallback import GENERIC_COPY, build_fallbacks, item_slots
from copyloop.generation.length import effective_max_chars
from copyloop.generation.prompts import sanitize
from copyloop.generation.prompts.brief import CopyBrief
from copyloop.generation.review import truth_findings


def servable(text: str, brief: CopyBrief, max_chars: int = 0) -> bool:
    """Whether `text` may be served as it is, with the checks every copy passes: compliance
    (banned claims, look-alike letters folded, prompt markup), no personal data or contact
    details at all (copy that would need redacting is refused, not served redacted), no
    injected instructions, and claims the item supports without speaking ill of it."""
    if not text.strip() or sanitize.find_injection_markers(text):
        return False
    report = check_compliance(text, brief.locale, CopyConstraints(), max_chars or len(text))
    if not report.passed or report.redactions or report.text != " ".join(text.split()):
        return False
    return truth_findings(text, brief).passed


@lru_cache(maxsize=8192)  # the same items are recommended again and again; briefs are frozen
def generic_item_copy(brief: CopyBrief) -> str:
    """The same copy for everyone (a control arm): the title and the first selling point, each
    made safe the way template slots are (injected instructions dropped, pieces with contact
    details or banned claims left out), and the line checked like any copy. The title alone,
    then the safe fallback, when the line would state something that fails a check."""
    slots = item_slots(brief, CopyConstraints())
    title, point = slots["title"], slots["sp1"]
    lines = []
    if title and point:
        lines.append(
            f"{title}：{point}，现已上架。" if brief.locale == "zh-CN" else f"{title} - {point}"
        )
    if title:
        lines.append(f"{title}，现已上架。" if brief.locale == "zh-CN" else title)
    for line in lines:
        if servable(line, brief):
            return line
    return safe_fallback(brief)


@lru_cache(maxsize=8192)
def safe_fallback(brief: CopyBrief, constraints: CopyConstraints = CopyConstraints()) -> str:
    """A template copy that passes every check (compliance, contact details, claims), else the
    plainest generic line, which states nothing about the item: for callers outside the
    generation pipeline (a recommendation served while generation is unreachable)."""
    max_chars = effective_max_chars(brief.channel, brief.locale, brief.max_chars)
    for fallback in build_fallbacks(brief, constraints, count=3):
        if fallback.report.passed and servable(fallback.text, brief, max_chars):
            return fallback.text
    return GENERIC_COPY[brief.locale][0]


@cache
def _warm_up() -> None:
    fluency.warm_up()
    for locale, text in (
        ("en-US", "Sample Kettle - Boils fast"),
        ("zh-CN", "示例水壶：烧水快，现已上架。"),
    ):
        brief = CopyBrief(
            item_title=text.split(" - ")[0].split("：")[0],
            brand="",
            category_path=(),
            price=10.0,
            list_price=None,
            currency="USD",
            selling_points=(),
            attributes=(),
            channel="push",
            locale=locale,
            tone="friendly",
        )
        servable(text, brief)


def warm_up_in_background() -> None:
    """Loads what the checks need (jieba's dictionary, SnowNLP's and VADER's models) on a
    thread at start-up: done lazily, the first Chinese check costs seconds on the event loop,
    long enough for every other call in flight to run out of its deadline."""
    threading.Thread(target=_warm_up, name="copy-checks-warm-up", daemon=True).start()
