"""bench/load.py's pure parts: ghz template rendering, durations, config loading, the load plan,
percentiles and status names, and the loopback guard."""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import grpc
import pytest
from bench import load

from copyloop.v1 import profile_pb2

METHOD = profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].methods_by_name["IngestEvents"]


def call_data(number: int = 7) -> load.CallTemplateData:
    return load.CallTemplateData.for_call(
        METHOD,
        "w3",
        number,
        now_ns=1_700_000_000_123_456_789,
        call_uuid="0f0e0d0c-0000-4000-8000-000000000001",
    )


def test_call_template_fields_render_like_ghz() -> None:
    data = call_data()
    text = (
        "{{.RequestNumber}}|{{.WorkerID}}|{{.UUID}}|{{.Timestamp}}|{{.TimestampUnix}}|"
        "{{.TimestampUnixMilli}}|{{.TimestampUnixNano}}|{{.MethodName}}|{{.ServiceName}}|"
        "{{.FullyQualifiedName}}|{{.InputName}}|{{.OutputName}}|{{.IsClientStreaming}}"
    )
    assert load.render_template(text, data, random.Random(0)).split("|") == [
        "7",
        "w3",
        "0f0e0d0c-0000-4000-8000-000000000001",
        "2023-11-14T22:13:20Z",
        "1700000000",
        "1700000000123",
        "1700000000123456789",
        "IngestEvents",
        "ProfileService",
        "copyloop.v1.ProfileService.IngestEvents",
        "IngestEventsRequest",
        "IngestEventsResponse",
        "false",
    ]


def test_random_functions_stay_in_range_and_are_seeded() -> None:
    rng = random.Random(5)
    draws = {int(load.render_template("{{randomInt 10 13}}", call_data(), rng)) for _ in range(300)}
    assert draws == {10, 11, 12}  # [min, max), as in ghz
    ids = {
        load.render_template("shopper-000{{ randomInt 10 100 }}", call_data(), rng)
        for _ in range(200)
    }
    assert all(re.fullmatch(r"shopper-000\d\d", i) for i in ids) and len(ids) > 50
    assert len(load.render_template("{{randomString 12}}", call_data(), rng)) == 12
    assert 2 <= len(load.render_template("{{randomString 0}}", call_data(), rng)) <= 16
    uuid_text = load.render_template("{{newUUID}}", call_data(), rng)
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uuid_text
    )
    first = [
        load.render_template("{{randomInt 0 1000}}", call_data(), random.Random(9))
        for _ in range(3)
    ]
    assert first == [
        load.render_template("{{randomInt 0 1000}}", call_data(), random.Random(9))
        for _ in range(3)
    ]


@pytest.mark.parametrize("text", ["{{.Nope}}", '{{printf "%05d" 3}}', "{{randomInt 5 5}}", "{{}}"])
def test_unsupported_template_actions_fail_loudly(text: str) -> None:
    with pytest.raises(load.TemplateError):
        load.render_template(text, call_data(), random.Random(0))


def test_render_value_walks_nested_json_and_leaves_other_types_alone() -> None:
    value = {"events": [{"event_id": "e-{{.RequestNumber}}", "quantity": 2, "ok": True}], "n": None}
    assert load.render_value(value, call_data(41), random.Random(0)) == {
        "events": [{"event_id": "e-41", "quantity": 2, "ok": True}],
        "n": None,
    }
    assert load.has_templates(value) and not load.has_templates({"a": ["b", 1]})


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10), ("500ms", 0.5), ("1m30s", 90), ("2h", 7200), ("1.5s", 1.5)]
)
def test_durations_parse_like_go(text: str, seconds: float) -> None:
    assert load.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10", "ten seconds", "10s5", ""])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        load.parse_duration(text)


def test_percentiles_use_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [load.percentile(values, p) for p in (1, 50, 90, 99, 100)] == [1, 50, 90, 99, 100]
    assert load.percentile([3.0], 99) == 3.0


def test_summary_counts_statuses_with_ghz_names() -> None:
    results = [load.CallResult(0.002, grpc.StatusCode.OK)] * 3 + [
        load.CallResult(0.5, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
    ]
    summary = load.summarize(results, elapsed_s=2.0)
    assert (summary.count, summary.rps) == (4, 2.0)
    assert summary.status_counts == {"OK": 3, "DeadlineExceeded": 1}
    assert summary.fastest_s == 0.002 and summary.slowest_s == 0.5
    text = load.format_summary(summary)
    assert (
        "[OK]\t3 responses" in text
        and "[DeadlineExceeded]\t1 responses" in text
        and "99 % in" in text
    )


@pytest.mark.parametrize(
    "host", ["127.0.0.1:50051", "localhost:50051", "[::1]:50051", "127.9.9.9:1"]
)
def test_loopback_targets_are_allowed(host: str) -> None:
    load.ensure_loopback(host)


@pytest.mark.parametrize("host", ["10.0.0.8:50051", "192.168.1.4:443", "8.8.8.8:53", "50051"])
def test_other_targets_are_refused(host: str) -> None:
    with pytest.raises(ValueError):
        load.ensure_loopback(host)


def test_a_plan_always_stops() -> None:
    with pytest.raises(ValueError):
        load.LoadPlan(concurrency=4, total=None, duration_s=None)
    with pytest.raises(ValueError):
        load.LoadPlan(concurrency=2, total=10, duration_s=None, connections=3)
    with pytest.raises(ValueError):
        load.LoadPlan(concurrency=2, total=None, duration_s=1e9)


def test_cli_flags_override_the_config_like_ghz(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "call": "copyloop.v1.ProfileService/GetUserProfile",
                "total": 500,
                "concurrency": 8,
                "timeout": "2s",
            }
        )
    )
    config = load.load_ghz_config(path)
    args = argparse.Namespace(
        total=None, duration=3.0, concurrency=None, rps=None, timeout=None, connections=None
    )
    plan = load.plan_from(config, args)
    assert (plan.total, plan.duration_s, plan.concurrency, plan.timeout_s) == (None, 3.0, 8, 2.0)
    args.duration = None
    assert load.plan_from(config, args).total == 500


def test_configs_with_keys_ghz_does_not_know_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "typo.json"
    path.write_text(json.dumps({"call": "a.B/C", "n": 10}))  # ghz's JSON key is "total"
    with pytest.raises(ValueError, match="n"):
        load.load_ghz_config(path)
