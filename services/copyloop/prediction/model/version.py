"""A trained model version: encoder + ESMM weights + calibration + metrics, saved as a folder.

Folder layout (no pickles, so a version can be inspected and loaded safely):
  model.json       format, version id, architecture, input sizes, training windows
  model.pt         ESMM state dict (torch.save of tensors only; loaded with weights_only)
  encoder.json     feature encoder configuration and layout
  calibrator.json  pCTR / pCVR calibrators
  metrics.json     evaluation metrics (model, raw model, baselines, oracle when known)
  report.md, roc.png, reliability.png, loss.png   written when training produced a report
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray

from copyloop.prediction.errors import ModelFormatError
from copyloop.prediction.features.encoder import EncodedBatch, FeatureEncoder
from copyloop.prediction.features.text import CachedEmbedder
from copyloop.prediction.features.types import TrainingExample
from copyloop.prediction.model.calibration import TaskCalibration
from copyloop.prediction.model.esmm import EsmmModel, InputDims, ModelConfig
from copyloop.prediction.model.predictions import Predictions

VERSION_FORMAT = 1
_FILES = ("model.json", "model.pt", "encoder.json", "calibrator.json", "metrics.json")


class VersionReport(Protocol):
    """What training learned about a version, written next to it (training's TrainingReport).

    A protocol, so the version format does not depend on the training code that fills it.
    """

    def write(self, directory: Path, version_id: str, metrics: dict[str, Any]) -> Path:
        """Write the report files into `directory` and return the Markdown file."""
        ...


@dataclass
class ModelVersion:
    """Everything needed to score with one trained model, and what is known about its quality."""

    version_id: str
    encoder: FeatureEncoder
    model: EsmmModel
    calibration: TaskCalibration
    metrics: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    report: VersionReport | None = None  # set when fresh from training; None once loaded

    def predict_raw(self, batch: EncodedBatch, chunk: int = 8192) -> Predictions:
        """Uncalibrated tower outputs (used to fit calibration and to compare)."""
        self.model.eval()
        inputs = batch.tensors()
        ctr_parts: list[NDArray[np.float64]] = []
        cvr_parts: list[NDArray[np.float64]] = []
        with torch.inference_mode():
            for start in range(0, len(batch), chunk):
                sliced = {k: v[start : start + chunk] for k, v in inputs.items()}
                ctr_logit, cvr_logit = self.model(sliced)
                ctr_parts.append(torch.sigmoid(ctr_logit).double().numpy())
                cvr_parts.append(torch.sigmoid(cvr_logit).double().numpy())
        if not ctr_parts:
            return Predictions(np.zeros(0), np.zeros(0))
        return Predictions(np.concatenate(ctr_parts), np.concatenate(cvr_parts))

    def predict(self, batch: EncodedBatch) -> Predictions:
        """Calibrated pCTR and pCVR (pCTCVR is their product)."""
        return self.calibration.apply(self.predict_raw(batch))

    def predict_examples(self, examples: Sequence[TrainingExample]) -> Predictions:
        return self.predict(self.encoder.encode_examples(examples))

    def save_version(self, directory: str | Path) -> Path:
        """Write the version folder (created if needed; files are overwritten)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": VERSION_FORMAT,
            "version_id": self.version_id,
            "model_config": self.model.config.to_dict(),
            "input_dims": self.model.dims.to_dict(),
            "info": self.info,
        }
        (path / "model.json").write_text(json.dumps(meta, indent=2))
        torch.save(self.model.state_dict(), path / "model.pt")
        (path / "encoder.json").write_text(self.encoder.to_json())
        (path / "calibrator.json").write_text(json.dumps(self.calibration.to_dict()))
        (path / "metrics.json").write_text(
            json.dumps(self.metrics, indent=2, default=_json_default)
        )
        if self.report is not None:
            self.report.write(path, self.version_id, self.metrics)
        return path


def load_version(directory: str | Path, embedder: CachedEmbedder | None = None) -> ModelVersion:
    """Rebuild a version saved by `ModelVersion.save_version`.

    Pass `embedder` to share one loaded text model (and its cache) between versions.
    """
    path = Path(directory)
    missing = [name for name in _FILES if not (path / name).exists()]
    if missing:
        raise ModelFormatError(f"{path} is not a model version: missing {', '.join(missing)}")
    meta = json.loads((path / "model.json").read_text())
    if meta.get("format") != VERSION_FORMAT:
        raise ModelFormatError(f"{path}: version format {meta.get('format')} != {VERSION_FORMAT}")
    encoder = FeatureEncoder.from_json((path / "encoder.json").read_text(), embedder)
    dims = InputDims(**meta["input_dims"])
    if dims != InputDims.of(encoder):
        raise ModelFormatError(f"{path}: model input sizes do not match the encoder")
    model = EsmmModel(dims, ModelConfig.from_dict(meta["model_config"]))
    state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    calibration = TaskCalibration.from_dict(json.loads((path / "calibrator.json").read_text()))
    metrics = json.loads((path / "metrics.json").read_text())
    return ModelVersion(
        meta["version_id"], encoder, model, calibration, metrics, meta.get("info", {})
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
