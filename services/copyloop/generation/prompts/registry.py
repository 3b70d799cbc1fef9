"""Registry of versioned prompt templates stored as files.

Templates live in `templates/<version>/` ({system,user}.<locale>.j2, tasks.json,
manifest.json). A version is immutable once creatives were generated with it: a change
means a new folder (v2), so every stored creative can name the exact template that wrote
it. The content hash lets the creative pool notice an edited-in-place version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent / "templates"
# v2: delexicalised frames with slots (the demo copywriter is trained on it).
DEFAULT_TEMPLATE_VERSION = "v2"


@dataclass(frozen=True)
class TemplateInfo:
    """One (version, locale) prompt template and where its files are."""

    template_id: str  # "copy/v1/en-US"
    version: str
    locale: str
    description: str
    system_file: Path
    user_file: Path
    tasks_file: Path
    sha256: str  # of system + user + tasks file contents


@dataclass(frozen=True)
class TaskGuidance:
    """Per-locale wording for each channel's task and each tone."""

    channels: dict[str, str]
    tones: dict[str, str]


def template_id_for(version: str, locale: str) -> str:
    return f"copy/{version}/{locale}"


def available_versions() -> list[str]:
    """Template versions present on disk, oldest first (v1, v2, ..., v10)."""
    versions = [p.name for p in TEMPLATES_DIR.iterdir() if (p / "manifest.json").is_file()]
    return sorted(versions, key=lambda v: (len(v), v))


@lru_cache(maxsize=32)
def _manifest(version: str) -> dict:
    path = TEMPLATES_DIR / version / "manifest.json"
    if not path.is_file():
        raise KeyError(f"unknown template version {version!r}; available: {available_versions()}")
    return json.loads(path.read_text(encoding="utf-8"))


def _hash_files(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@lru_cache(maxsize=64)
def get_template(version: str, locale: str) -> TemplateInfo:
    """The template for a version and locale; KeyError when either is unknown."""
    manifest = _manifest(version)
    if locale not in manifest["locales"]:
        raise KeyError(f"template {version} has no locale {locale!r}; has {manifest['locales']}")
    folder = TEMPLATES_DIR / version
    system_file = folder / f"system.{locale}.j2"
    user_file = folder / f"user.{locale}.j2"
    tasks_file = folder / "tasks.json"
    return TemplateInfo(
        template_id=template_id_for(version, locale),
        version=version,
        locale=locale,
        description=manifest.get("description", ""),
        system_file=system_file,
        user_file=user_file,
        tasks_file=tasks_file,
        sha256=_hash_files(system_file, user_file, tasks_file),
    )


def list_templates() -> list[TemplateInfo]:
    """Every (version, locale) template on disk, for the creative pool's template table."""
    return [
        get_template(version, locale)
        for version in available_versions()
        for locale in _manifest(version)["locales"]
    ]


@lru_cache(maxsize=64)
def task_guidance(version: str, locale: str) -> TaskGuidance:
    """Channel task descriptions and tone descriptions for one locale."""
    info = get_template(version, locale)
    data = json.loads(info.tasks_file.read_text(encoding="utf-8"))[locale]
    return TaskGuidance(channels=dict(data["channels"]), tones=dict(data["tones"]))
