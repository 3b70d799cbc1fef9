"""`copyloop copywriter cycle|versions`: the copywriter learns from the copy that won.

`cycle` reads the winners from FusionService (ListCreativePerformance: served creatives' lift
per shopper segment and copy angle), their texts from GenerationService (ListCreatives) and
their items from ProfileService (GetItems), fine-tunes the newest copywriter version on them,
publishes the result as the next version of the Triton model repository and loads it into
Triton (explicit model control: no restart). It needs the copyloop service package (torch,
transformers) installed beside the client, as in the project's .venv.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from copyloop.v1 import generation_pb2, profile_pb2
from copyloop_client.commands.state import cli_errors, console, fail, state

app = typer.Typer(
    help="The copywriter LLM: fine-tune on winning copy, publish and load a new version.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
TRITON_URL_ENV = "COPYLOOP_GENERATION_TRITON_URL"
MODEL_DIR_ENV = "COPYWRITER_MODEL_DIR"
DEFAULT_MODEL_DIR = Path("var/models/copywriter-demo")
PAGE = 500


def _platform_value(var_dir: Path, key: str) -> str:
    """A value a running platform wrote to VAR/platform.json ("" when absent)."""
    try:
        return str(json.loads((var_dir / "platform.json").read_text()).get(key, "") or "")
    except (OSError, ValueError):
        return ""


def _creatives(client: Any, item_ids: set[str]) -> dict[str, generation_pb2.Creative]:
    found: dict[str, generation_pb2.Creative] = {}
    for item_id in sorted(item_ids):
        token = ""
        while True:
            reply = client.generation.ListCreatives(
                generation_pb2.ListCreativesRequest(
                    item_id=item_id, page_size=1000, page_token=token
                )
            )
            found.update((c.creative_id, c) for c in reply.creatives)
            token = reply.next_page_token
            if not token:
                break
    return found


def _items(client: Any, item_ids: set[str]) -> dict[str, Any]:
    ids = sorted(item_ids)
    found: dict[str, Any] = {}
    for start in range(0, len(ids), 1000):
        reply = client.profile.GetItems(
            profile_pb2.GetItemsRequest(item_ids=ids[start : start + 1000])
        )
        found.update((item.item_id, item) for item in reply.items)
    return found


@app.command()
@cli_errors
def cycle(
    ctx: typer.Context,
    min_impressions: Annotated[
        int, typer.Option(min=1, help="only creatives served at least this often")
    ] = 100,
    min_lift: Annotated[
        float, typer.Option(help="only creatives whose lift is above this (1 = as predicted)")
    ] = 1.0,
    segment: Annotated[str, typer.Option(help="only this shopper segment ('' = all)")] = "",
    limit: Annotated[int, typer.Option(min=2, help="most winners to read")] = 5000,
    lora: Annotated[
        bool, typer.Option("--lora/--full", help="LoRA adapters (merged) or full fine-tuning")
    ] = True,
    steps: Annotated[int, typer.Option(min=1, help="fine-tuning steps")] = 60,
    learning_rate: Annotated[
        float | None, typer.Option(help="default 2e-3 (LoRA) / 3e-4 (full)")
    ] = None,
    holdout: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="share of winners held out for perplexity")
    ] = 0.2,
    checks: Annotated[
        int, typer.Option(min=1, help="frames per model for the check pass rate")
    ] = 24,
    force: Annotated[bool, typer.Option(help="publish even if the check pass rate fell")] = False,
    threads: Annotated[
        int, typer.Option(min=0, help="torch threads while it runs (0 = torch's default)")
    ] = 1,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="version 1's weights (Triton's COPYWRITER_MODEL_DIR); default "
            "$COPYWRITER_MODEL_DIR, the platform's, or var/models/copywriter-demo"
        ),
    ] = None,
    triton_url: Annotated[
        str | None,
        typer.Option(
            help=f"Triton gRPC host:port to load the new version into; default ${TRITON_URL_ENV} "
            "or the platform's; 'none' = publish only"
        ),
    ] = None,
    repository: Annotated[
        Path | None, typer.Option(help="Triton model repository (default deploy/triton/models)")
    ] = None,
    weights_root: Annotated[
        Path, typer.Option(help="where the new weights go (copywriter-v<N>/)")
    ] = Path("var/models"),
) -> None:
    """Fine-tunes the newest copywriter on the copy that won (lift > MIN_LIFT with at least
    MIN_IMPRESSIONS), reports held-out perplexity and the checks' pass rate before and after,
    publishes version N+1 and loads it into Triton. The last line is the report as JSON."""
    from copyloop.demo.copywriter_cycle import to_winners
    from copyloop.generation.copywriter.cycle import CycleConfig, CycleError, run_cycle
    from copyloop.generation.triton_local import DEFAULT_MODEL_REPOSITORY

    cli = state(ctx)
    weights = model_dir or Path(
        os.environ.get(MODEL_DIR_ENV, "")
        or _platform_value(cli.var_dir, "model_dir")
        or DEFAULT_MODEL_DIR
    )
    if not (weights / "config.json").is_file():
        raise fail(f"{weights} is not a model directory: pass --model-dir (version 1's weights)")
    url = (
        triton_url
        if triton_url is not None
        else (os.environ.get(TRITON_URL_ENV, "") or _platform_value(cli.var_dir, "triton_url"))
    )
    url = "" if url.lower() == "none" else url
    client = cli.client()
    rows = client.list_creative_performance(
        min_impressions=min_impressions, segment=segment, limit=limit, page_size=PAGE
    )
    item_ids = {r.item_id for r in rows}
    winners = to_winners(rows, _creatives(client, item_ids), _items(client, item_ids))
    typer.echo(
        f"{len(rows)} served creatives with >= {min_impressions} impressions; "
        f"{len(winners)} with their copy and item"
    )
    config = CycleConfig(
        min_impressions=min_impressions,
        min_lift=min_lift,
        holdout_fraction=holdout,
        lora=lora,
        max_steps=steps,
        learning_rate=learning_rate,
        n_checks=checks,
        force=force,
        torch_threads=threads,
    )
    try:
        report = run_cycle(
            winners,
            repository=repository or DEFAULT_MODEL_REPOSITORY,
            root_model_dir=weights,
            weights_root=weights_root,
            config=config,
            triton_url=url,
            log=lambda line: typer.echo(line, err=True),
        )
    except CycleError as exc:
        raise fail(str(exc)) from None
    console().print(report.table(), markup=False)
    if report.published and not url:
        typer.echo(
            f"version {report.version} published, not loaded (no Triton URL): load it with "
            "Triton's repository API, or restart the platform",
            err=True,
        )
    typer.echo(report.to_json())
    if not report.published:
        raise typer.Exit(1)


@app.command()
@cli_errors
def versions(
    repository: Annotated[
        Path | None, typer.Option(help="Triton model repository (default deploy/triton/models)")
    ] = None,
) -> None:
    """Lists the copywriter versions in the model repository: weights, parent, figures."""
    from copyloop.generation.triton_local import (
        DEFAULT_MODEL_REPOSITORY,
        model_versions,
        version_info,
    )

    repo = repository or DEFAULT_MODEL_REPOSITORY
    for version in model_versions(repo):
        info = version_info(repo, version)
        if not info:
            typer.echo(f"{version}\tweights from COPYWRITER_MODEL_DIR / config (the base)")
            continue
        typer.echo(
            f"{version}\t{info.get('model_dir', '')}\tparent {info.get('parent_version', '?')}"
            f"\tpass rate {info.get('pass_rate_before', 0):.0%} -> "
            f"{info.get('pass_rate_after', 0):.0%}\t{info.get('created', '')}"
        )
