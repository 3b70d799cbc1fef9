"""PNG charts for experiment reports and the bandit simulator.

Uses matplotlib's object API with the Agg canvas directly (no pyplot), so rendering never
touches global backend state and is safe from server threads. Output is deterministic for a
given matplotlib version: fixed size and DPI, and no timestamp or version in the PNG metadata.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["ArmSeries", "MetricBucket", "cumulative_series", "experiment_chart", "regret_chart"]

_SIZE_INCHES = (8.0, 6.0)
_DPI = 100
_PNG_METADATA = {"Software": None}


@dataclass(frozen=True)
class MetricBucket:
    """Counts of one arm in one time bucket; `time` is epoch seconds or a datetime."""

    time: float | datetime
    arm_id: str
    impressions: int
    clicks: int


@dataclass(frozen=True)
class ArmSeries:
    """One arm's buckets in time order with its running CTR (NaN until the first impression)."""

    times: list[datetime]
    impressions: list[int]
    cumulative_ctr: list[float]


def _as_datetime(value: float | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), tz=UTC)


def cumulative_series(buckets: Sequence[MetricBucket]) -> dict[str, ArmSeries]:
    """Per arm (in first-seen order): buckets summed by time, and the CTR accumulated so far."""
    per_arm: dict[str, dict[datetime, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for b in buckets:
        counts = per_arm[b.arm_id][_as_datetime(b.time)]
        counts[0] += b.impressions
        counts[1] += b.clicks
    series = {}
    for arm_id, by_time in per_arm.items():
        times = sorted(by_time)
        impressions = [by_time[t][0] for t in times]
        clicks = np.cumsum([by_time[t][1] for t in times], dtype=np.float64)
        shown = np.cumsum(impressions, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ctr = np.where(shown > 0, clicks / np.where(shown > 0, shown, 1.0), math.nan)
        series[arm_id] = ArmSeries(times, impressions, ctr.tolist())
    return series


def _render(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # print_png (not savefig) keeps the figure's own size and colours; matplotlib leaves it
    # unannotated.
    FigureCanvasAgg(fig).print_png(buffer, metadata=_PNG_METADATA)
    return buffer.getvalue()


def _no_data(title: str) -> bytes:
    fig = Figure(figsize=_SIZE_INCHES, dpi=_DPI)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, "No data yet", ha="center", va="center", fontsize=20, color="0.4")
    if title:
        fig.suptitle(title)
    return _render(fig)


def experiment_chart(buckets: Sequence[MetricBucket], title: str = "") -> bytes:
    """Cumulative CTR per arm over time (top) and impressions per bucket (bottom), as PNG."""
    series = cumulative_series(buckets)
    if not any(sum(s.impressions) for s in series.values()):
        return _no_data(title)
    fig = Figure(figsize=_SIZE_INCHES, dpi=_DPI, layout="constrained")
    ax_ctr, ax_imp = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    for arm_id, s in series.items():
        ax_ctr.plot(s.times, s.cumulative_ctr, marker="o", markersize=3, label=arm_id)
        ax_imp.plot(s.times, s.impressions, marker="o", markersize=3, label=arm_id)
    ax_ctr.set_ylabel("cumulative CTR")
    ax_ctr.yaxis.set_major_formatter(lambda v, _pos: f"{v:.1%}")
    ax_ctr.grid(alpha=0.3)
    ax_ctr.legend(loc="best", fontsize="small")
    ax_imp.set_ylabel("impressions")
    ax_imp.set_xlabel("time (UTC)")
    ax_imp.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.suptitle(title or "Experiment metrics")
    return _render(fig)


def regret_chart(
    oracle_ctr: Sequence[float],
    policies: Mapping[str, Sequence[float]],
    impressions_per_step: Sequence[float] | None = None,
    title: str = "",
) -> bytes:
    """Simulator view: each policy's CTR against the oracle's per step, and cumulative regret.

    Regret per step is (oracle CTR - policy CTR), times the step's impressions when given (so
    it reads as expected clicks lost); every policy series must match the oracle's length.
    """
    steps = len(oracle_ctr)
    if steps == 0 or not policies:
        return _no_data(title)
    for name, values in policies.items():
        if len(values) != steps:
            raise ValueError(f"policy {name!r} has {len(values)} steps, oracle has {steps}")
    if impressions_per_step is not None and len(impressions_per_step) != steps:
        raise ValueError("impressions_per_step must have one value per step")
    weighted = impressions_per_step is not None
    weight = np.asarray(impressions_per_step, float) if weighted else np.ones(steps)
    x = np.arange(1, steps + 1)
    oracle = np.asarray(oracle_ctr, dtype=np.float64)
    fig = Figure(figsize=_SIZE_INCHES, dpi=_DPI, layout="constrained")
    ax_ctr, ax_regret = fig.subplots(2, 1, sharex=True)
    ax_ctr.plot(x, oracle, color="black", linestyle="--", label="oracle")
    for name, values in policies.items():
        policy = np.asarray(values, dtype=np.float64)
        ax_ctr.plot(x, policy, label=name)
        ax_regret.plot(x, np.cumsum((oracle - policy) * weight), label=name)
    ax_ctr.set_ylabel("CTR")
    ax_ctr.grid(alpha=0.3)
    ax_ctr.legend(loc="best", fontsize="small")
    ax_regret.set_ylabel("cumulative regret (clicks)" if weighted else "cumulative regret")
    ax_regret.set_xlabel("step")
    ax_regret.grid(alpha=0.3)
    fig.suptitle(title or "Policy vs oracle")
    return _render(fig)
