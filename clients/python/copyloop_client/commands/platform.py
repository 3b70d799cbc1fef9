"""`copyloop platform start|stop|status`: the local platform as a background process."""

from __future__ import annotations

from typing import Annotated

import typer

from copyloop_client.commands.state import cli_errors, console, fail, state
from copyloop_client.platform_control import platform_status, start_platform, stop_platform
from copyloop_client.render import platform_table

app = typer.Typer(
    help="Start, stop and check the local platform (python -m copyloop.main --serve-only).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@app.command()
@cli_errors
def start(
    ctx: typer.Context,
    wait: Annotated[float, typer.Option(help="seconds to wait until it serves")] = 180.0,
    module: Annotated[str, typer.Option(help="module run with --serve-only")] = "copyloop.main",
) -> None:
    """Starts the platform in the background (output in VAR/platform.log) and waits until
    VAR/platform.json exists and FusionService reports SERVING."""
    var_dir = state(ctx).var_dir
    info, started = start_platform(var_dir, module=module, timeout_s=wait)
    verb = "started" if started else "already running"
    typer.echo(f"platform {verb} (pid {info.pid}); API key {info.api_key}")
    for service, address in info.addresses.items():
        typer.echo(f"  {service:<11} {address}")


@app.command()
@cli_errors
def stop(
    ctx: typer.Context,
    wait: Annotated[float, typer.Option(help="seconds to wait for it to drain and exit")] = 30.0,
) -> None:
    """Sends SIGTERM to the platform in VAR/platform.json and waits until it has exited."""
    _, outcome = stop_platform(state(ctx).var_dir, timeout_s=wait)
    typer.echo(f"platform {outcome}")


@app.command()
@cli_errors
def status(ctx: typer.Context) -> None:
    """Health of each service; exits 1 unless all four are SERVING."""
    result = platform_status(state(ctx).var_dir)
    if not result.running:
        raise fail(f"platform {result.note}")
    console().print(platform_table(result))
    if not result.serving:
        raise fail("not every service is SERVING")
