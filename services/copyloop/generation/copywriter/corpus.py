"""Training corpus for the demo copywriter: briefs from a catalog, delexicalised copy frames.

No copy data can be downloaded, so the copy is written by a frame grammar (see
`phrases.py`) in English and Chinese, per marketing angle, channel and tone. The targets are
frames: every fact is a slot ({title}, {price}, {discount_pct} ...) filled from the item
after generation (`copyloop.generation.slots`), so the model learns hooks, angles and rhythm
and never has to get a figure right. A frame is only written for an item that can fill it,
and it is sized so the *filled* copy fits the channel limit. Prompts are rendered by the
real prompt builder, so the model is trained on exactly what the service sends. Everything
is driven by one `random.Random(seed)`: the same seed gives the same corpus.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from copyloop.demo.catalog import DemoItem
from copyloop.generation.length import effective_max_chars
from copyloop.generation.prompts.brief import (
    ANGLES,
    CHANNELS,
    LOCALES,
    TONES,
    CopyBrief,
    angles_for_segment,
)
from copyloop.generation.slots import fill_slots, frame_slots

from . import phrases

__all__ = [
    "AUDIENCE_SEGMENTS",
    "COVERING_SLOTS",
    "CorpusExample",
    "brief_for_item",
    "build_corpus",
    "choose_style",
    "iter_combinations",
    "publishable",
    "write_copy",
]

AUDIENCE_SEGMENTS: tuple[str, ...] = (
    "",
    "bargain_hunter",
    "deal_seeker",
    "new_user",
    "loyal_high_value",
    "quality_seeker",
    "gift_shopper",
    "trend_seeker",
    "impulse_buyer",
)
# A frame must name the item through one of these, or coverage rejects the copy.
COVERING_SLOTS = frozenset({"title", "short_title", "brand", "point1", "point2", "point3"})
_CNY_PER_USD = 7.2
_ANGLE_WEIGHTS = (5.0, 3.0, 2.0, 1.2, 1.0, 0.8)  # for angles_for_segment order
_NO_ANGLE_SHARE = 0.3  # briefs without an angle: the model picks from the segment
_URGENCY_SHARE = 0.04  # explicit urgency briefs (a promotion said so)
_CURIOSITY_SHARE = 0.2
_CURIOSITY_CHANNELS = frozenset({"push", "email_subject", "ad_copy", "social_post"})


@dataclass(frozen=True)
class CorpusExample:
    """One (brief, frame) pair; `style` is the angle the frame was written for."""

    brief: CopyBrief
    style: str
    copy: str  # the frame, with slots

    @property
    def filled(self) -> str:
        """The copy as a shopper would see it (slots filled from the brief)."""
        result = fill_slots(self.copy, self.brief)
        return result.text if result else self.copy


def _price_band(price: float) -> str:
    return "low" if price < 20 else "mid" if price < 80 else "high"


def _weighted_angle(segment: str, rng: random.Random) -> str:
    order = angles_for_segment(segment)
    return rng.choices(order, weights=_ANGLE_WEIGHTS[: len(order)])[0]


def brief_for_item(
    item: DemoItem, channel: str, locale: str, tone: str, rng: random.Random
) -> CopyBrief:
    """A plausible brief for `item`: audience, angle, optional limit and must-include."""
    segment = rng.choice(AUDIENCE_SEGMENTS)
    summary = ""
    if segment and rng.random() < 0.7:
        band = _price_band(item.price)
        top = item.category_path[0] if item.category_path else "deals"
        summary = f"likes {top}, {item.brand}; price band {band}" if item.brand else f"likes {top}"
    price, list_price, currency = item.price, item.list_price, item.currency
    if locale == "zh-CN" and rng.random() < 0.5:
        currency = "CNY"
        price = round(int(price * _CNY_PER_USD) + 0.9, 2)
        list_price = (
            round(int(item.list_price * _CNY_PER_USD) + 0.9, 2) if item.is_discounted else price
        )
    default_limit = effective_max_chars(channel, locale)
    max_chars = 0
    if rng.random() < 0.3:
        max_chars = rng.randint(max(12, default_limit // 2), default_limit)
    must_include: tuple[str, ...] = ()
    if rng.random() < 0.2:
        must_include = (rng.choice(phrases.MUST_INCLUDE_CHOICES[locale]),)
    draw = rng.random()
    if draw < _URGENCY_SHARE:
        angle = "urgency"
    elif draw < _URGENCY_SHARE + _NO_ANGLE_SHARE:
        angle = ""
    else:
        angle = _weighted_angle(segment, rng)
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
        angle=angle,
    )


def choose_style(brief: CopyBrief, rng: random.Random) -> str:
    """The angle to write: the brief's own, else one the segment prefers (never urgency)."""
    if brief.angle:
        return brief.angle
    angle = _weighted_angle(brief.audience_segment, rng)
    if angle == "value" and brief.tone == "luxury" and rng.random() < 0.6:
        angle = "quality"  # luxury copy rarely leads with the price
    return angle


def _filled_len(frame: str, brief: CopyBrief) -> int:
    result = fill_slots(frame, brief)
    return len(result.text) if result is not None else 1 << 20


def _usable(frame: str, brief: CopyBrief, budget: int) -> bool:
    """Fillable for this item, names the item, and fits `budget` once filled."""
    if not COVERING_SLOTS & set(frame_slots(frame)):
        return False
    return _filled_len(frame, brief) <= budget


def _sentence(text: str, locale: str, tone: str) -> str:
    """Close a hook as a sentence; playful and urgent tones shout, the others don't."""
    if text[-1:] in "?!.？！。":
        return text
    if locale == "zh-CN":
        return text + ("！" if tone in ("playful", "urgent") else "。")
    return text + ("!" if tone in ("playful", "urgent") else ".")


_KEEP = 120  # priority of parts that are never dropped (must-include phrases, SMS opt-out)
_HOOK = 100  # the hook names the item: kept too (the hook bank has short ones for tight limits)


def _assemble(parts: list[tuple[str, int]], brief: CopyBrief, limit: int) -> str:
    """Join (frame, priority) parts, dropping the lowest priorities until the filled copy fits."""
    joiner = " " if brief.locale == "en-US" else ""
    kept = [p for p in parts if p[0]]
    while True:
        frame = joiner.join(t for t, _ in kept).strip()
        if _filled_len(frame, brief) <= limit or len(kept) <= 1:
            return frame
        drop = min(range(len(kept)), key=lambda i: (kept[i][1], -i))
        if kept[drop][1] >= _HOOK:  # only the hook, must-include and opt-out left
            return frame
        kept.pop(drop)


def _hook_candidates(
    brief: CopyBrief, angle: str, rng: random.Random, curiosity: Mapping[str, float] | None
) -> list[str]:
    locale = brief.locale
    bank = list(phrases.HOOKS[locale][angle])
    if (
        locale == "en-US"
        and brief.channel in _CURIOSITY_CHANNELS
        and angle not in ("value", "urgency")
        and rng.random() < _CURIOSITY_SHARE
    ):
        weights = {k: v for k, v in (curiosity or {}).items() if k in phrases.CURIOSITY}
        weights = weights or {k: 1.0 for k in phrases.CURIOSITY}
        opener = rng.choices(list(weights), weights=list(weights.values()))[0]
        bank = list(phrases.CURIOSITY[opener])
    return bank


def _pick_hook(
    brief: CopyBrief,
    angle: str,
    budget: int,
    rng: random.Random,
    curiosity: Mapping[str, float] | None = None,
) -> str:
    """A hook for `angle` whose filled text fits `budget` characters.

    Tries the angle's hooks with the full name, then with the short name, then the short
    hooks of the angle and finally of any angle; only if nothing fits is the shortest
    usable short hook returned (the caller's length check cuts it).
    """
    bank = _hook_candidates(brief, angle, rng, curiosity)
    for swap in (False, True):
        frames = [h.replace("{title}", "{short_title}") if swap else h for h in bank]
        fitting = [f for f in frames if _usable(f, brief, budget)]
        if fitting:
            return rng.choice(fitting)
    for angles in ((angle,), ANGLES):
        short = [h for a in angles for h in phrases.SHORT_HOOKS[brief.locale][a]]
        fitting = [h for h in short if _usable(h, brief, budget)]
        if fitting:
            return rng.choice(fitting)
    return "{short_title}"


def _price_line(brief: CopyBrief, angle: str, rng: random.Random) -> str:
    kind = "regular"
    if fill_slots("{discount_pct}", brief) is not None:
        kind = "discounted"
    lines = [
        line
        for line in phrases.PRICE_LINE[brief.locale][kind]
        if fill_slots(line, brief) is not None
    ]
    return rng.choice(lines) if lines else ""


_FIGURE_SLOTS = frozenset({"price", "list_price", "discount_pct", "saving"})


def _body(brief: CopyBrief, rng: random.Random, *used_by: str) -> str:
    """Selling points not already named by the other parts (no "{point1}... {point1}")."""
    used = {name for part in used_by for name in frame_slots(part)}
    bodies = [
        b
        for b in phrases.BODY[brief.locale]
        if fill_slots(b, brief) is not None and not used & set(frame_slots(b)) - {"brand"}
    ]
    return rng.choice(bodies) if bodies else ""


def write_copy(
    brief: CopyBrief,
    style: str,
    rng: random.Random,
    curiosity: Mapping[str, float] | None = None,
) -> str:
    """Write one frame for `brief` in angle `style`, sized to the brief's character limit.

    Parts carry priorities: a must-include phrase and the SMS opt-out are never dropped; the
    hook is chosen to fit beside them; price, call to action, body, hashtags and emoji are
    dropped, least useful first, when the filled copy would not fit, and the hook last.
    `curiosity` weights the headline openers (from real headline data; None = uniform).
    """
    locale, tone, channel = brief.locale, brief.tone, brief.channel
    angle = style
    limit = effective_max_chars(channel, locale, brief.max_chars)
    joiner_len = 1 if locale == "en-US" else 0
    price_line = _price_line(brief, angle, rng) if angle != "gift" or rng.random() < 0.5 else ""
    cta = rng.choice(phrases.CTA[locale][tone])
    emoji = rng.choice(phrases.EMOJI) if tone == "playful" or channel == "social_post" else ""
    must = ""
    if brief.must_include:
        must = (" · " if locale == "en-US" else "，").join(brief.must_include)
        must = (must[:1].upper() + must[1:] + ".") if locale == "en-US" else must + "。"
    opt_out = phrases.SMS_OPT_OUT[locale] if channel == "sms" else ""
    reserved = sum(len(p) + joiner_len for p in (must, opt_out) if p) + 1  # +1: closing mark
    budget = max(8, limit - reserved)
    has_brand = fill_slots("{brand}", brief) is not None
    if channel == "sms" and has_brand:
        budget -= len(fill_slots("{brand}", brief).text) + 3  # type: ignore[union-attr]
    hook = _pick_hook(brief, angle, budget, rng, curiosity)
    if _FIGURE_SLOTS & set(frame_slots(hook)):
        price_line = ""  # the hook already states the price or the discount

    parts: list[tuple[str, int]]
    if channel == "promo_banner":
        parts = [(hook, 100), (must, _KEEP)]
    elif channel == "email_subject":
        parts = [(hook, 100), (must, _KEEP), (emoji, 5)]
    elif channel == "push":
        parts = [(_sentence(hook, locale, tone), 100), (must, _KEEP), (price_line, 30), (cta, 20)]
    elif channel == "sms":
        hook = _sentence(hook, locale, tone)
        if has_brand and "{brand}" not in hook:
            hook = f"{{brand}}: {hook}" if locale == "en-US" else f"【{{brand}}】{hook}"
        parts = [(hook, 100), (price_line, 40), (must, _KEEP), (cta, 30), (opt_out, _KEEP)]
    elif channel == "ad_copy":
        parts = [
            (_sentence(hook, locale, tone), 100),
            (_body(brief, rng, hook), 20),
            (must, _KEEP),
            (price_line, 30),
            (cta, 40),
        ]
    elif channel == "social_post":
        tags = " ".join(rng.sample(phrases.TAGS[locale][angle], k=rng.randint(1, 2)))
        parts = [
            (emoji + (" " if locale == "zh-CN" and emoji else ""), 15),
            (_sentence(hook, locale, tone), 100),
            (_body(brief, rng, hook), 40),
            (must, _KEEP),
            (price_line, 50),
            (cta, 60),
            (tags, 10),
        ]
    else:  # product_description
        intros = [i for i in phrases.DESCRIPTION_INTRO[locale] if fill_slots(i, brief) is not None]
        intro = rng.choice(intros) if intros else ""
        parts = [
            (intro, 100),
            (_body(brief, rng, hook, intro), 90),
            (_sentence(hook, locale, tone), 40),
            (must, _KEEP),
            (price_line, 60),
            (cta, 50),
        ]
    return _assemble(parts, brief, limit)


def iter_combinations(seed: int) -> Iterator[tuple[str, str, str]]:
    """Endless (channel, locale, tone) stream that visits every channel x locale pair evenly."""
    rng = random.Random(seed)
    pairs = [(c, loc) for c in CHANNELS for loc in LOCALES]
    while True:
        order = pairs[:]
        rng.shuffle(order)
        for channel, locale in order:
            yield channel, locale, rng.choice(TONES)


def build_corpus(
    items: Sequence[DemoItem],
    n_examples: int,
    seed: int = 0,
    curiosity: Mapping[str, float] | None = None,
) -> list[CorpusExample]:
    """`n_examples` deterministic (brief, frame) pairs over `items`, all channels and locales."""
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
        copy = write_copy(brief, style, rng, curiosity)
        for _ in range(_REWRITES):
            if publishable(copy, brief):
                break
            copy = write_copy(brief, style, rng, curiosity)
        examples.append(CorpusExample(brief=brief, style=style, copy=copy))
    return examples


_REWRITES = 4


def publishable(frame: str, brief: CopyBrief) -> bool:
    """Whether the pipeline's cheap reading checks would let `frame` through for `brief`: words
    of its own in the shopper's language (not a bare "{title}."), the name or price not said
    thrice, sentences the grammar gate accepts. The copywriter learns only copy that can go live:
    a corpus that shows it "{title}。" teaches it to write a line the pipeline always refuses."""
    from copyloop.generation.grammar import grammar_problems
    from copyloop.generation.pipeline import speaks_locale, unreadable_reason

    filled = fill_slots(frame, brief)
    if filled is None or not speaks_locale(frame, brief.locale):
        return False
    if unreadable_reason(filled.text, brief) is not None:
        return False
    return not grammar_problems(frame, brief.locale, shop_terms=brief.must_include)
