"""`copyloop catalog load FILE`: a CSV/JSONL catalog (or the Amazon sample) into ProfileService."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from copyloop_client.commands.state import cli_errors, state
from copyloop_client.files import read_amazon_items, read_items

app = typer.Typer(
    help="Catalog: load items into ProfileService.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


class CatalogFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    amazon = "amazon"


@app.command()
@cli_errors
def load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or JSONL (optionally .gz)")],
    format: Annotated[
        CatalogFormat | None, typer.Option("--format", help="default: from the file name")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000)] = 500,
) -> None:
    """Creates or updates items in batches and prints how many were created, updated and
    unchanged. Columns: item_id, title, brand, category_path ("A > B"), price, list_price,
    currency_code, stock, selling_points ("a | b"), tags ("a | b"), attributes (JSON).
    --format amazon reads the Amazon 2020 sample (Uniq Id, Product Name, Category, Selling
    Price, About Product)."""
    if format is CatalogFormat.amazon:
        items = read_amazon_items(file)
    else:
        items = read_items(file, format.value if format else None)
    if not items:
        typer.echo(f"{file}: no items")
        return
    summary = state(ctx).client().upsert_items(items, batch_size=batch_size)
    typer.echo(
        f"{summary.total} items: {summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged"
    )
