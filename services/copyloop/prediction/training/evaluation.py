"""Offline metrics for CTR/CVR predictions: AUC, log loss, ECE, reliability tables.

ECE uses equal-count bins: click and purchase probabilities sit mostly near zero, so equal-width
bins would put nearly every impression into the first bin and hide miscalibration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score, roc_curve

from copyloop.prediction.model.predictions import Predictions

_EPS = 1e-7


@dataclass(frozen=True)
class TaskMetrics:
    """Quality of one task's probabilities on one evaluation set."""

    n: int
    positives: int
    base_rate: float
    mean_prediction: float
    auc: float
    logloss: float
    ece: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class ReliabilityBin:
    """One row of a reliability table: predictions in [low, high] versus the observed rate."""

    low: float
    high: float
    count: int
    mean_prediction: float
    observed_rate: float


def auc(labels: NDArray[Any], scores: NDArray[Any]) -> float:
    """ROC AUC; NaN when only one class is present (AUC is undefined, not 0.5)."""
    labels = np.asarray(labels)
    if labels.size == 0 or labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def logloss(labels: NDArray[Any], probs: NDArray[Any]) -> float:
    if len(labels) == 0:
        return float("nan")
    p = np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1 - _EPS)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _equal_count_bins(probs: NDArray[Any], n_bins: int) -> list[NDArray[np.intp]]:
    order = np.argsort(probs, kind="stable")
    return [chunk for chunk in np.array_split(order, min(n_bins, max(len(order), 1))) if chunk.size]


def reliability_table(
    labels: NDArray[Any], probs: NDArray[Any], n_bins: int = 15
) -> list[ReliabilityBin]:
    """Equal-count bins of predictions with the observed positive rate in each."""
    labels = np.asarray(labels, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    table = []
    for idx in _equal_count_bins(probs, n_bins):
        table.append(
            ReliabilityBin(
                low=float(probs[idx].min()),
                high=float(probs[idx].max()),
                count=int(idx.size),
                mean_prediction=float(probs[idx].mean()),
                observed_rate=float(labels[idx].mean()),
            )
        )
    return table


def ece(labels: NDArray[Any], probs: NDArray[Any], n_bins: int = 15) -> float:
    """Expected calibration error: count-weighted |mean prediction - observed rate|."""
    table = reliability_table(labels, probs, n_bins)
    total = sum(b.count for b in table)
    if total == 0:
        return float("nan")
    return float(sum(b.count * abs(b.mean_prediction - b.observed_rate) for b in table) / total)


def task_metrics(labels: NDArray[Any], probs: NDArray[Any], n_bins: int = 15) -> TaskMetrics:
    labels = np.asarray(labels, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    return TaskMetrics(
        n=int(labels.size),
        positives=int(labels.sum()),
        base_rate=float(labels.mean()) if labels.size else float("nan"),
        mean_prediction=float(probs.mean()) if probs.size else float("nan"),
        auc=auc(labels, probs),
        logloss=logloss(labels, probs),
        ece=ece(labels, probs, n_bins),
    )


def evaluate(
    predictions: Predictions, clicked: NDArray[Any], converted: NDArray[Any]
) -> dict[str, TaskMetrics]:
    """Metrics per task: ctr over all impressions, cvr over clicked ones, ctcvr over all.

    `converted` must already be click-and-purchase (a purchase without a click does not count).
    """
    clicked = np.asarray(clicked, dtype=bool)
    converted = np.asarray(converted, dtype=bool) & clicked
    return {
        "ctr": task_metrics(clicked, predictions.p_ctr),
        "cvr": task_metrics(converted[clicked], predictions.p_cvr[clicked]),
        "ctcvr": task_metrics(converted, predictions.p_ctcvr),
    }


def roc_points(
    labels: NDArray[Any], scores: NDArray[Any]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(false positive rate, true positive rate) for plotting; empty for a single class."""
    labels = np.asarray(labels)
    if labels.size == 0 or labels.min() == labels.max():
        return np.zeros(0), np.zeros(0)
    fpr, tpr, _ = roc_curve(labels, scores)
    return fpr, tpr


def metrics_to_dict(metrics: dict[str, TaskMetrics]) -> dict[str, dict[str, float | int]]:
    return {task: m.to_dict() for task, m in metrics.items()}
