"""Training corpus for the demo copywriter: briefs from the demo catalog, copy from a grammar.

No copy data can be downloaded, so the corpus is written by a phrase grammar (see
`phrases.py`) in English and Chinese, several styles per channel and tone. Prompts are
rendered by the real prompt builder (`copyloop.generation.prompts.render_prompt`), so the
model is trained on exactly what the GenerationService will send it. Everything is driven
by one `random.Random(seed)`: the same seed gives the same corpus.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from copyloop.demo.catalog import DemoItem
from copyloop.generation.length import effective_max_chars, fit_to_length
from copyloop.generation.prompts.brief import CHANNELS, LOCALES, TONES, CopyBrief

from . import phrases

__all__ = [
    "AUDIENCE_SEGMENTS",
    "CorpusExample",
    "brief_for_item",
    "build_corpus",
    "choose_style",
    "iter_combinations",
    "write_copy",
]

AUDIENCE_SEGMENTS: tuple[str, ...] = (
    "",
    "bargain_hunter",
    "new_user",
    "loyal_high_value",
    "gift_shopper",
    "trend_seeker",
)
_CNY_PER_USD = 7.2


@dataclass(frozen=True)
class CorpusExample:
    """One (brief, copy) pair; `style` records which grammar branch wrote the copy."""

    brief: CopyBrief
    style: str
    copy: str


def _price_band(price: float) -> str:
    return "low" if price < 20 else "mid" if price < 80 else "high"


def brief_for_item(
    item: DemoItem, channel: str, locale: str, tone: str, rng: random.Random
) -> CopyBrief:
    """A plausible brief for `item`: audience, optional limit and must-include are sampled."""
    segment = rng.choice(AUDIENCE_SEGMENTS)
    summary = ""
    if segment and rng.random() < 0.7:
        band = _price_band(item.price)
        summary = f"likes {item.category_path[0]}, {item.brand}; price band {band}"
    price, list_price, currency = item.price, item.list_price, item.currency
    if locale == "zh-CN" and rng.random() < 0.5:
        currency = "CNY"
        price = round(int(price * _CNY_PER_USD) + 0.9, 2)
        list_price = (
            round(int(item.list_price * _CNY_PER_USD) + 0.9, 2) if item.is_discounted else price
        )
    default_limit = effective_max_chars(channel, locale)
    max_chars = 0
    if rng.random() < 0.35:
        max_chars = rng.randint(max(12, default_limit // 2), default_limit)
    must_include: tuple[str, ...] = ()
    if rng.random() < 0.25:
        must_include = (rng.choice(phrases.MUST_INCLUDE_CHOICES[locale]),)
    return CopyBrief(
        item_title=item.title,
        brand=item.brand,
        category_path=item.category_path,
        price=price,
        list_price=list_price if list_price > price else None,
        currency=currency,
        selling_points=item.selling_points,
        attributes=tuple(sorted(item.attributes.items())),
        channel=channel,
        locale=locale,
        tone=tone,
        audience_segment=segment,
        audience_summary=summary,
        max_chars=max_chars,
        must_include=must_include,
    )


def _is_discounted(brief: CopyBrief) -> bool:
    return brief.list_price is not None and brief.list_price > brief.price


def choose_style(brief: CopyBrief, rng: random.Random) -> str:
    """Pick a grammar style; tone, audience and discount shift the odds like a copywriter would."""
    weights = {style: 1.0 for style in phrases.STYLES}
    if not _is_discounted(brief):
        weights["discount"] = 0.0
    elif brief.audience_segment == "bargain_hunter":
        weights["discount"] += 3.0
    boosts = {
        "urgent": ("urgency", 3.0),
        "luxury": ("quality", 3.0),
        "playful": ("question", 2.0),
        "informative": ("benefit", 2.0),
        "friendly": ("social_proof", 1.5),
        "professional": ("quality", 1.5),
    }
    boosted, amount = boosts[brief.tone]
    weights[boosted] += amount
    if brief.audience_segment == "new_user":
        weights["social_proof"] += 1.5
    styles = list(weights)
    return rng.choices(styles, weights=[weights[s] for s in styles])[0]


def _money(amount: float, currency: str, locale: str) -> str:
    if currency == "CNY":
        return f"¥{amount:.2f}" if locale == "en-US" else f"{amount:.2f}元"
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency)
    return f"{symbol}{amount:.2f}" if symbol else f"{amount:.2f} {currency}"


def _short_name(title: str, locale: str, max_words: int = 4) -> str:
    """The product name without trailing variants (", Blue") and capped in words."""
    head = title.split(",")[0].split(" – ")[0].split(" - ")[0].strip()
    words = head.split()
    return " ".join(words[:max_words]) if words else title


def _slots(brief: CopyBrief, rng: random.Random) -> dict[str, str]:
    locale = brief.locale
    points = list(brief.selling_points) or (
        ["great value", "everyday quality", "easy to use"]
        if locale == "en-US"
        else ["超值", "品质出众", "简单好用"]
    )
    rng.shuffle(points)
    points = (points * 3)[:3]
    leaf_en = brief.category_path[-1] if brief.category_path else "pick"
    leaf = (
        leaf_en.lower()
        if locale == "en-US"
        else phrases.ZH_CATEGORY.get(leaf_en, phrases.ZH_GENERIC_CATEGORY)
    )
    pct = zhe = save = ""
    was = _money(brief.price, brief.currency, locale)
    if _is_discounted(brief):
        assert brief.list_price is not None
        off = round(100 * (1 - brief.price / brief.list_price))
        pct = str(off)
        tenths = round((100 - off) / 10, 1)
        zhe = f"{tenths:g}"
        save = _money(brief.list_price - brief.price, brief.currency, locale)
        was = _money(brief.list_price, brief.currency, locale)
    return {
        "name": _short_name(brief.item_title, locale),
        "full_name": brief.item_title,
        "brand": brief.brand or ("our" if locale == "en-US" else ""),
        "leaf": leaf,
        "point": points[0],
        "Point": points[0][:1].upper() + points[0][1:],
        "point2": points[1],
        "point3": points[2],
        "price": _money(brief.price, brief.currency, locale),
        "was": was,
        "pct": pct,
        "zhe": zhe,
        "save": save,
    }


def _sentence(text: str, locale: str, tone: str) -> str:
    """Close a hook as a sentence; playful and urgent tones shout, the others don't."""
    if text[-1:] in "?!.？！。":
        return text
    if locale == "zh-CN":
        return text + ("！" if tone in ("playful", "urgent") else "。")
    return text + ("!" if tone in ("playful", "urgent") else ".")


_KEEP = 120  # priority of parts that are never dropped (must-include phrases, SMS opt-out)


def _assemble(parts: list[tuple[str, int]], locale: str, limit: int) -> str:
    """Join (text, priority) parts, dropping the lowest priorities until the copy fits."""
    joiner = " " if locale == "en-US" else ""
    kept = [p for p in parts if p[0]]
    while True:
        text = joiner.join(t for t, _ in kept).strip()
        if len(text) <= limit or len(kept) <= 1:
            break
        drop = min(range(len(kept)), key=lambda i: (kept[i][1], -i))
        if kept[drop][1] >= _KEEP:  # only must-include / opt-out parts left
            break
        kept.pop(drop)
    return fit_to_length(text, limit).text


def _pick_hook(
    brief: CopyBrief, style: str, slots: dict[str, str], budget: int, rng: random.Random
) -> str:
    """A hook for `style` that fits `budget` characters, shortening the name before giving up.

    Tries the full hook bank with a 4-, 3- then 2-word product name, then the name-free
    short hooks; only if nothing fits is the shortest short hook returned (and cut later).
    """
    locale = brief.locale
    for words in (4, 3, 2):
        named = dict(slots, name=_short_name(brief.item_title, locale, max_words=words))
        fitting = [t.format(**named) for t in phrases.HOOKS[locale][style]]
        fitting = [hook for hook in fitting if len(hook) <= budget]
        if fitting:
            return rng.choice(fitting)
    short = [t.format(**slots) for t in phrases.SHORT_HOOKS[locale][style]]
    fitting = [hook for hook in short if len(hook) <= budget]
    return rng.choice(fitting) if fitting else min(short, key=len)


def write_copy(brief: CopyBrief, style: str, rng: random.Random) -> str:
    """Write one piece of copy for `brief` in `style`, within the brief's character limit.

    Parts carry priorities: a must-include phrase and the SMS opt-out are never dropped; the
    hook is chosen to fit beside them; price, call to action, body, hashtags and emoji are
    dropped, least useful first, when the copy would not fit, and the hook last of all.
    """
    locale, tone, channel = brief.locale, brief.tone, brief.channel
    slots = _slots(brief, rng)
    limit = effective_max_chars(channel, locale, brief.max_chars)
    joiner_len = 1 if locale == "en-US" else 0
    price_kind = "discounted" if _is_discounted(brief) else "regular"
    price_line = rng.choice(phrases.PRICE_LINE[locale][price_kind]).format(**slots)
    cta = rng.choice(phrases.CTA[locale][tone])
    emoji = rng.choice(phrases.EMOJI) if tone == "playful" or channel == "social_post" else ""
    must = ""
    if brief.must_include:
        must = (" · " if locale == "en-US" else "，").join(brief.must_include)
        must = (must[:1].upper() + must[1:] + ".") if locale == "en-US" else must + "。"
    opt_out = phrases.SMS_OPT_OUT[locale] if channel == "sms" else ""
    reserved = sum(len(p) + joiner_len for p in (must, opt_out) if p) + 1  # +1: closing mark
    hook = _pick_hook(brief, style, slots, max(8, limit - reserved), rng)

    parts: list[tuple[str, int]]
    if channel == "promo_banner":
        parts = [(hook, 100), (must, _KEEP)]
    elif channel == "email_subject":
        parts = [(hook, 100), (must, _KEEP), (emoji, 5)]
    elif channel == "push":
        parts = [(_sentence(hook, locale, tone), 100), (must, _KEEP), (price_line, 30), (cta, 20)]
    elif channel == "sms":
        hook = _sentence(hook, locale, tone)
        if brief.brand:
            hook = f"{brief.brand}: {hook}" if locale == "en-US" else f"【{brief.brand}】{hook}"
            if len(hook) > limit - reserved:
                hook = hook.split(" ", 1)[1] if locale == "en-US" else hook.split("】", 1)[1]
        parts = [(hook, 100), (price_line, 40), (must, _KEEP), (cta, 30), (opt_out, _KEEP)]
    elif channel == "ad_copy":
        body = rng.choice(phrases.BODY[locale]).format(**slots)
        parts = [
            (_sentence(hook, locale, tone), 100),
            (body, 20),
            (must, _KEEP),
            (price_line, 30),
            (cta, 40),
        ]
    elif channel == "social_post":
        body = rng.choice(phrases.BODY[locale]).format(**slots)
        tags = " ".join(
            "#" + "".join(ch for ch in word if ch.isalnum())
            for word in (brief.brand, slots["leaf"])
            if word
        )
        parts = [
            (emoji, 15),
            (_sentence(hook, locale, tone), 100),
            (body, 40),
            (must, _KEEP),
            (price_line, 50),
            (cta, 60),
            (tags, 10),
        ]
        if locale == "zh-CN" and emoji:  # keep a space after the emoji in Chinese too
            parts[0] = (emoji + " ", 15)
    else:  # product_description
        intro = rng.choice(phrases.DESCRIPTION_INTRO[locale]).format(**slots)
        body = rng.choice(phrases.BODY[locale]).format(**slots)
        parts = [
            (intro, 100),
            (body, 90),
            (_sentence(hook, locale, tone), 40),
            (must, _KEEP),
            (price_line, 60),
            (cta, 50),
        ]
    return _assemble(parts, locale, limit)


def iter_combinations(seed: int) -> Iterator[tuple[str, str, str]]:
    """Endless (channel, locale, tone) stream that visits every channel x locale pair evenly."""
    rng = random.Random(seed)
    pairs = [(c, loc) for c in CHANNELS for loc in LOCALES]
    while True:
        order = pairs[:]
        rng.shuffle(order)
        for channel, locale in order:
            yield channel, locale, rng.choice(TONES)


def build_corpus(items: Sequence[DemoItem], n_examples: int, seed: int = 0) -> list[CorpusExample]:
    """`n_examples` deterministic (brief, copy) pairs over `items`, all channels and locales."""
    if not items:
        raise ValueError("build_corpus needs at least one item")
    rng = random.Random(seed)
    combos = iter_combinations(seed + 1)
    examples: list[CorpusExample] = []
    for index in range(n_examples):
        channel, locale, tone = next(combos)
        item = items[rng.randrange(len(items))] if index >= len(items) else items[index]
        brief = brief_for_item(item, channel, locale, tone, rng)
        style = choose_style(brief, rng)
        examples.append(CorpusExample(brief=brief, style=style, copy=write_copy(brief, style, rng)))
    return examples
