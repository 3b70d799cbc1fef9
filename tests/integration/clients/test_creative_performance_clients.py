"""The SDK (blocking and asyncio) and the CLI for ListCreativePerformance and for experiment
arms that pin a copywriter or prompt template version, against the real platform: pool
creatives are served through Recommend, their impressions and clicks reported, and the
listing read back page by page."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.clients.helpers import API_KEY, ThreadedPlatform, catalog_rows
from typer.testing import CliRunner, Result

from copyloop.v1 import fusion_pb2, generation_pb2
from copyloop_client import AsyncCopyloop, ClientConfig, Copyloop, InputError
from copyloop_client.cli import app

F = fusion_pb2
PREFIX = "perf"
ITEMS = [f"{PREFIX}-kitchen-{n}" for n in range(3)]
WIDE = {"COLUMNS": "250"}


@pytest.fixture(scope="module")
def served(platform: ThreadedPlatform) -> dict[str, tuple[int, int]]:
    """Pool creatives for ITEMS, served to a few shoppers, with impressions for all and clicks
    for some: creative id -> (impressions, clicks) as reported."""
    counts: dict[str, list[int]] = {}
    config = ClientConfig(addresses=platform.addresses(), api_key=API_KEY, timeout_s=60.0)
    with Copyloop(config) as client:
        client.upsert_items(catalog_rows(PREFIX))
        for item_id in ITEMS:
            reply = client.generate(item_id, n=2, store_in_pool=True)
            for v in reply.variants:
                if v.creative_id:
                    client.generation.ApproveCreative(
                        generation_pb2.ApproveCreativeRequest(
                            creative_id=v.creative_id, reviewer="qa", make_live=True
                        )
                    )
        for u in range(8):
            reply = client.recommend(
                f"perf-shopper-{u}",
                n=len(ITEMS),
                candidate_item_ids=ITEMS,
                latency_budget_ms=20_000,
            )
            for n, r in enumerate(reply.recommendations):
                assert r.copy.source == F.COPY_SOURCE_POOL, r.copy
                seen = counts.setdefault(r.copy.creative_id, [0, 0])
                client.report_outcome(reply.request_id, r.impression_id, "impression")
                seen[0] += 1
                if (u + n) % 3 == 0:
                    client.report_outcome(reply.request_id, r.impression_id, "click")
                    seen[1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def config_of(platform: ThreadedPlatform) -> ClientConfig:
    return ClientConfig(addresses=platform.addresses(), api_key=API_KEY, timeout_s=20.0)


def per_creative(found: list[F.CreativePerformance]) -> dict[str, tuple[int, int]]:
    """Summed over segments (a creative may have been served to several)."""
    totals: dict[str, list[int]] = {}
    for c in found:
        t = totals.setdefault(c.creative_id, [0, 0])
        t[0] += c.impressions
        t[1] += c.clicks
    return {k: (v[0], v[1]) for k, v in totals.items()}


def test_sdk_lists_every_served_creative_best_lift_first(
    platform: ThreadedPlatform, served: dict[str, tuple[int, int]]
) -> None:
    with Copyloop(config_of(platform)) as client:
        found = client.list_creative_performance(page_size=2)
        assert per_creative(found) == served
        lifts = [c.lift for c in found]
        assert lifts == sorted(lifts, reverse=True)
        assert all(c.item_id in ITEMS and c.expected_clicks > 0 for c in found)
        assert client.list_creative_performance(limit=3, page_size=2) == found[:3]
        most = max(c.impressions for c in found)
        assert [c.impressions for c in client.list_creative_performance(min_impressions=most)] == [
            c.impressions for c in found if c.impressions >= most
        ]


async def test_async_sdk_lists_the_same(
    platform: ThreadedPlatform, served: dict[str, tuple[int, int]]
) -> None:
    with Copyloop(config_of(platform)) as client:
        expected = client.list_creative_performance()
    async with AsyncCopyloop(config_of(platform)) as client:
        assert await client.list_creative_performance(page_size=1) == expected
        segment = expected[0].segment
        only = await client.list_creative_performance(segment=segment)
        assert only == [c for c in expected if c.segment == segment]


def test_sdk_pins_arm_versions(platform: ThreadedPlatform) -> None:
    with Copyloop(config_of(platform)) as client:
        experiment = client.create_experiment(
            "sdk-copywriter",
            ["v1:PERSONALISED_BANDIT:1", "v2:PERSONALISED_BANDIT:1"],
            copywriter_versions={"v1": "1", "v2": "2"},
            template_versions={"v2": "v2"},
        )
        assert [
            (a.arm_id, a.copywriter_version, a.prompt_template_version) for a in experiment.arms
        ] == [("v1", "1", ""), ("v2", "2", "v2")]
        with pytest.raises(InputError, match="no arm 'v3'"):
            client.create_experiment(
                "sdk-copywriter-2",
                ["v1:PERSONALISED_BANDIT:1", "v2:PERSONALISED_BANDIT:1"],
                copywriter_versions={"v3": "3"},
            )
        client.stop_experiment("sdk-copywriter")


@pytest.fixture(scope="module")
def var_dir(platform: ThreadedPlatform, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-perf") / "var"
    platform.write_platform_file(path)
    return path


def cli(var_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--var-dir", str(var_dir), *args], env=WIDE)


def test_cli_winners_prints_the_table(
    var_dir: Path, platform: ThreadedPlatform, served: dict[str, tuple[int, int]]
) -> None:
    result = cli(var_dir, "experiment", "winners", "--min-impressions", "1", "--limit", "2")
    assert result.exit_code == 0, result.output
    with Copyloop(config_of(platform)) as client:
        top = client.list_creative_performance(limit=2)
    for c in top:
        assert c.creative_id in result.stdout
        assert f"{c.lift:.2f} [{c.lift_interval.lower:.2f}, {c.lift_interval.upper:.2f}]" in (
            result.stdout
        )
    none = cli(var_dir, "experiment", "winners", "--min-impressions", "1000000")
    assert none.exit_code == 0 and "no creatives with 1000000+ impressions yet" in none.stdout


def test_cli_create_pins_versions_and_rejects_a_bad_pin(var_dir: Path) -> None:
    result = cli(
        var_dir,
        "experiment",
        "create",
        "cli-copywriter",
        "--arm",
        "v1:PERSONALISED_BANDIT:1",
        "--arm",
        "v2:PERSONALISED_BANDIT:1",
        "--copywriter-version",
        "v2=2",
        "--template-version",
        "v2=v2",
    )
    assert result.exit_code == 0, result.output
    assert "v2 (personalised_bandit, weight 1, copywriter 2, template v2)" in result.stdout
    assert "v1 (personalised_bandit, weight 1)" in result.stdout
    bad = cli(
        var_dir,
        "experiment",
        "create",
        "cli-copywriter-2",
        "--arm",
        "v1:PERSONALISED_BANDIT:1",
        "--arm",
        "v2:PERSONALISED_BANDIT:1",
        "--copywriter-version",
        "2",
    )
    assert bad.exit_code == 1
    assert "--copywriter-version: expected ARM_ID=VERSION" in bad.stderr
    assert "Traceback" not in bad.output
    cli(var_dir, "experiment", "stop", "cli-copywriter")
