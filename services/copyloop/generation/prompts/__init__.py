"""Versioned prompt templates and the prompt contract shared with the demo-model corpus."""

from copyloop.generation.prompts.brief import CHANNELS, LOCALES, TONES, CopyBrief, validate_brief
from copyloop.generation.prompts.builder import (
    RenderedPrompt,
    build_messages,
    format_price,
    render_prompt,
    user_fields,
)
from copyloop.generation.prompts.registry import (
    DEFAULT_TEMPLATE_VERSION,
    TemplateInfo,
    available_versions,
    get_template,
    list_templates,
    task_guidance,
)
from copyloop.generation.prompts.sanitize import find_injection_markers, neutralise

__all__ = [
    "CHANNELS",
    "DEFAULT_TEMPLATE_VERSION",
    "LOCALES",
    "TONES",
    "CopyBrief",
    "RenderedPrompt",
    "TemplateInfo",
    "available_versions",
    "build_messages",
    "find_injection_markers",
    "format_price",
    "get_template",
    "list_templates",
    "neutralise",
    "render_prompt",
    "task_guidance",
    "user_fields",
    "validate_brief",
]
