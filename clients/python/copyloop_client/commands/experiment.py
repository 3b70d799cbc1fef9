"""`copyloop experiment create|report|list|stop|winners`: A/B tests of copy strategies (and of
copywriter or prompt template versions), and the creatives that beat their prediction."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from copyloop.v1 import fusion_pb2
from copyloop_client.commands.state import cli_errors, console, fail, state
from copyloop_client.convert import parse_arm_pins
from copyloop_client.render import experiment_line, performance_table, report_table, slice_table

app = typer.Typer(
    help="Experiments: arms of copy strategies, reports with lift and P(best).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@app.command()
@cli_errors
def create(
    ctx: typer.Context,
    experiment_id: Annotated[str, typer.Argument(help="1-64 characters of [a-z0-9-]")],
    arm: Annotated[
        list[str],
        typer.Option(
            "--arm", help="ARM_ID:STRATEGY:WEIGHT, e.g. bandit:PERSONALISED_BANDIT:1 (repeat)"
        ),
    ],
    name: Annotated[str, typer.Option(help="display name")] = "",
    copywriter_version: Annotated[
        list[str] | None,
        typer.Option(
            "--copywriter-version",
            help="ARM_ID=VERSION: that arm serves only copy of this copywriter model version "
            "(repeat per arm)",
        ),
    ] = None,
    template_version: Annotated[
        list[str] | None,
        typer.Option(
            "--template-version",
            help="ARM_ID=VERSION: that arm serves only copy of this prompt template version "
            "(repeat per arm)",
        ),
    ] = None,
) -> None:
    """Creates a running experiment. Strategies: PERSONALISED_BANDIT, GENERIC_COPY,
    RANDOM_COPY, GREEDY_PREDICTED. Pin versions to A/B-test a new copywriter, e.g.
    `--arm v1:PERSONALISED_BANDIT:1 --arm v2:PERSONALISED_BANDIT:1 --copywriter-version v1=1
    --copywriter-version v2=2`."""
    experiment = (
        state(ctx)
        .client()
        .create_experiment(
            experiment_id,
            arm,
            name,
            copywriter_versions=parse_arm_pins(copywriter_version or [], "--copywriter-version"),
            template_versions=parse_arm_pins(template_version or [], "--template-version"),
        )
    )
    typer.echo(f"created {experiment_line(experiment)}")


@app.command()
@cli_errors
def report(
    ctx: typer.Context,
    experiment_id: Annotated[str, typer.Argument()],
    baseline: Annotated[
        str, typer.Option(help="baseline arm (default: the service's choice)")
    ] = "",
    png: Annotated[
        Path | None, typer.Option(help="write the CTR-over-time chart to this PNG file")
    ] = None,
) -> None:
    """Per-arm users, impressions, clicks, CTR/CVR, CTR lift with its interval, P(best) and
    the sample-ratio check."""
    reply = (
        state(ctx)
        .client()
        .experiment_report(experiment_id, baseline, include_chart=png is not None)
    )
    out = console()
    out.print(experiment_line(reply.experiment))
    out.print(report_table(reply))
    if reply.slices:
        out.print(slice_table(reply))
    srm = (
        "MISMATCH: traffic split differs from the weights" if reply.sample_ratio_mismatch else "ok"
    )
    out.print(f"sample ratio: {srm} (p = {reply.sample_ratio_p_value:.3f})")
    if png is not None:
        if not reply.chart_png:
            raise fail("no chart: the experiment has no impressions yet")
        try:
            png.write_bytes(reply.chart_png)
        except OSError as exc:
            raise fail(f"cannot write {png}: {exc.strerror or exc}") from None
        out.print(f"chart written to {png} ({len(reply.chart_png)} bytes)")


@app.command("list")
@cli_errors
def list_experiments(ctx: typer.Context) -> None:
    """Every experiment of this tenant, with its arms and state."""
    client = state(ctx).client()
    token = ""
    shown = 0
    while True:
        reply = client.fusion.ListExperiments(
            fusion_pb2.ListExperimentsRequest(page_size=100, page_token=token)
        )
        for e in reply.experiments:
            typer.echo(experiment_line(e))
            shown += 1
        token = reply.next_page_token
        if not token:
            break
    if not shown:
        typer.echo("no experiments")


@app.command()
@cli_errors
def stop(ctx: typer.Context, experiment_id: Annotated[str, typer.Argument()]) -> None:
    """Stops assigning users to the experiment; its report stays available."""
    typer.echo(f"stopped {experiment_line(state(ctx).client().stop_experiment(experiment_id))}")


@app.command()
@cli_errors
def winners(
    ctx: typer.Context,
    segment: Annotated[str, typer.Option(help="only this shopper segment (default: all)")] = "",
    min_impressions: Annotated[
        int, typer.Option(min=0, help="only creatives served at least this often")
    ] = 100,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="at most this many")] = 20,
) -> None:
    """Pool creatives that beat their predicted CTR, best lift first, per shopper segment:
    clicks over the clicks expected, shrunk toward 1 for small counts, with a 95% interval.
    The copy to fine-tune the copywriter on."""
    found = (
        state(ctx)
        .client()
        .list_creative_performance(min_impressions=min_impressions, segment=segment, limit=limit)
    )
    if not found:
        typer.echo(f"no creatives with {min_impressions}+ impressions yet")
        return
    console().print(performance_table(found))
