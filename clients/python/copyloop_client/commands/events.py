"""`copyloop events ingest FILE`: behaviour events streamed to ProfileService."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from copyloop_client.commands.state import cli_errors, fail, state
from copyloop_client.files import read_events

app = typer.Typer(
    help="Behaviour events: ingest into ProfileService.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
SHOWN_REJECTIONS = 5
LONG_CALL_S = 600.0  # a big file takes longer than the default deadline; --timeout overrides


class EventFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


@app.command()
@cli_errors
def ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or JSONL (optionally .gz)")],
    format: Annotated[
        EventFormat | None, typer.Option("--format", help="default: from the file name")
    ] = None,
    chunk_size: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
    strict: Annotated[bool, typer.Option(help="exit 1 if any event was rejected")] = False,
) -> None:
    """Streams the events in one IngestEventStream call and prints how many were accepted,
    duplicates (an event_id already applied) and rejected, with the first reasons. Columns:
    event_id, user_id, type, item_id, event_time (ISO 8601 or epoch seconds), quantity, price,
    query, request_id, creative_id. The whole file is checked before anything is sent."""
    events = read_events(file, format.value if format else None)
    if not events:
        typer.echo(f"{file}: no events")
        return
    cli = state(ctx)
    client = cli.client()
    with tqdm(total=len(events), unit="event", desc="ingest", disable=None, leave=False) as bar:
        summary = client.stream_events(
            events, chunk_size=chunk_size, on_chunk=bar.update, timeout=cli.timeout_s or LONG_CALL_S
        )
    typer.echo(
        f"{len(events)} events: {summary.accepted} accepted, {summary.duplicate} duplicate, "
        f"{summary.rejected} rejected"
    )
    for r in summary.rejections[:SHOWN_REJECTIONS]:
        typer.echo(f"  rejected #{r.index} ({r.event_id or 'no id'}): {r.reason}")
    if summary.rejected > SHOWN_REJECTIONS:
        typer.echo(f"  ... and {summary.rejected - SHOWN_REJECTIONS} more")
    if strict and summary.rejected:
        raise fail(f"{summary.rejected} events rejected")
