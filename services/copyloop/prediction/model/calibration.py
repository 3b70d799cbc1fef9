"""Post-hoc calibration of pCTR and pCVR, fitted on a held-out slice of the training window.

Why separate calibrators: pCVR is P(purchase | click), so it is fitted on clicked impressions
only; pCTCVR is then the product of the calibrated parts, which keeps the ESMM identity
pCTCVR = pCTR x pCVR that callers rely on (ranking by expected revenue).
Both calibrators are strictly increasing, so they never change a ranking (AUC) within a task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression

from copyloop.prediction.model.predictions import Predictions

_EPS = 1e-6


class Calibrator(Protocol):
    def apply(self, probs: NDArray[Any]) -> NDArray[np.float64]: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class IdentityCalibrator:
    """Used when a slice has too few positives to fit anything trustworthy."""

    def apply(self, probs: NDArray[Any]) -> NDArray[np.float64]:
        return np.asarray(probs, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "identity"}


@dataclass
class IsotonicCalibrator:
    """Centred isotonic regression: a strictly increasing piecewise-linear map.

    Plain isotonic regression is a step function, so it maps many different scores to one
    value and candidates that the model ranks apart would tie at serving time. Here each
    fitted block becomes one knot (block-mean score, block rate), with (0, 0) and (1, 1) as end
    knots, and scores are interpolated between knots: still fitted to the data, still
    monotone, but ranking-preserving. Stored as knots (no pickles in a model version).
    """

    x: NDArray[np.float64]
    y: NDArray[np.float64]

    @classmethod
    def fit(cls, probs: NDArray[Any], labels: NDArray[Any]) -> IsotonicCalibrator:
        x = np.asarray(probs, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.float64)
        model = IsotonicRegression(
            y_min=_EPS, y_max=1 - _EPS, out_of_bounds="clip", increasing=True
        )
        fitted = model.fit_transform(x, labels)
        order = np.argsort(x, kind="stable")
        x_sorted, y_sorted = x[order], fitted[order]
        # Blocks are runs of equal fitted values; one knot per block at its mean score.
        starts = np.flatnonzero(np.r_[True, np.diff(y_sorted) != 0])
        sums = np.add.reduceat(x_sorted, starts)
        counts = np.diff(np.r_[starts, x_sorted.size])
        knots_x = np.r_[0.0, sums / counts, 1.0]
        knots_y = np.r_[0.0, y_sorted[starts], 1.0]
        keep = np.r_[True, np.diff(knots_x) > 1e-12]  # drop duplicate x (degenerate blocks)
        return cls(knots_x[keep], knots_y[keep])

    def apply(self, probs: NDArray[Any]) -> NDArray[np.float64]:
        return np.interp(np.asarray(probs, dtype=np.float64), self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "isotonic", "x": self.x.tolist(), "y": self.y.tolist()}


@dataclass
class TemperatureCalibrator:
    """Platt-style temperature scaling: sigmoid(logit(p) / T + b), fitted by L-BFGS on log loss.

    Smoother than isotonic and safer on small slices; cannot fix non-monotone errors.
    """

    temperature: float
    bias: float

    @classmethod
    def fit(cls, probs: NDArray[Any], labels: NDArray[Any]) -> TemperatureCalibrator:
        z = _logit(np.asarray(probs, dtype=np.float64))
        y = np.asarray(labels, dtype=np.float64)

        def nll(params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            logits = params[0] * z + params[1]
            p = expit(logits)
            # log(1 + e^x) - y x, written with logaddexp to stay finite for large |x|
            loss = np.sum(np.logaddexp(0.0, logits) - y * logits)
            residual = p - y
            return float(loss), np.array([np.sum(residual * z), np.sum(residual)])

        result = minimize(
            nll,
            x0=np.array([1.0, 0.0]),
            jac=True,
            method="L-BFGS-B",
            bounds=[(1e-3, 1e3), (-20.0, 20.0)],
        )
        inverse_temperature, bias = result.x  # the bound keeps the map increasing
        return cls(float(1.0 / inverse_temperature), float(bias))

    def apply(self, probs: NDArray[Any]) -> NDArray[np.float64]:
        z = _logit(np.asarray(probs, dtype=np.float64))
        return np.asarray(expit(z / self.temperature + self.bias), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "temperature", "temperature": self.temperature, "bias": self.bias}


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    p = np.clip(p, _EPS, 1 - _EPS)
    logits: NDArray[np.float64] = np.log(p) - np.log1p(-p)
    return logits


def calibrator_from_dict(data: dict[str, Any]) -> Calibrator:
    kind = data.get("kind")
    if kind == "identity":
        return IdentityCalibrator()
    if kind == "isotonic":
        return IsotonicCalibrator(np.asarray(data["x"]), np.asarray(data["y"]))
    if kind == "temperature":
        return TemperatureCalibrator(float(data["temperature"]), float(data["bias"]))
    raise ValueError(f"unknown calibrator kind {kind!r}")


ISOTONIC_MIN_EACH = 200  # isotonic needs this many positives and negatives, else temperature
MIN_POSITIVES = 30  # below this, no calibrator beats leaving the model alone


def fit_calibrator(
    method: str, probs: NDArray[Any], labels: NDArray[Any], min_positives: int = MIN_POSITIVES
) -> Calibrator:
    """Fit `method`: "auto" (isotonic with enough data, else temperature), "isotonic",
    "temperature" or "none"; identity when positives or negatives are too few to fit anything."""
    labels = np.asarray(labels)
    positives = int(labels.sum())
    negatives = int(labels.size - positives)
    if method == "none" or min(positives, negatives) < min_positives:
        return IdentityCalibrator()
    if method == "auto":
        method = "isotonic" if min(positives, negatives) >= ISOTONIC_MIN_EACH else "temperature"
    if method == "isotonic":
        return IsotonicCalibrator.fit(probs, labels)
    if method == "temperature":
        return TemperatureCalibrator.fit(probs, labels)
    raise ValueError(f"unknown calibration method {method!r}")


@dataclass
class TaskCalibration:
    """Calibrators for pCTR (all impressions) and pCVR (clicked impressions)."""

    ctr: Calibrator
    cvr: Calibrator

    @classmethod
    def fit(
        cls, method: str, raw: Predictions, clicked: NDArray[Any], converted: NDArray[Any]
    ) -> TaskCalibration:
        clicked = np.asarray(clicked, dtype=bool)
        converted = np.asarray(converted, dtype=bool) & clicked
        return cls(
            ctr=fit_calibrator(method, raw.p_ctr, clicked),
            cvr=fit_calibrator(method, raw.p_cvr[clicked], converted[clicked]),
        )

    @classmethod
    def identity(cls) -> TaskCalibration:
        return cls(IdentityCalibrator(), IdentityCalibrator())

    def apply(self, raw: Predictions) -> Predictions:
        return Predictions(self.ctr.apply(raw.p_ctr), self.cvr.apply(raw.p_cvr))

    def to_dict(self) -> dict[str, Any]:
        return {"ctr": self.ctr.to_dict(), "cvr": self.cvr.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskCalibration:
        return cls(calibrator_from_dict(data["ctr"]), calibrator_from_dict(data["cvr"]))
