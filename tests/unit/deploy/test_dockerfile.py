"""The Dockerfile, read as text (no Docker here): stages the compose file builds exist, the
runtime stage is non-root with no HEALTHCHECK, the Triton stage is the official 24.10 image plus
what the Python-backend model imports, and nothing the Dockerfile COPYs is excluded by
.dockerignore (a build would fail on it only on a machine with Docker)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

import pytest
from tests.unit.deploy.compose_file import load_compose
from tests.unit.deploy.service_table import REPO, SERVICES

DOCKERFILE = REPO / "Dockerfile"
TRITON_BASE = "nvcr.io/nvidia/tritonserver:24.10-py3"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with ${ARG} in FROM lines expanded."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), ""), parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, base))
        elif not stages and keyword == "ARG":
            key, _, default = args.partition("=")
            global_args[key.strip()] = default.strip()
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    _, parsed = parse_dockerfile(DOCKERFILE.read_text())
    assert parsed[-1].name == "runtime", "the default (last) stage must be the services' runtime"
    return {s.name: s for s in parsed}


def test_compose_builds_only_stages_that_exist(stages: dict[str, Stage]) -> None:
    compose = load_compose(REPO / "docker-compose.yml")
    targets = {s["build"]["target"] for s in compose["services"].values() if "build" in s}
    assert targets == {"runtime", "triton"} and targets <= set(stages)


def test_runtime_stage_is_non_root_and_leaves_health_to_the_orchestrator(
    stages: dict[str, Stage],
) -> None:
    runtime = stages["runtime"]
    users = runtime.args_of("USER")
    assert users, "no USER: the services would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    args = dict(a.partition("=")[::2] for a in runtime.args_of("ARG"))
    if user.startswith("${"):
        assert args[user.strip("${}")] not in {"", "0"}
    assert not runtime.args_of("HEALTHCHECK")
    # Read-only root filesystem: Python must not try to write .pyc files, caches go to /tmp.
    env = " ".join(runtime.args_of("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HF_HUB_OFFLINE=1" in env
    cmd = runtime.args_of("CMD")[-1]
    assert any(f'"{s.module}"' in cmd for s in SERVICES.values())
    assert any("--from=build" in c for c in runtime.args_of("COPY"))


def test_build_stage_installs_the_lock_with_the_cpu_torch_index_and_generates_stubs(
    stages: dict[str, Stage],
) -> None:
    build = " ".join(args for _, args in stages["build"].instructions)
    assert "download.pytorch.org/whl/cpu" in build
    assert "-r requirements.lock" in build
    assert "make protos VENV=/opt/venv" in build
    assert "pip install --no-deps -e ." in build
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^protos:", makefile, flags=re.MULTILINE) and "$(VENV)" in makefile


def test_triton_stage_is_the_official_image_plus_the_models_imports(
    stages: dict[str, Stage],
) -> None:
    triton = stages["triton"]
    assert triton.base == TRITON_BASE
    installs = " ".join(triton.args_of("RUN"))
    for package in ("torch==", "transformers=="):
        assert package in installs
    assert any(c.split()[0] == "deploy/triton/models" for c in triton.args_of("COPY"))


def _ignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [p.strip().rstrip("/") for p in lines if p.strip() and not p.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch.fnmatch(prefix, pattern)
        for pattern in patterns
        if not pattern.startswith("!")
        for prefix in prefixes
    )


def test_nothing_the_dockerfile_copies_is_excluded_from_the_context(
    stages: dict[str, Stage],
) -> None:
    patterns = _ignore_patterns()
    copied = []
    for stage in stages.values():
        for args in stage.args_of("COPY"):
            if args.startswith("--from"):
                continue
            *sources, _ = args.split()
            copied += sources
    assert copied
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        assert not _ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
    # And the bulky or secret things stay out.
    for path in (".venv", "var", ".git", "tests", "services/copyloop/v1"):
        assert _ignored(path, patterns), path
