"""`Copyloop.delete_user` and `copyloop user delete` against the real platform: the user's
recommendations and outcomes are gone from every service afterwards."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from tests.integration.clients.helpers import API_KEY, ThreadedPlatform, catalog_rows
from typer.testing import CliRunner

from copyloop.fusion import schema as fusion_schema
from copyloop.prediction import schema as prediction_schema
from copyloop.profile import schema as profile_schema
from copyloop_client import ClientConfig, Copyloop
from copyloop_client.cli import app


def _shop(client: Copyloop, user_id: str) -> None:
    reply = client.recommend(user_id, n=2)
    client.report_outcomes(
        [
            {"request_id": reply.request_id, "impression_id": r.impression_id, "type": t}
            for r in reply.recommendations
            for t in ("impression", "click")
        ]
    )


def _left(platform: ThreadedPlatform, user_id: str) -> dict[str, int]:
    """Rows still about the user in fusion's serve log, prediction's log and profile's events."""
    p = platform.platform
    assert platform.run(p.fusion.relay.settle(timeout_s=30))
    counts = {}
    for name, engine, table in (
        ("served", p.fusion.store.engine, fusion_schema.served),
        ("impressions", p.prediction.domain.store.engine, prediction_schema.impressions),
        ("events", p.profile.domain.store.engine, profile_schema.events),
    ):
        with engine.connect() as conn:
            counts[name] = int(
                conn.scalar(
                    select(func.count()).select_from(table).where(table.c.user_id == user_id)
                )
                or 0
            )
    return counts


def test_sdk_and_cli_delete_a_user_everywhere(platform: ThreadedPlatform, tmp_path: Path) -> None:
    config = ClientConfig(addresses=platform.addresses(), api_key=API_KEY, timeout_s=20)
    with Copyloop(config) as client:
        client.upsert_items(catalog_rows("del"))
        _shop(client, "del-sdk")
        _shop(client, "del-cli")
        assert all(_left(platform, "del-sdk").values())

        reply = client.delete_user("del-sdk")
        assert reply.deleted_impression_count == 2 and reply.deleted_outcome_count == 4
        assert _left(platform, "del-sdk") == {"served": 0, "impressions": 0, "events": 0}

    var_dir = tmp_path / "var"
    platform.write_platform_file(var_dir)
    result = CliRunner().invoke(app, ["--var-dir", str(var_dir), "user", "delete", "del-cli"])
    assert result.exit_code == 0, result.output
    assert "deleted user del-cli: 2 impressions, 4 outcomes" in result.stdout
    assert _left(platform, "del-cli") == {"served": 0, "impressions": 0, "events": 0}
