"""Session fixtures (registered in tests/conftest.py): a real local Triton server (CPU) serving
the tiny copywriter, shared by the whole session.

`local_triton` is meant for reuse by GenerationService tests: it builds the tiny model under
a session tmp dir and starts `LocalTriton` once; `local_triton.grpc_url` is what
`TritonLLMClient` takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from copyloop.generation.copywriter.tiny import build_small_model, build_tiny_model
from copyloop.generation.triton_local import LocalTriton, TritonStartError, find_tritonserver


def triton_unavailable_reason() -> str | None:
    """Why a local Triton cannot run here, or None when it can."""
    try:
        find_tritonserver()
    except TritonStartError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def copywriter_tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny copywriter (a real GPT-2 HF checkpoint with our tokenizer), built in seconds."""
    out = tmp_path_factory.mktemp("copywriter-tiny")
    build_tiny_model(out)
    return out


@pytest.fixture(scope="session")
def local_triton(copywriter_tiny_model_dir: Path) -> Iterator[LocalTriton]:
    """tritonserver with deploy/triton/models, the copywriter loading the tiny model."""
    reason = triton_unavailable_reason()
    if reason:
        pytest.skip(f"local Triton unavailable: {reason}")
    # One torch thread: the tiny model gains nothing from more, and the CPU is shared.
    triton = LocalTriton(
        copywriter_tiny_model_dir, startup_timeout_s=240, env={"COPYWRITER_TORCH_THREADS": "1"}
    )
    triton.start()
    try:
        yield triton
    finally:
        triton.stop()


@pytest.fixture(scope="session")
def copywriter_small_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small copywriter trained for about a minute: most of its frames pass the checks."""
    out = tmp_path_factory.mktemp("copywriter-small")
    build_small_model(out)
    return out


@pytest.fixture(scope="session")
def small_triton(copywriter_small_model_dir: Path) -> Iterator[LocalTriton]:
    """A second tritonserver serving the small copywriter: for tests that must see
    model-written copy (not a template fallback) reach a client."""
    reason = triton_unavailable_reason()
    if reason:
        pytest.skip(f"local Triton unavailable: {reason}")
    triton = LocalTriton(
        copywriter_small_model_dir, startup_timeout_s=240, env={"COPYWRITER_TORCH_THREADS": "1"}
    )
    triton.start()
    try:
        yield triton
    finally:
        triton.stop()
