"""`copyloop user delete`: privacy requests."""

from __future__ import annotations

from typing import Annotated

import typer

from copyloop_client.commands.state import cli_errors, state

app = typer.Typer(
    help="Shoppers: erase a user everywhere (privacy requests).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@app.command()
@cli_errors
def delete(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="the shopper's id")],
) -> None:
    """Erases USER_ID from every service: fusion's serve log, assignments and outcomes now;
    the profile and the prediction training log through fusion's outbox, retried until
    delivered. Running it again is harmless."""
    reply = state(ctx).client().delete_user(user_id)
    typer.echo(
        f"deleted user {user_id}: {reply.deleted_impression_count} impressions, "
        f"{reply.deleted_outcome_count} outcomes, {reply.deleted_assignment_count} assignments "
        f"in fusion; {reply.queued_deletion_count} deletions queued for profile and prediction"
    )
