"""The `copyloop` CLI against real servers (typer's CliRunner, in process), configured the way a
user's shell would be: through the var/platform.json a running platform writes."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from tests.integration.clients.helpers import API_KEY, OTHER_API_KEY, ThreadedPlatform
from typer.testing import CliRunner, Result

from copyloop.v1 import profile_pb2
from copyloop_client import ClientConfig, Copyloop
from copyloop_client.cli import app
from copyloop_client.files import read_items
from copyloop_client.platform_control import pid_alive

REPO = Path(__file__).resolve().parents[3]
WIDE = {"COLUMNS": "250"}  # rich wraps tables to the terminal width; keep rows on one line

ITEMS_CSV = (
    "item_id,title,brand,category_path,price,list_price,currency_code,stock,selling_points,tags,"
    "attributes\n"
    "cli-kitchen-0,Copper Pan Classic,Panco,Kitchen > Cookware,20,25,USD,5,"
    'even heating | oven safe,gift,"{""material"": ""copper""}"\n'
    "cli-kitchen-1,Copper Pan Deluxe,Panco,Kitchen > Cookware,35.5,,usd,3,induction ready,,\n"
    "cli-kitchen-2,Chef Knife,Edgewise,Kitchen > Knives,42,,USD,8,"
    "forged steel | full tang,gift | bestseller,\n"
)
ITEMS_JSONL = [
    {
        "item_id": "cli-garden-0",
        "title": "Garden Hose Pro",
        "brand": "Greenly",
        "category_path": ["Garden", "Watering"],
        "price": 30,
        "stock": 4,
        "selling_points": ["kink free", "30 m"],
        "tags": ["outdoor"],
        "attributes": {"length_m": 30},
    },
    {
        "item_id": "cli-garden-1",
        "title": "Watering Can",
        "brand": "Greenly",
        "category_path": "Garden > Watering",
        "price": 12.5,
        "stock": 9,
    },
]


@pytest.fixture(scope="module")
def var_dir(platform: ThreadedPlatform, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A var/ holding the platform.json of the running test platform (this process's pid)."""
    path = tmp_path_factory.mktemp("cli") / "var"
    platform.write_platform_file(path)
    return path


def cli(var_dir: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["--var-dir", str(var_dir), *args], env={**WIDE, **(env or {})})


def assert_one_error_line(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def sdk(platform: ThreadedPlatform) -> Copyloop:
    return Copyloop(ClientConfig(addresses=platform.addresses(), api_key=API_KEY))


def ensure_catalog(platform: ThreadedPlatform, tmp_path: Path) -> None:
    """The CSV catalog, for tests that need it when run on their own (a no-op after the load
    test)."""
    path = tmp_path / "catalog.csv"
    path.write_text(ITEMS_CSV)
    with sdk(platform) as client:
        client.upsert_items(read_items(path))


def test_catalog_load_csv_then_jsonl(
    var_dir: Path, platform: ThreadedPlatform, tmp_path: Path
) -> None:
    csv_file = tmp_path / "items.csv"
    csv_file.write_text(ITEMS_CSV)
    result = cli(var_dir, "catalog", "load", str(csv_file))
    assert result.exit_code == 0, result.output
    assert "3 items: 3 created, 0 updated, 0 unchanged" in result.stdout

    changed = ITEMS_CSV.replace(
        "Chef Knife,Edgewise,Kitchen > Knives,42", "Chef Knife,Edgewise,Kitchen > Knives,39"
    )
    csv_file.write_text(changed)
    result = cli(var_dir, "catalog", "load", str(csv_file), "--batch-size", "2")
    assert "3 items: 0 created, 1 updated, 2 unchanged" in result.stdout, result.output

    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text("\n".join(json.dumps(row) for row in ITEMS_JSONL) + "\n\n")
    result = cli(var_dir, "catalog", "load", str(jsonl))
    assert "2 items: 2 created, 0 updated, 0 unchanged" in result.stdout, result.output

    with sdk(platform) as client:
        pan = client.get_item("cli-kitchen-0")
        hose = client.get_item("cli-garden-0")
        can = client.get_item("cli-garden-1")
    assert list(pan.category_path) == ["Kitchen", "Cookware"] and list(pan.selling_points) == [
        "even heating",
        "oven safe",
    ]
    assert (
        dict(pan.attributes) == {"material": "copper"} and pan.list_price == 25 and pan.stock == 5
    )
    assert dict(hose.attributes) == {"length_m": "30"} and list(hose.tags) == ["outdoor"]
    assert list(can.category_path) == ["Garden", "Watering"] and can.price == 12.5


def test_catalog_load_reports_the_bad_row(var_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,title,price\nok-1,Fine,10\nbad-1,Broken,ten dollars\n")
    assert_one_error_line(
        cli(var_dir, "catalog", "load", str(bad)), f"{bad}:3: price: not a number"
    )
    assert_one_error_line(
        cli(var_dir, "catalog", "load", str(tmp_path / "missing.csv")), "cannot read"
    )
    odd = tmp_path / "items.xml"
    odd.write_text("<items/>")
    assert_one_error_line(cli(var_dir, "catalog", "load", str(odd)), "--format")


def test_catalog_load_amazon_sample(var_dir: Path, platform: ThreadedPlatform) -> None:
    sample = Path("/work/shared/data/amazon_products_2020_sample.csv.gz")
    if not sample.is_file():
        pytest.skip(f"reference data {sample} is not on this machine")
    # Tenant B's catalog, so these 1,000 popular-looking items stay out of tenant A's recall.
    result = cli(
        var_dir, "--api-key", OTHER_API_KEY, "catalog", "load", str(sample), "--format", "amazon"
    )
    assert result.exit_code == 0, result.output
    loaded = re.search(r"(\d+) items: (\d+) created, 0 updated, 0 unchanged", result.stdout)
    assert loaded and loaded[1] == loaded[2] and int(loaded[1]) > 900, result.stdout
    with Copyloop(ClientConfig(addresses=platform.addresses(), api_key=OTHER_API_KEY)) as client:
        item = client.get_item("4c69b61db1fc16e7013b43fc926e502d")  # the sample's first row
    assert (
        item.title.startswith("DB Longboards CoreFlex Crossbow")
        and item.price > 0
        and item.selling_points
    )


def test_events_ingest_counts_and_reasons(
    var_dir: Path, platform: ThreadedPlatform, tmp_path: Path
) -> None:
    ensure_catalog(platform, tmp_path)
    events = tmp_path / "events.csv"
    rows = ["event_id,user_id,type,item_id,event_time,quantity,price,query"]
    for n in range(9):
        item = f"cli-kitchen-{n % 3}"
        kind = "purchase" if n % 3 == 2 else "view"
        when = str(1_700_000_000 + n) if n % 2 else f"2024-05-01T10:0{n}:00+02:00"  # epoch or ISO
        rows.append(f"cli-ev-{n},cli-user,{kind},{item},{when},1,,")
    rows.append("cli-ev-search,cli-user,search,,2024-05-02T10:00:00Z,,,copper pan")
    rows.append("cli-ev-unknown,cli-user,view,no-such-item,2024-05-02T10:00:00Z,,,")
    events.write_text("\n".join(rows) + "\n")
    result = cli(var_dir, "events", "ingest", str(events), "--chunk-size", "4")
    assert result.exit_code == 0, result.output
    assert "11 events: 10 accepted, 0 duplicate, 1 rejected" in result.stdout
    assert "rejected #10 (cli-ev-unknown): item_id: unknown item" in result.stdout

    result = cli(var_dir, "events", "ingest", str(events), "--strict")
    assert "11 events: 0 accepted, 10 duplicate, 1 rejected" in result.stdout
    assert_one_error_line(result, "1 events rejected")

    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text(
        json.dumps(
            {
                "event_id": "cli-ev-j",
                "user_id": "cli-user",
                "type": "add_to_cart",
                "item_id": "cli-kitchen-1",
                "event_time": 1_700_000_100,
            }
        )
        + "\n"
    )
    result = cli(var_dir, "events", "ingest", str(jsonl))
    assert "1 events: 1 accepted, 0 duplicate, 0 rejected" in result.stdout, result.output

    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"event_id": "x", "user_id": "u", "type": "teleport", "item_id": "i", "event_time": 1}\n'
    )
    assert_one_error_line(
        cli(var_dir, "events", "ingest", str(bad)), f"{bad}:1: type: unknown value 'teleport'"
    )


def test_recommend_prints_a_table_of_the_users_items(
    var_dir: Path, platform: ThreadedPlatform, tmp_path: Path
) -> None:
    with sdk(platform) as client:
        client.upsert_items(
            [
                {
                    "item_id": f"reco-skillet-{n}",
                    "title": f"Cast Iron Skillet {n}",
                    "brand": "Ferro",
                    "category_path": "Kitchen > Cookware",
                    "price": 30 + n,
                    "stock": 4,
                }
                for n in range(3)
            ]
            + [
                {
                    "item_id": f"reco-lamp-{n}",
                    "title": f"Desk Lamp {n}",
                    "category_path": "Office",
                    "price": 15,
                    "stock": 2,
                }
                for n in range(3)
            ]
        )
    events = tmp_path / "reco.jsonl"
    events.write_text(
        "\n".join(
            json.dumps(
                {
                    "event_id": f"reco-{n}",
                    "user_id": "reco-user",
                    "type": "view",
                    "item_id": f"reco-skillet-{n % 3}",
                    "event_time": time.time() - 600 * n,
                }
            )
            for n in range(9)
        )
    )
    assert cli(var_dir, "events", "ingest", str(events)).exit_code == 0
    with sdk(platform) as client:
        titles = [
            i.title
            for i in client.profile.ListItems(profile_pb2.ListItemsRequest(page_size=1000)).items
        ]
        assert client.get_profile("reco-user").category_affinities[0].key == "Kitchen"

    result = cli(
        var_dir, "recommend", "reco-user", "--channel", "push", "--locale", "en-US", "--n", "3"
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    for header in ("title", "price", "copy", "pCTR", "pCVR", "reasons"):
        assert header in out
    rows = [line for line in out.splitlines() if re.match(r"^│ +[0-9]+ │", line)]
    assert len(rows) == 3, out
    assert all(any(f"│ {t} " in row for t in titles) for row in rows), (
        out
    )  # this tenant's catalog only
    assert (
        any("Cast Iron Skillet" in row for row in rows)
        and "matches your interest in Kitchen" in out
    ), out

    cold = cli(var_dir, "recommend", "someone-new", "--n", "2")
    assert cold.exit_code == 0 and "cold start" in cold.stdout


def test_generate_prints_variants_with_compliance(
    var_dir: Path, platform: ThreadedPlatform, tmp_path: Path
) -> None:
    ensure_catalog(platform, tmp_path)
    result = cli(
        var_dir,
        "generate",
        "cli-kitchen-2",
        "--channel",
        "push",
        "--locale",
        "en-US",
        "--n",
        "2",
        "--tone",
        "playful",
    )
    assert result.exit_code == 0, result.output
    assert "cli-kitchen-2: Chef Knife" in result.stdout
    assert result.stdout.count("passed") == 2 and "Chef Knife" in result.stdout
    assert_one_error_line(cli(var_dir, "generate", "cli-nothing"), "NOT_FOUND", "cli-nothing")
    assert_one_error_line(
        cli(var_dir, "generate", "cli-kitchen-2", "--tone", "grumpy"),
        "tone: unknown value 'grumpy'",
    )


def test_review_passes_true_copy_and_fails_a_false_price(
    var_dir: Path, platform: ThreadedPlatform, tmp_path: Path
) -> None:
    ensure_catalog(platform, tmp_path)
    good = cli(var_dir, "review", "cli-kitchen-0", "Copper Pan Classic by Panco, now $20.")
    assert good.exit_code == 0, good.output
    assert "passed" in good.stdout
    bad = cli(var_dir, "review", "cli-kitchen-0", "Copper Pan Classic, only $9.99 today!")
    assert bad.exit_code == 1, bad.output
    assert "failed" in bad.stdout and "price" in bad.stdout and "$9.99" in bad.stdout
    promo = cli(
        var_dir,
        "review",
        "cli-kitchen-0",
        "Copper Pan Classic: free shipping on us.",
        "--free-shipping",
    )
    assert promo.exit_code == 0, promo.output


def test_errors_are_one_line_without_traceback(var_dir: Path) -> None:
    assert_one_error_line(
        cli(var_dir, "experiment", "report", "no-such-exp"),
        "NOT_FOUND",
        "experiment 'no-such-exp' not found",
    )
    assert_one_error_line(
        cli(var_dir, "recommend", "cli-user", "--locale", "fr-FR"),
        "INVALID_ARGUMENT",
        "context.locale",
    )
    assert_one_error_line(
        cli(var_dir, "--api-key", "wrong", "recommend", "cli-user"), "UNAUTHENTICATED"
    )
    assert_one_error_line(
        cli(var_dir, "--fusion", "127.0.0.1:1", "--timeout", "3", "recommend", "cli-user"),
        "UNAVAILABLE",
        "copyloop platform status",
    )
    assert_one_error_line(cli(var_dir, "model", "train", "--days", "7"), "FAILED_PRECONDITION")
    config = var_dir.parent / "bad.toml"
    config.write_text("[retry]\nmax_attempts = 10\n")
    assert_one_error_line(cli(var_dir, "--config", str(config), "model", "list"), "between 1 and 5")


def test_experiment_create_and_report_with_chart(
    var_dir: Path, platform: ThreadedPlatform, tmp_path: Path
) -> None:
    result = cli(
        var_dir,
        "experiment",
        "create",
        "cli-exp",
        "--arm",
        "generic:GENERIC_COPY:1",
        "--arm",
        "bandit:PERSONALISED_BANDIT:1",
        "--name",
        "Copy test",
    )
    assert result.exit_code == 0, result.output
    assert (
        "created experiment cli-exp [running]" in result.stdout
        and "bandit (personalised_bandit, weight 1)" in result.stdout
    )
    assert_one_error_line(
        cli(var_dir, "experiment", "create", "cli-exp-2", "--arm", "a:NOPE:1"),
        "strategy: unknown value 'NOPE'",
    )

    with sdk(platform) as client:
        for u in range(12):
            reply = client.recommend(f"exp-user-{u}", n=2, experiment_id="cli-exp")
            for r in reply.recommendations:
                client.report_outcome(reply.request_id, r.impression_id, "impression")
                if u % 3 == 0:
                    client.report_outcome(reply.request_id, r.impression_id, "click")
    png = tmp_path / "report.png"
    result = cli(var_dir, "experiment", "report", "cli-exp", "--png", str(png))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "generic" in out and "bandit" in out and "P(best)" in out and "sample ratio:" in out
    assert png.read_bytes().startswith(b"\x89PNG") and f"chart written to {png}" in out.replace(
        "\n", ""
    )
    listed = cli(var_dir, "experiment", "list")
    assert "cli-exp [running]" in listed.stdout


def test_model_commands(var_dir: Path) -> None:
    result = cli(var_dir, "model", "list")
    assert result.exit_code == 0 and "no model versions yet" in result.stdout, result.output
    assert_one_error_line(cli(var_dir, "model", "promote", "v-missing"), "NOT_FOUND")
    assert_one_error_line(cli(var_dir, "model", "rollback"), "FAILED_PRECONDITION")


def test_platform_status_reads_platform_json(
    var_dir: Path, tmp_path: Path, platform: ThreadedPlatform
) -> None:
    result = cli(var_dir, "platform", "status")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("SERVING") == 4 and platform.addresses()["fusion"] in result.stdout
    stale = tmp_path / "stale-var"
    platform.write_platform_file(
        stale, pid=2**22 + 12345
    )  # above the default pid_max: never a live process
    assert_one_error_line(cli(stale, "platform", "status"), "not running", "stale")
    result = cli(stale, "platform", "stop")
    assert result.exit_code == 0 and "removed the stale" in result.stdout
    assert not (stale / "platform.json").exists()
    assert_one_error_line(cli(tmp_path / "empty-var", "platform", "status"), "not running")


@pytest.mark.slow
def test_platform_start_status_stop_in_a_real_child_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`platform start` spawns `python -m MODULE --serve-only`; the module used here keeps the
    main job's contract with the in-process platform
    (tests/integration/clients/platform_runner.py)."""
    paths = [str(REPO), str(REPO / "clients" / "python"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    var = tmp_path / "var"
    module = "tests.integration.clients.platform_runner"
    result = cli(var, "platform", "start", "--module", module, "--wait", "180")
    info = (
        json.loads((var / "platform.json").read_text())
        if (var / "platform.json").exists()
        else None
    )
    try:
        assert result.exit_code == 0, result.output + (var / "platform.log").read_text()
        assert info and f"platform started (pid {info['pid']}); API key runner-key" in result.stdout
        assert cli(var, "platform", "status").stdout.count("SERVING") == 4
        assert "already running" in cli(var, "platform", "start", "--module", module).stdout
        # Commands find the platform through var/platform.json: its addresses and its key.
        reply = cli(var, "recommend", "anyone", "--n", "2")
        assert reply.exit_code == 0 and "no recommendations" in reply.stdout, reply.output
        stopped = cli(var, "platform", "stop")
        assert stopped.exit_code == 0 and f"stopped (pid {info['pid']})" in stopped.stdout, (
            stopped.output
        )
        assert not (var / "platform.json").exists() and not pid_alive(info["pid"])
        assert "stopped" in (var / "platform.log").read_text()  # it drained and cleaned up itself
        assert_one_error_line(cli(var, "platform", "status"), "not running")
    finally:
        if info and pid_alive(info["pid"]):
            os.kill(info["pid"], signal.SIGKILL)


def test_platform_start_reports_a_child_that_dies(tmp_path: Path) -> None:
    result = cli(
        tmp_path / "var", "platform", "start", "--module", "copyloop_no_such_module", "--wait", "30"
    )
    assert_one_error_line(
        result, "exited with code 1 before serving", "No module named copyloop_no_such_module"
    )
