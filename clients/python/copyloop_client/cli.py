"""`copyloop`: the command line for the platform (typer). Global options pick the config,
API key, addresses and deadline; each command group lives in copyloop_client.commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from copyloop_client.commands import (
    catalog,
    copywriter,
    events,
    experiment,
    model,
    platform,
    serving,
    user,
)
from copyloop_client.commands.state import CliState

app = typer.Typer(
    name="copyloop",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    add_completion=False,
    help="copyloop: catalog, events, copy generation, recommendations, models and experiments.",
)
app.add_typer(platform.app, name="platform")
app.add_typer(catalog.app, name="catalog")
app.add_typer(events.app, name="events")
app.add_typer(model.app, name="model")
app.add_typer(experiment.app, name="experiment")
app.add_typer(user.app, name="user")
app.add_typer(copywriter.app, name="copywriter")
app.command()(serving.generate)
app.command()(serving.review)
app.command()(serving.recommend)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="JSON or TOML client config", exists=False)
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="overrides COPYLOOP_API_KEY / config")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="ProfileService address", metavar="HOST:PORT")
    ] = None,
    generation: Annotated[
        str | None,
        typer.Option("--generation", help="GenerationService address", metavar="HOST:PORT"),
    ] = None,
    prediction: Annotated[
        str | None,
        typer.Option("--prediction", help="PredictionService address", metavar="HOST:PORT"),
    ] = None,
    fusion: Annotated[
        str | None, typer.Option("--fusion", help="FusionService address", metavar="HOST:PORT")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0.001, help="deadline per call, seconds")
    ] = None,
    var_dir: Annotated[
        Path,
        typer.Option(
            "--var-dir", envvar="COPYLOOP_VAR_DIR", help="where platform.json and platform.log live"
        ),
    ] = Path("var"),
) -> None:
    """Addresses and key come from, lowest first: VAR/platform.json (a platform started here),
    --config, COPYLOOP_*_ADDR / COPYLOOP_API_KEY, then these options."""
    state = CliState(
        config_file=config,
        api_key=api_key,
        timeout_s=timeout,
        var_dir=var_dir,
        addresses={
            "profile": profile,
            "generation": generation,
            "prediction": prediction,
            "fusion": fusion,
        },
    )
    ctx.obj = state
    ctx.call_on_close(state.close)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
