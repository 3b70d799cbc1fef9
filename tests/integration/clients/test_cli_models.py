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
    # ECE over ~240 impressions in 15 bins is mostly sampling noise: the gate judges these
    # tiny windows on ranking and log loss.
    "gate_ece_tolerance": 0.1,
    # Clicks here follow the item's category, never its copy: two models' greedy copy choices
    # differ only by noise, and on ~240 impressions with a few heavy inverse-propensity
    # weights that noise crossed 4 standard errors once in a loaded run. This test is about
    # the CLI and the ranking/log-loss rules; the off-policy rule is unit-tested
    # (tests/unit/prediction/training/test_gate.py), so here it never refuses.
    "gate_off_policy_z": 1e9,
    # Versions here are trained and promoted by hand (the trigger has its own tests).
    "auto_retrain_outcomes": 0,
    "guardrail_min_impressions": 0,
}
LIVE = prediction_pb2.MODEL_VERSION_STATE_LIVE
# Clicks that follow the category (a model can learn them) and clicks that follow nothing.
SIGNAL = {"Kitchen": 0.6, "Garden": 0.03}
NOISE = {"Kitchen": 0.3, "Garden": 0.3}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedPlatform]:
    running = ThreadedPlatform(tmp_path_factory.mktemp("models"), prediction_overrides=SMALL_DATA)
    try:
        yield running
    finally:
        running.close()


def traffic(client: Copyloop, users: range, rates: dict[str, float], rng: random.Random) -> None:
    """Recommendations and their outcomes, clicked at `rates[category]`."""
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
            category = "Kitchen" if "kitchen" in r.item_id else "Garden"
            if rng.random() < rates[category]:
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
        # Three windows: clicks unrelated to anything, clicks that follow the locale, and a
        # later window like the second to judge on.
        marks = [time.time() - 1]
        for rates in (NOISE, SIGNAL, SIGNAL):
            traffic(client, range(120), rates, rng)
            marks.append(time.time())
        # Fusion forwards outcomes to the training log through its outbox: wait for delivery.
        assert platform.run(platform.platform.fusion.relay.settle(timeout_s=30))
        noise, signal, judge = (marks[0], marks[1]), (marks[1], marks[2]), (marks[2], marks[3])

        def train(window: tuple[float, float], seed: int) -> str:
            trained = client.train_model(window, judge, epochs=10, seed=seed)
            assert not trained.promoted and trained.model_version.metrics.ctr.example_count > 0
            return str(trained.model_version.version)

        blind, informed, blind_again = train(noise, 1), train(signal, 1), train(noise, 2)

    listed = cli(var_dir, "model", "list")
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.stdout.splitlines() if re.match(rf"^│ {blind} ", line)]
    assert len(rows) == 1 and "registered" in rows[0], listed.stdout
    assert "live: none (prior scores)" in listed.stdout

    # --force skips the gate: the model that learned nothing goes live.
    forced = cli(var_dir, "model", "promote", blind, "--force")
    assert forced.exit_code == 0 and f"{blind} is live: forced" in forced.stdout, forced.output
    # Without --force a version must pass the gate against what is live on its evaluation
    # window: the model that learned the categories does ...
    better = cli(var_dir, "model", "promote", informed)
    assert better.exit_code == 0, better.output
    assert f"{informed} is live: beats live {blind}: ok " in better.stdout
    # ... and another that learned nothing does not (exit 1, one line, the failed rule first).
    worse = cli(var_dir, "model", "promote", blind_again)
    assert worse.exit_code == 1 and worse.stderr.startswith(
        f"error: {blind_again} not promoted: not better than live {informed}: FAIL "
    ), worse.output
    assert len(worse.stderr.strip().splitlines()) == 1 and "Traceback" not in worse.output
    with Copyloop(ClientConfig(addresses=platform.addresses(), api_key=API_KEY)) as client:
        assert {v.version: v.state for v in client.list_models()}[informed] == LIVE
    assert "live: " + informed in cli(var_dir, "model", "list").stdout

    rolled = cli(var_dir, "model", "rollback")
    assert rolled.exit_code == 0 and f"rolled back: {blind} is live" in rolled.stdout
    again = cli(var_dir, "model", "rollback")  # nothing was live before the first one
    assert again.exit_code == 1 and again.stderr.startswith(
        "error: FAILED_PRECONDITION: no earlier live version"
    )
