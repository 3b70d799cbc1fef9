"""Build chat messages and the final prompt text from a CopyBrief.

The demo model's training corpus calls these same functions, so what the model sees at
serving time is byte-for-byte what it was trained on. The system message depends only on
(template version, locale, channel, tone), which keeps it a shared prefix that serving
backends with prefix caching can reuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import jinja2

from copyloop.generation.length import effective_max_chars
from copyloop.generation.prompts import sanitize
from copyloop.generation.prompts.brief import CopyBrief, validate_brief
from copyloop.generation.prompts.registry import (
    DEFAULT_TEMPLATE_VERSION,
    TEMPLATES_DIR,
    get_template,
    task_guidance,
)
from copyloop.generation.prompts.sanitize import ANGLE_RE

DATA_OPEN = "<<"
DATA_CLOSE = ">>"
PLAIN_PROMPT_SUFFIX = "Copy:"
CATEGORY_SEPARATOR = " > "


class ChatTokenizer(Protocol):
    """The part of a Hugging Face tokenizer the builder uses."""

    chat_template: Any

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    template_id: str
    template_version: str


def data_block(value: str) -> str:
    """Wrap item text as data; strips delimiters again so nothing can close the block early."""
    inner = ANGLE_RE.sub(" ", str(value)).strip()
    return f"{DATA_OPEN}{inner}{DATA_CLOSE}"


def data_path_block(parts: list[str]) -> str:
    """Wrap a category path as one data block, joined with ' > ' after stripping each part."""
    inner = CATEGORY_SEPARATOR.join(ANGLE_RE.sub(" ", str(p)).strip() for p in parts)
    return f"{DATA_OPEN}{inner}{DATA_CLOSE}"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=False,  # plain text for a language model, not HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["data"] = data_block
    env.filters["data_path"] = data_path_block
    return env


def format_price(price: float, list_price: float | None, currency: str) -> str:
    """'19.99 USD (was 29.99)'; empty when there is no price to show."""
    if price <= 0:
        return ""
    currency = sanitize.neutralise(currency, 8)
    text = f"{price:.2f} {currency}".strip()
    if list_price is not None and list_price > price:
        text += f" (was {list_price:.2f})"
    return text


def user_fields(brief: CopyBrief) -> dict[str, Any]:
    """Neutralised, capped values for the user template (item text not yet wrapped)."""
    n = sanitize.neutralise
    audience_parts = [
        n(brief.audience_segment, 40),
        n(brief.audience_summary, sanitize.AUDIENCE_MAX),
    ]
    category_parts = [n(part, sanitize.CATEGORY_PART_MAX) for part in brief.category_path]
    category_parts = [p for p in category_parts if p][: sanitize.CATEGORY_DEPTH_MAX]
    selling_points = [n(sp, sanitize.SELLING_POINT_MAX) for sp in brief.selling_points]
    attributes = []
    for key, value in sorted(brief.attributes):
        key_text = n(key, sanitize.ATTRIBUTE_KEY_MAX)
        value_text = n(value, sanitize.ATTRIBUTE_VALUE_MAX)
        if key_text and value_text:
            attributes.append(f"{key_text}={value_text}")
    must_include = [n(term, sanitize.MUST_INCLUDE_MAX) for term in brief.must_include]
    from copyloop.generation.slots import available_slots, slot_values  # (imports prompts)

    values = slot_values(brief)
    return {
        "channel": brief.channel,
        "locale": brief.locale,
        "tone": brief.tone,
        "audience": " | ".join(p for p in audience_parts if p),
        "max_chars": effective_max_chars(brief.channel, brief.locale, brief.max_chars),
        "product": n(brief.item_title, sanitize.TITLE_MAX),
        "brand": n(brief.brand, sanitize.BRAND_MAX),
        "category": category_parts,
        "price": format_price(brief.price, brief.list_price, brief.currency),
        "selling_points": [sp for sp in selling_points if sp][: sanitize.SELLING_POINTS_MAX],
        "attributes": attributes[: sanitize.ATTRIBUTES_MAX],
        "must_include": [t for t in must_include if t][: sanitize.MUST_INCLUDES_MAX],
        # v2: the marketing angle, the fillable slots and the short selling points they hold
        "angle": brief.angle,
        "slots": ["{" + name + "}" for name in available_slots(brief)],
        "points": [values[f"point{i}"] for i in (1, 2, 3) if values[f"point{i}"]],
    }


def build_messages(
    brief: CopyBrief, template_version: str = DEFAULT_TEMPLATE_VERSION
) -> list[dict[str, str]]:
    """[system, user] chat messages for one brief, rendered from the template files."""
    problems = validate_brief(brief)
    if problems:
        raise ValueError("invalid CopyBrief: " + "; ".join(f"{f}: {p}" for f, p in problems))
    info = get_template(template_version, brief.locale)
    guidance = task_guidance(template_version, brief.locale)
    env = _environment()
    system = env.get_template(f"{template_version}/{info.system_file.name}").render(
        task_description=guidance.channels[brief.channel],
        tone=brief.tone,
        tone_description=guidance.tones[brief.tone],
    )
    user_template = env.get_template(f"{template_version}/{info.user_file.name}")
    user = user_template.render(**user_fields(brief))
    return [
        {"role": "system", "content": system.strip()},
        {"role": "user", "content": user.strip()},
    ]


def render_prompt(
    brief: CopyBrief,
    tokenizer: ChatTokenizer | None = None,
    template_version: str = DEFAULT_TEMPLATE_VERSION,
) -> RenderedPrompt:
    """The model input text: the tokenizer's chat template when it has one, else plain text."""
    messages = build_messages(brief, template_version)
    info = get_template(template_version, brief.locale)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = f"{messages[0]['content']}\n\n{messages[1]['content']}\n\n{PLAIN_PROMPT_SUFFIX}"
    return RenderedPrompt(text=text, template_id=info.template_id, template_version=info.version)
