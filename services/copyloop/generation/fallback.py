"""Safe template copy, built only from item data, for when the model cannot deliver.

Used when generation misses the latency budget or every model variant failed compliance.
Each channel/locale has templates from richest to plainest; a template is used only when
every slot it needs has usable data, and every candidate goes through the same compliance
check as model copy, so a fallback is compliant and within length whenever the request's
constraints can be met at all (must-include terms plus disclaimer fitting the limit).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass

from copyloop.generation.compliance import (
    ComplianceReport,
    CopyConstraints,
    check_compliance,
    contains_term,
    disclaimer_reserve,
    disclaimer_suffix,
    find_banned_terms,
)
from copyloop.generation.length import effective_max_chars, fit_to_length
from copyloop.generation.pii import redact_pii
from copyloop.generation.prompts import sanitize
from copyloop.generation.prompts.brief import CopyBrief

EN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "push": (
        "{title}: now {price}, {pct}% off",
        "{title} from {brand}, now {price}",
        "{title}, now {price}",
        "{title}",
        "{brand} {leaf}",
        "{leaf}",
    ),
    "sms": (
        "{brand}: {title} now {price} (was {was}). {sp1}.",
        "{brand}: {title}, now {price}. {sp1}.",
        "{title}, now {price}. {sp1}.",
        "{title}, now {price}.",
        "{title}",
        "{brand} {leaf}",
    ),
    "email_subject": (
        "{title}: {pct}% off",
        "{title} from {brand}",
        "{title}",
        "{brand} {leaf}",
        "{leaf}",
    ),
    "promo_banner": (
        "{pct}% off {title}",
        "{title}",
        "{pct}% off {leaf}",
        "{brand} {leaf}",
        "{leaf}",
    ),
    "ad_copy": (
        "{title} by {brand}. {sp1}. Now {price}.",
        "{title}. {sp1}. Now {price}.",
        "{title}, now {price}.",
        "{title}",
        "{brand} {leaf}",
    ),
    "social_post": (
        "Meet the {title} by {brand}. {sp1}, {sp2}. Now {price} (was {was}).",
        "Meet the {title} by {brand}. {sp1}. Now {price}.",
        "{title}. {sp1}. Now {price}.",
        "{title}, now {price}.",
        "{title}",
    ),
    "product_description": (
        "{title} by {brand}. {sps}. {attrs}. Price: {price}.",
        "{title} by {brand}. {sps}. Price: {price}.",
        "{title}. {sps}.",
        "{title}. {attrs}.",
        "{title}",
        "{brand} {leaf}",
    ),
}
ZH_TEMPLATES: dict[str, tuple[str, ...]] = {
    "push": (
        "{title}，现价{price}，原价{was}",
        "{brand}{title}，现价{price}",
        "{title}，现价{price}",
        "{title}",
        "{brand}{leaf}",
        "{leaf}",
    ),
    "sms": (
        "{brand}：{title}现价{price}（原价{was}），{sp1}。",
        "{title}现价{price}，{sp1}。",
        "{title}，现价{price}。",
        "{title}",
        "{brand}{leaf}",
    ),
    "email_subject": (
        "{title}，现价{price}",
        "{brand}{title}",
        "{title}",
        "{brand}{leaf}",
        "{leaf}",
    ),
    "promo_banner": ("{title}直降{pct}%", "{title}", "{leaf}直降{pct}%", "{brand}{leaf}", "{leaf}"),
    "ad_copy": (
        "{brand}{title}，{sp1}，现价{price}。",
        "{title}，{sp1}。",
        "{title}，现价{price}。",
        "{title}",
        "{brand}{leaf}",
    ),
    "social_post": (
        "推荐{brand}{title}：{sp1}，{sp2}。现价{price}，原价{was}。",
        "推荐{title}：{sp1}。现价{price}。",
        "{title}，现价{price}。",
        "{title}",
    ),
    "product_description": (
        "{brand}{title}。{sps}。{attrs}。售价{price}。",
        "{title}。{sps}。售价{price}。",
        "{title}。{sps}。",
        "{title}。{attrs}。",
        "{title}",
        "{brand}{leaf}",
    ),
}
TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {"en-US": EN_TEMPLATES, "zh-CN": ZH_TEMPLATES}

# Short templates per marketing angle, tried first when the brief asks for an angle, so copy
# written without the model still speaks to the segment it was written for (and the bandit can
# learn which angle works for whom even while the LLM is down). Only facts from the item, no
# claims: "social_proof" and "urgency" need evidence a template does not have, so they have
# none. A template whose slots the item cannot fill is skipped.
ANGLE_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "en-US": {
        "value": (
            "{title}: {pct}% off, now {price}",
            "{title}, now {price} (was {was})",
            "{title} for {price}",
        ),
        "quality": ("{title} by {brand}: {sp1}", "{brand} quality: {title}"),
        "benefit": ("{title}: {sp1}", "{sp1}, with the {title}"),
        "novelty": ("Discover the {title} from {brand}", "Discover the {title}"),
        "gift": ("A gift idea: {title}, {price}", "A gift idea: the {title}"),
    },
    "zh-CN": {
        "value": (
            "{title}直降{pct}%，现价{price}",
            "{title}，现价{price}，原价{was}",
            "{title}仅{price}",
        ),
        "quality": ("{brand}出品：{title}，{sp1}", "{brand}品质：{title}"),
        "benefit": ("{title}：{sp1}", "{sp1}，就选{title}"),
        "novelty": ("发现{brand}{title}", "发现{title}"),
        "gift": ("送礼之选：{title}，{price}", "送礼之选：{title}"),
    },
}
ANGLE_LABEL = "angle:"  # prefix of FallbackCopy.template for an angle template

# Last resort when no item field is usable (e.g. the title is itself a banned claim),
# longest first so tight limits still get something.
GENERIC_COPY: dict[str, tuple[str, ...]] = {
    "en-US": ("New arrivals are waiting", "New arrivals", "Shop now", "New"),
    "zh-CN": ("新品上架，欢迎选购", "新品上架", "上新"),
}

CURRENCY_SYMBOLS = {"USD": "$", "CNY": "¥", "EUR": "€", "GBP": "£", "JPY": "¥"}
ZH_CURRENCY_NAMES = {"USD": "美元", "EUR": "欧元", "GBP": "英镑", "JPY": "日元"}
MIN_DISCOUNT_PCT = 5
# Item text longer than this is cut before any check: slots hold at most TITLE_MAX characters
# of it, so nothing beyond could reach the copy, and no pattern scans a megabyte field.
ITEM_TEXT_SCAN_MAX = 4_000


@dataclass
class FallbackCopy:
    text: str
    template: str  # the template string used, or "cut:<field>" / "generic"
    report: ComplianceReport


DEFAULT_CURRENCY = "USD"  # what an item without a currency code is priced in (messages.py)


def format_money(amount: float, currency: str, locale: str) -> str:
    """'$19.99', '¥99', '19.99美元': whole amounts lose their '.00'. Always with its currency:
    a bare "现价13.99" leaves a shopper (and the claim checker) guessing; an item without a
    currency code is priced in DEFAULT_CURRENCY, as the request parser assumes."""
    number = f"{amount:.2f}".removesuffix(".00")
    code = currency.upper().strip() or DEFAULT_CURRENCY
    if locale == "zh-CN" and code != "CNY":
        return f"{number}{ZH_CURRENCY_NAMES.get(code, code)}"
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{symbol}{number}" if symbol else f"{number} {code}".strip()


def _usable(text: str, locale: str, constraints: CopyConstraints) -> str:
    """Item text made safe for copy, or '' when it carries a banned claim or contact data.

    Contact data is looked for before neutralising too: neutralising removes URLs, which would
    leave the half of an e-mail address before its domain ("Order at deals@")."""
    text = text[:ITEM_TEXT_SCAN_MAX]
    if redact_pii(text).redactions:
        return ""
    text = sanitize.neutralise(text, sanitize.TITLE_MAX)
    redacted = redact_pii(text)
    if redacted.redactions or not text:
        return ""
    if find_banned_terms(text, locale):
        return ""
    if any(term.strip() and contains_term(text, term) for term in constraints.banned_terms):
        return ""
    return text.strip(" .。,，;；")


def item_slots(brief: CopyBrief, constraints: CopyConstraints) -> dict[str, str]:
    """Slot values from the brief; empty string = not available."""
    locale = brief.locale

    def use(value: str) -> str:
        return _usable(value, locale, constraints)

    title, brand = use(brief.item_title), use(brief.brand)
    if brand and title and contains_term(title, brand):
        brand = ""  # "LEGO Rocket by LEGO" reads badly; templates without {brand} take over
    if locale == "zh-CN" and brand[-1:].isascii() and brand[-1:].isalnum() and title[:1].isascii():
        brand += " "  # "{brand}{title}" must not glue two Latin names ("RivettaClassic Tote")
    leaf = use(brief.category_path[-1]) if brief.category_path else ""
    points = [p for p in (use(sp) for sp in brief.selling_points) if p][:3]
    attrs = []
    for key, value in sorted(brief.attributes)[:4]:
        key_text, value_text = use(key), use(value)
        if key_text and value_text:
            colon = "：" if locale == "zh-CN" else ": "
            attrs.append(f"{key_text}{colon}{value_text}")
    list_price = brief.list_price or 0.0
    discounted = list_price > brief.price > 0
    pct = round((1 - brief.price / list_price) * 100) if discounted else 0
    join = "，" if locale == "zh-CN" else ", "
    return {
        "title": title,
        "brand": brand,
        "leaf": leaf,
        "price": format_money(brief.price, brief.currency, locale) if brief.price > 0 else "",
        "was": format_money(list_price, brief.currency, locale) if discounted else "",
        "pct": str(pct) if pct >= MIN_DISCOUNT_PCT else "",
        "sp1": points[0] if points else "",
        "sp2": points[1] if len(points) > 1 else "",
        "sps": join.join(points),
        "attrs": ("，" if locale == "zh-CN" else "; ").join(attrs),
    }


def _slots_in(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


# A lowercase word opening a sentence; camel-case names (iPhone, eBay) are left alone.
_SENTENCE_START_RE = re.compile(r"(^|[.!?]\s+)([a-z])(?=[a-z'’-]*\b)")


def _polish(text: str, locale: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if locale == "zh-CN":
        text = re.sub(r" (?=[，。：！？；（）])", "", text)
    if locale == "en-US":
        text = _SENTENCE_START_RE.sub(lambda m: m.group(1) + m.group(2).upper(), text)
    return text


def _with_must_include(body: str, constraints: CopyConstraints, locale: str) -> str:
    """Append each missing must-include term as its own short sentence."""
    for term in constraints.must_include:
        term = term.strip()
        if term and not contains_term(body, term):
            body = body + disclaimer_suffix(body, term, locale) if body else term
    return body


_TITLE_HEAD_RE = re.compile(r"\s[-–—|/]\s|[,，|(（:：]")


def title_head(title: str) -> str:
    """The name part of a long catalog title: 'Pikachu Costume, X-Small' -> 'Pikachu Costume'."""
    head = _TITLE_HEAD_RE.split(title, maxsplit=1)[0].strip()
    return head if len(head) >= 3 and head != title else ""


def _candidates(
    brief: CopyBrief, constraints: CopyConstraints, body_budget: int
) -> Iterator[tuple[str, str]]:
    """(template label, body text) pairs, best first.

    Naming the product beats naming its category, so every title form is tried (full,
    head, cut to fit) before templates without the title.
    """
    slots = item_slots(brief, constraints)
    locale = brief.locale
    for template in ANGLE_TEMPLATES.get(locale, {}).get(brief.angle, ()):
        if all(slots[name] for name in _slots_in(template)):
            yield ANGLE_LABEL + template, _polish(template.format(**slots), locale)
    templates = TEMPLATES[locale][brief.channel]
    with_title = [t for t in templates if "{title}" in t]
    without_title = [t for t in templates if "{title}" not in t]
    head = title_head(slots["title"]) if slots["title"] else ""
    for title, tag in ((slots["title"], ""), (head, "head:")):
        if not title:
            continue
        variant = {**slots, "title": title}
        for template in with_title:
            if all(variant[name] for name in _slots_in(template)):
                yield tag + template, _polish(template.format(**variant), locale)
    if body_budget > 0 and slots["title"]:
        yield "cut:title", fit_to_length(head or slots["title"], body_budget).text
    for template in without_title:
        if all(slots[name] for name in _slots_in(template)):
            yield template, _polish(template.format(**slots), locale)
    if body_budget <= 0:
        return
    for name in ("leaf", "brand"):
        if slots[name]:
            yield f"cut:{name}", fit_to_length(slots[name], body_budget).text
    for generic in GENERIC_COPY[locale]:
        if len(generic) <= body_budget:
            yield "generic", generic


def build_fallbacks(
    brief: CopyBrief, constraints: CopyConstraints = CopyConstraints(), count: int = 1
) -> list[FallbackCopy]:
    """Up to `count` distinct fallback copies that pass compliance, richest first.

    Returns one failing FallbackCopy (with its report) only when no candidate can pass,
    which means the constraints themselves cannot be met within the length limit.
    """
    locale = brief.locale
    max_chars = effective_max_chars(brief.channel, locale, brief.max_chars, constraints.max_chars)
    merged = CopyConstraints(
        banned_terms=constraints.banned_terms,
        must_include=tuple(dict.fromkeys(constraints.must_include + brief.must_include)),
        required_disclaimer=constraints.required_disclaimer,
        max_chars=max_chars,
    )
    reserve = disclaimer_reserve(merged.required_disclaimer, locale)
    body_budget = max_chars - reserve - sum(len(t) + 2 for t in merged.must_include)
    results: list[FallbackCopy] = []
    first_failure: FallbackCopy | None = None
    seen: set[str] = set()
    for label, body in _candidates(brief, merged, body_budget):
        if not body:
            continue
        text = _polish(_with_must_include(body, merged, locale), locale)
        report = check_compliance(text, locale, merged, max_chars)
        if not report.passed:
            first_failure = first_failure or FallbackCopy(report.text, label, report)
            continue
        if report.text in seen:
            continue
        seen.add(report.text)
        results.append(FallbackCopy(report.text, label, report))
        if len(results) >= count:
            break
    if not results:
        # Only must-include terms (and disclaimer) left: the best that can be done.
        text = _with_must_include("", merged, locale)
        report = check_compliance(text, locale, merged, max_chars)
        results.append(
            FallbackCopy(report.text, "must_include_only", report)
            if report.passed
            else first_failure or FallbackCopy(report.text, "must_include_only", report)
        )
    return results
