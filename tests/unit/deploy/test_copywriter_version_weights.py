"""A published copywriter version names its weights by the path the cycle wrote them to; inside
a container (compose, k8s) the same folder is mounted elsewhere, and the Triton model finds it
under COPYWRITER_WEIGHTS_ROOT by name. The model file is imported with a stand-in for
triton_python_backend_utils, which exists only inside Triton's Python backend stub."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest

from copyloop.generation.triton_local import DEFAULT_MODEL_REPOSITORY

MODEL_FILE = DEFAULT_MODEL_REPOSITORY / "copywriter" / "1" / "model.py"


@pytest.fixture(scope="module")
def model_module() -> types.ModuleType:
    stand_in = types.ModuleType("triton_python_backend_utils")
    stand_in.TritonModelException = RuntimeError  # type: ignore[attr-defined]
    saved = sys.modules.get("triton_python_backend_utils")
    sys.modules["triton_python_backend_utils"] = stand_in
    try:
        spec = importlib.util.spec_from_file_location("copywriter_model_under_test", MODEL_FILE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up by name
        spec.loader.exec_module(module)
        return module
    finally:
        if saved is None:
            sys.modules.pop("triton_python_backend_utils", None)
        else:
            sys.modules["triton_python_backend_utils"] = saved


def _repository(tmp_path: Path, weights: str) -> Path:
    version = tmp_path / "repo" / "copywriter" / "2"
    version.mkdir(parents=True)
    (version / "copywriter_version.json").write_text(json.dumps({"model_dir": weights}))
    return tmp_path / "repo" / "copywriter"


def test_the_pointer_path_is_used_where_it_exists(
    model_module: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = tmp_path / "var" / "models" / "copywriter-v2"
    host.mkdir(parents=True)
    monkeypatch.setenv("COPYWRITER_WEIGHTS_ROOT", "/weights/versions")
    repo = _repository(tmp_path, str(host))
    args = {"model_repository": str(repo), "model_version": "2"}
    assert model_module._version_weights(args) == str(host)


def test_in_a_container_the_same_folder_is_found_under_the_weights_root(
    model_module: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounted = tmp_path / "weights" / "versions"
    (mounted / "copywriter-v2").mkdir(parents=True)
    repo = _repository(tmp_path, "/home/ci/copyloop/var/models/copywriter-v2")
    args = {"model_repository": str(repo), "model_version": "2"}
    monkeypatch.delenv("COPYWRITER_WEIGHTS_ROOT", raising=False)
    assert model_module._version_weights(args) == "/home/ci/copyloop/var/models/copywriter-v2"
    monkeypatch.setenv("COPYWRITER_WEIGHTS_ROOT", str(mounted))
    assert model_module._version_weights(args) == str(mounted / "copywriter-v2")


def test_version_1_has_no_pointer(model_module: types.ModuleType, tmp_path: Path) -> None:
    repo = _repository(tmp_path, "unused")
    assert (
        model_module._version_weights({"model_repository": str(repo), "model_version": "1"}) == ""
    )
