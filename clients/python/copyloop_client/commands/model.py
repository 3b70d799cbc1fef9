"""`copyloop model train|promote|rollback|list`: the CTR/CVR model's lifecycle."""

from __future__ import annotations

from typing import Annotated

import typer

from copyloop.v1 import prediction_pb2
from copyloop_client.commands.state import cli_errors, console, fail, state
from copyloop_client.render import models_table

app = typer.Typer(
    help="The prediction model: train, promote, roll back, list versions.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
TRAIN_TIMEOUT_S = 600.0


@app.command()
@cli_errors
def train(
    ctx: typer.Context,
    days: Annotated[
        int, typer.Option(min=1, max=365, help="window of served impressions to learn from")
    ] = 7,
) -> None:
    """Trains on the last DAYS of impressions and outcomes; the new version goes live only if
    it beats the live one on the newest fifth of the window."""
    cli = state(ctx)
    reply = cli.client().train(days, timeout=cli.timeout_s or TRAIN_TIMEOUT_S)
    typer.echo(f"trained {reply.model_version}: {reply.reason}")


@app.command()
@cli_errors
def promote(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="a version from `copyloop model list`")],
    force: Annotated[
        bool, typer.Option(help="promote even if it does not beat the live version")
    ] = False,
) -> None:
    """Makes VERSION live if it beats the live version (or with --force); exits 1 if not."""
    reply = state(ctx).client().promote(version, force)
    if not reply.promoted:
        raise fail(f"{version} not promoted: {reply.reason}")
    typer.echo(f"{reply.model_version.version} is live: {reply.reason}")


@app.command()
@cli_errors
def rollback(ctx: typer.Context) -> None:
    """Puts the previously live version back."""
    version = state(ctx).client().rollback()
    typer.echo(f"rolled back: {version.version} is live")


@app.command("list")
@cli_errors
def list_versions(ctx: typer.Context) -> None:
    """Every model version, newest first, with its evaluation metrics."""
    versions = state(ctx).client().list_models()
    if not versions:
        typer.echo(
            "no model versions yet (scores come from the prior); `copyloop model train` makes one"
        )
        return
    console().print(models_table(versions))
    live = [v.version for v in versions if v.state == prediction_pb2.MODEL_VERSION_STATE_LIVE]
    typer.echo(f"live: {live[0] if live else 'none (prior scores)'}")
