"""Winners from the platform's replies (ListCreativePerformance rows, creatives, items) and the
`copyloop copywriter cycle` command over stand-in stubs with the tiny model (no servers)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from copyloop.demo.copywriter_cycle import to_winners
from copyloop.generation.copywriter.tiny import build_tiny_model, single_thread
from copyloop.generation.triton_local import DEFAULT_MODEL_REPOSITORY, model_versions
from copyloop.v1 import common_pb2, fusion_pb2, generation_pb2, profile_pb2
from copyloop_client.cli import app
from copyloop_client.client import Copyloop
from copyloop_client.commands.state import CliState

ITEM = common_pb2.Item(
    item_id="lamp-1",
    title="Aurora Desk Lamp",
    brand="Lumo",
    category_path=["Home & Kitchen", "Lighting"],
    price=29.99,
    list_price=39.99,
    selling_points=["warm dimmable light", "USB-C charging"],
)


def creative(cid: str, text: str, angle: str = "value") -> generation_pb2.Creative:
    return generation_pb2.Creative(
        creative_id=cid,
        item_id=ITEM.item_id,
        channel=common_pb2.CHANNEL_PUSH,
        locale="en-US",
        text=text,
        angle=angle,
    )


def perf(cid: str, lift: float, segment: str = "bargain_hunter", angle: str = "value") -> Any:
    return fusion_pb2.CreativePerformance(
        creative_id=cid,
        item_id=ITEM.item_id,
        segment=segment,
        angle=angle,
        impressions=300,
        clicks=30,
        expected_clicks=30 / lift,
        lift=lift,
    )


def test_rows_become_winners_with_the_items_facts_and_the_segment_they_won_in() -> None:
    creatives = {
        "a": creative("a", "Aurora Desk Lamp, now $29.99!"),
        "u": creative("u", "Last day: Aurora Desk Lamp!", angle="urgency"),
    }
    winners = to_winners(
        [
            perf("a", 1.6, segment="deal_seeker", angle=""),  # angle from the creative
            perf("missing", 2.0),  # creative not found
            perf("u", 2.0, angle="urgency"),  # urgency needs a promotion: left out
        ],
        creatives,
        {ITEM.item_id: ITEM},
    )
    assert len(winners) == 1
    w = winners[0]
    assert (w.creative_id, w.segment, w.angle, w.lift, w.impressions) == (
        "a",
        "deal_seeker",
        "value",
        pytest.approx(1.6),
        300,
    )
    assert w.brief is not None
    assert (w.brief.item_title, w.brief.channel, w.brief.audience_segment, w.brief.angle) == (
        "Aurora Desk Lamp",
        "push",
        "deal_seeker",
        "value",
    )
    assert w.brief.list_price == pytest.approx(39.99)


class _Stub:
    def __init__(self, **methods: Any) -> None:
        self.__dict__.update(methods)


class _FakeClient:
    """The three stubs the command calls, answering from fixed rows (two pages of winners);
    the SDK's own paging method reads them."""

    list_creative_performance = Copyloop.list_creative_performance

    def __init__(self) -> None:
        texts = {f"cr_{n}": "Now $29.99: Aurora Desk Lamp! Why wait?" for n in range(8)}
        rows = [perf(cid, 1.2 + n / 10) for n, cid in enumerate(texts)] + [perf("cr_x", 0.5)]
        texts["cr_x"] = "Meh lamp."
        self.requests: list[Any] = []

        def performance(req: Any) -> Any:
            self.requests.append(req)
            start = int(req.page_token or 0)
            page = rows[start : start + 5]
            more = start + 5 < len(rows)
            return fusion_pb2.ListCreativePerformanceResponse(
                creatives=page, next_page_token=str(start + 5) if more else ""
            )

        self.fusion = _Stub(ListCreativePerformance=performance)
        self.generation = _Stub(
            ListCreatives=lambda req: generation_pb2.ListCreativesResponse(
                creatives=[creative(cid, text) for cid, text in texts.items()]
            )
        )
        self.profile = _Stub(
            GetItems=lambda req: profile_pb2.GetItemsResponse(
                items=[ITEM] if ITEM.item_id in req.item_ids else []
            )
        )


def test_the_cycle_command_reads_winners_page_by_page_and_publishes_a_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = tmp_path / "tiny"
    repo = tmp_path / "models"
    shutil.copytree(
        DEFAULT_MODEL_REPOSITORY,
        repo,
        ignore=lambda d, names: [
            n for n in names if n == "__pycache__" or (n.isdigit() and n != "1")
        ],
    )
    fake = _FakeClient()
    monkeypatch.setattr(CliState, "client", lambda self: fake)
    with single_thread():
        build_tiny_model(tiny)
        result = CliRunner().invoke(
            app,
            [
                "--var-dir",
                str(tmp_path / "var"),
                "copywriter",
                "cycle",
                "--min-impressions",
                "100",
                "--steps",
                "4",
                "--checks",
                "2",
                "--model-dir",
                str(tiny),
                "--repository",
                str(repo),
                "--weights-root",
                str(tmp_path / "weights"),
                "--triton-url",
                "none",
            ],
        )
    assert result.exit_code == 0, result.output
    assert [r.page_token for r in fake.requests] == ["", "5"]
    assert all(r.min_impressions == 100 for r in fake.requests)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["version"], report["n_winners"], report["published"]) == (2, 8, True)
    assert model_versions(repo) == [1, 2]
    assert "held-out perplexity" in result.stdout
