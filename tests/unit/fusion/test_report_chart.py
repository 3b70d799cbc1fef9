"""Charts are valid, deterministic PNGs; the series behind them are computed correctly."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime

import pytest

from copyloop.fusion.report_chart import (
    MetricBucket,
    cumulative_series,
    experiment_chart,
    regret_chart,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = 1_700_000_000.0


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def buckets(arms: tuple[str, ...], hours: int = 12) -> list[MetricBucket]:
    return [
        MetricBucket(T0 + 3600 * h, arm, impressions=100 + 10 * h, clicks=3 + (h + i) % 4)
        for h in range(hours)
        for i, arm in enumerate(arms)
    ]


def test_cumulative_series_sums_buckets_and_accumulates_ctr() -> None:
    data = [
        MetricBucket(T0 + 3600, "a", 100, 10),
        MetricBucket(T0, "a", 0, 0),  # out of order, and an empty first bucket
        MetricBucket(T0 + 3600, "a", 100, 0),  # same bucket again: summed
        MetricBucket(datetime.fromtimestamp(T0 + 7200, tz=UTC), "a", 300, 30),
        MetricBucket(T0, "b", 50, 5),
    ]
    series = cumulative_series(data)
    assert list(series) == ["a", "b"]
    a = series["a"]
    assert a.impressions == [0, 200, 300]
    assert math.isnan(a.cumulative_ctr[0])
    assert a.cumulative_ctr[1:] == pytest.approx([10 / 200, 40 / 500])
    assert a.times[0] == datetime.fromtimestamp(T0, tz=UTC)
    assert series["b"].cumulative_ctr == pytest.approx([0.1])


@pytest.mark.parametrize("arms", [("control", "bandit", "greedy"), ("only-arm",)])
def test_experiment_chart_is_a_deterministic_png(arms: tuple[str, ...]) -> None:
    png = experiment_chart(buckets(arms), title="exp-1")
    assert png_size(png) == (800, 600)
    assert len(png) > 20_000  # axes, lines and labels, not a blank canvas
    assert experiment_chart(buckets(arms), title="exp-1") == png


def test_different_data_gives_a_different_image() -> None:
    assert experiment_chart(buckets(("a", "b"))) != experiment_chart(buckets(("a", "b"), hours=6))


def test_empty_data_renders_a_no_data_chart() -> None:
    empty = experiment_chart([])
    assert png_size(empty) == (800, 600)
    assert experiment_chart([MetricBucket(T0, "a", 0, 0)]) == empty  # no impressions yet
    assert len(empty) < len(experiment_chart(buckets(("a",))))


def test_regret_chart_renders_and_validates_lengths() -> None:
    steps = 200
    oracle = [0.10] * steps
    policies = {
        "thompson": [0.10 - 0.05 * math.exp(-s / 30) for s in range(steps)],
        "random": [0.06] * steps,
    }
    png = regret_chart(oracle, policies, impressions_per_step=[500] * steps, title="simulator")
    assert png_size(png) == (800, 600) and len(png) > 20_000
    assert (
        regret_chart(oracle, policies, impressions_per_step=[500] * steps, title="simulator") == png
    )
    assert png_size(regret_chart([], {})) == (800, 600)
    with pytest.raises(ValueError):
        regret_chart(oracle, {"short": [0.1] * 10})
    with pytest.raises(ValueError):
        regret_chart(oracle, policies, impressions_per_step=[1])
