"""`copyloop model list|promote|rollback` on real trained versions (a platform whose
PredictionService accepts a few hundred impressions, so two small models train in seconds)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.clients.helpers import API_KEY, ThreadedPlatform, catalog_rows
from typer.testing import CliRunner, Result

from copyloop.v1 import prediction_pb2
from copyloop_client import ClientConfig, Copyloop
from copyloop_client.cli import app

SMALL_DATA = {
    "min_train_impressions": 100,
    "min_train_clicks": 10,
    "min_train_conversions": 0,
    "min_eval_impressions": 20,
    "min_eval_clicks": 2,
}
LIVE = prediction_pb2.MODEL_VERSION_STATE_LIVE


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedPlatform]:
    running = ThreadedPlatform(tmp_path_factory.mktemp("models"), prediction_overrides=SMALL_DATA)
    try:
        yield running
    finally:
        running.close()


def traffic(client: Copyloop, users: range, rng: random.Random) -> None:
    """Recommendations and their outcomes: kitchen items get clicked far more often."""
    outcomes = []
    for u in users:
        reply = client.recommend(f"m-user-{u}", n=4)
        for r in reply.recommendations:
            outcomes.append(
                {
                    "request_id": reply.request_id,
                    "impression_id": r.impression_id,
                    "type": "impression",
                }
            )
            if rng.random() < (0.5 if "kitchen" in r.item_id else 0.1):
                outcomes.append(
                    {
                        "request_id": reply.request_id,
                        "impression_id": r.impression_id,
                        "type": "click",
                    }
                )
    assert client.report_outcomes(outcomes).rejected == 0


def cli(var_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--var-dir", str(var_dir), *args], env={"COLUMNS": "200"})


@pytest.mark.slow
def test_list_promote_and_rollback_a_trained_version(
    platform: ThreadedPlatform, tmp_path: Path
) -> None:
    var_dir = tmp_path / "var"
    platform.write_platform_file(var_dir)
    rng = random.Random(7)
    with Copyloop(
        ClientConfig(addresses=platform.addresses(), api_key=API_KEY, timeout_s=30)
    ) as client:
        client.upsert_items(catalog_rows("m"))
        start = time.time() - 1
        traffic(client, range(30), rng)
        split = time.time()
        traffic(client, range(30, 45), rng)
        # Fusion forwards outcomes to the training log through its outbox: wait for delivery.
        assert platform.run(platform.platform.fusion.relay.settle(timeout_s=30))
        trained = client.train_model((start, split), (split, time.time() + 1), epochs=1, seed=1)
    version = trained.model_version.version
    assert not trained.promoted and trained.model_version.metrics.ctr.example_count > 0

    listed = cli(var_dir, "model", "list")
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.stdout.splitlines() if re.match(rf"^│ {version} ", line)]
    assert len(rows) == 1 and "registered" in rows[0], listed.stdout
    assert "live: none (prior scores)" in listed.stdout

    # Without --force a version must beat what is live on its evaluation window; whichever way
    # that goes, the command reports it on one line (exit 1 when not promoted).
    unforced = cli(var_dir, "model", "promote", version)
    if unforced.exit_code == 0:
        assert f"{version} is live" in unforced.stdout
    else:
        assert unforced.exit_code == 1 and unforced.stderr.startswith(
            f"error: {version} not promoted: "
        )
        assert len(unforced.stderr.strip().splitlines()) == 1 and "Traceback" not in unforced.output
        forced = cli(var_dir, "model", "promote", version, "--force")
        assert forced.exit_code == 0 and f"{version} is live: forced" in forced.stdout, (
            forced.output
        )
    with Copyloop(ClientConfig(addresses=platform.addresses(), api_key=API_KEY)) as client:
        assert {v.version: v.state for v in client.list_models()}[version] == LIVE
    assert "live: " + version in cli(var_dir, "model", "list").stdout

    rolled = cli(var_dir, "model", "rollback")  # nothing was live before it
    assert rolled.exit_code == 1 and rolled.stderr.startswith(
        "error: FAILED_PRECONDITION: no earlier live version"
    )
