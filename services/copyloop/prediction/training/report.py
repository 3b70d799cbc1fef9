"""Human-readable training report: a Markdown summary and PNG plots (matplotlib, Agg).

Why PNGs in the version folder: whoever decides whether to promote a version should see the
ROC, reliability and loss curves next to the numbers without running anything.
matplotlib is imported when a report is first drawn, so the service and the scorer do not
pay for it at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from copyloop.prediction.model.predictions import Predictions
from copyloop.prediction.training.evaluation import ReliabilityBin

_TASKS = ("ctr", "cvr", "ctcvr")


@dataclass
class TrainingReport:
    """What the report plots: per-epoch losses, reliability tables and ROC points per model."""

    loss_history: list[dict[str, float]] = field(default_factory=list)
    reliability: dict[str, dict[str, list[ReliabilityBin]]] = field(default_factory=dict)
    roc: dict[str, dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]] = field(
        default_factory=dict
    )
    eval_predictions: dict[str, Predictions] = field(default_factory=dict)

    def write(self, directory: Path, version_id: str, metrics: dict[str, Any]) -> Path:
        """`write_report` into a version folder (`ModelVersion.save_version` calls this)."""
        return write_report(directory, version_id, metrics, self)


def _pyplot() -> ModuleType:
    """matplotlib.pyplot on the non-interactive Agg backend (no display on servers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4f}"
    return str(value)


def metrics_table(models: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Markdown table: one row per (model, task) with AUC, log loss, ECE."""
    lines = [
        "| model | task | n | positives | base rate | mean pred | AUC | log loss | ECE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, tasks in models.items():
        for task in _TASKS:
            m = tasks.get(task)
            if m is None:
                continue
            lines.append(
                f"| {name} | {task} | {m['n']} | {m['positives']} | {_fmt(m['base_rate'])} | "
                f"{_fmt(m['mean_prediction'])} | {_fmt(m['auc'])} | {_fmt(m['logloss'])} | "
                f"{_fmt(m['ece'])} |"
            )
    return "\n".join(lines)


def off_policy_table(estimate: dict[str, Any]) -> str:
    """Markdown table of an off-policy estimate (`OffPolicyEstimate.to_dict()`)."""

    def cell(interval: dict[str, Any]) -> str:
        value, low, high = (interval.get(k) for k in ("value", "low", "high"))
        if value is None:
            return "n/a"
        if low is None or high is None:
            return f"{value:.4f}"
        return f"{value:.4f} [{low:.4f}, {high:.4f}]"

    confidence = round(100 * float(estimate.get("confidence") or 0.95))
    ess = estimate.get("effective_sample_size")
    agreement = estimate.get("agreement")
    return "\n".join(
        [
            f"| policy | clicks per impression ({confidence}% CI) |",
            "|---|---|",
            f"| logging (as served) | {cell(estimate.get('logging') or {})} |",
            f"| this model, greedy: IPS | {cell(estimate.get('ips') or {})} |",
            f"| this model, greedy: SNIPS | {cell(estimate.get('snips') or {})} |",
            "",
            f"{estimate.get('n', 0)} impressions with a propensity and alternatives "
            f"({estimate.get('n_excluded', 0)} without, excluded); effective sample size "
            f"{'n/a' if ess is None else f'{ess:.0f}'}; the model would pick the logged copy "
            f"{'n/a' if agreement is None else f'{100 * agreement:.1f}%'} of the time.",
        ]
    )


def _plot_roc(path: Path, report: TrainingReport) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, task in zip(axes, ("ctr", "ctcvr"), strict=True):
        for name, curves in report.roc.items():
            fpr, tpr = curves.get(task, ((), ()))
            if len(fpr):
                ax.plot(fpr, tpr, label=name, linewidth=1.2)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
        ax.set_title(f"ROC ({task})")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_reliability(path: Path, report: TrainingReport) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
    for ax, task in zip(axes, _TASKS, strict=True):
        top = 0.0
        for name, tables in report.reliability.items():
            bins = tables.get(task, [])
            if not bins:
                continue
            xs = [b.mean_prediction for b in bins]
            ys = [b.observed_rate for b in bins]
            top = max(top, max(xs), max(ys))
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.0, label=name)
        ax.plot([0, top], [0, top], color="grey", linestyle=":", linewidth=0.8)
        ax.set_title(f"reliability ({task}, equal-count bins)")
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed rate")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_loss(path: Path, report: TrainingReport) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in report.loss_history]
    ax.plot(epochs, [h["train_loss"] for h in report.loss_history], marker="o", label="train")
    ax.plot(epochs, [h["holdout_loss"] for h in report.loss_history], marker="o", label="hold-out")
    ax.set_xlabel("epoch")
    ax.set_ylabel("ESMM loss (CTR + CTCVR log loss)")
    ax.set_title("training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    directory: Path, version_id: str, metrics: dict[str, Any], report: TrainingReport
) -> Path:
    """Write report.md, roc.png, reliability.png and loss.png into `directory`."""
    _plot_roc(directory / "roc.png", report)
    _plot_reliability(directory / "reliability.png", report)
    _plot_loss(directory / "loss.png", report)
    data = metrics.get("data", {})
    lines = [
        f"# Model version {version_id}",
        "",
        "## Data",
        "",
        *(f"- {part}: {counts}" for part, counts in data.items()),
        f"- calibration: {metrics.get('calibration_method')} (fitted on the hold-out slice)",
        "",
        "## Evaluation (later time window)",
        "",
        metrics_table(metrics.get("models", {})),
        "",
        "cvr is evaluated on clicked impressions only; ctcvr = ctr x cvr over all impressions.",
        "ECE uses 15 equal-count bins.",
        "",
    ]
    if metrics.get("off_policy"):
        lines += [
            "## Off-policy estimate (greedy copy choice by pCTR, evaluation window)",
            "",
            off_policy_table(metrics["off_policy"]),
            "",
        ]
    lines += [
        "## Reliability (calibrated model, ctr)",
        "",
        "| bin | predictions in | count | mean prediction | observed rate |",
        "|---|---|---|---|---|",
    ]
    for i, b in enumerate(report.reliability.get("esmm", {}).get("ctr", [])):
        lines.append(
            f"| {i} | [{b.low:.4f}, {b.high:.4f}] | {b.count} | {b.mean_prediction:.4f} | "
            f"{b.observed_rate:.4f} |"
        )
    lines += [
        "",
        "![ROC](roc.png)",
        "",
        "![Reliability](reliability.png)",
        "",
        "![Loss](loss.png)",
        "",
    ]
    path = directory / "report.md"
    path.write_text("\n".join(lines))
    return path
