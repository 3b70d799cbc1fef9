"""`copyloop generate` and `copyloop recommend`: the two calls a marketer tries first."""

from __future__ import annotations

from typing import Annotated

import typer

from copyloop.common import vocabulary
from copyloop_client.commands.state import cli_errors, console, state
from copyloop_client.render import copy_sources_line, recommendations_table, variants_table

ChannelOption = Annotated[str, typer.Option(help=", ".join(vocabulary.CHANNELS))]
LocaleOption = Annotated[str, typer.Option(help=vocabulary.describe(vocabulary.LOCALES))]


@cli_errors
def generate(
    ctx: typer.Context,
    item_id: Annotated[str, typer.Argument(help="a catalog item id")],
    channel: ChannelOption = "push",
    locale: LocaleOption = "en-US",
    n: Annotated[int, typer.Option("--n", min=1, help="variants")] = 3,
    tone: Annotated[
        str | None,
        typer.Option(help="friendly, professional, playful, urgent, luxury, informative"),
    ] = None,
    segment: Annotated[str, typer.Option(help="audience segment, e.g. new_user")] = "",
    seed: Annotated[int | None, typer.Option(help="sampling seed (repeatable output)")] = None,
    store: Annotated[
        bool, typer.Option(help="store the variants in the creative pool as drafts")
    ] = False,
) -> None:
    """Reads the item from ProfileService, asks GenerationService for copy variants and prints
    each with its quality and compliance."""
    client = state(ctx).client()
    item = client.get_item(item_id)
    reply = client.generate(
        item, channel, locale, n, tone=tone, segment=segment, seed=seed, store_in_pool=store
    )
    out = console()
    out.print(f"{item.item_id}: {item.title} ({item.price:.2f} {item.currency_code})")
    if reply.llm_unavailable:
        out.print(
            "[yellow]the language model is unavailable: these are template fallbacks[/yellow]"
        )
    out.print(variants_table(reply))
    if reply.rejected_attempt_count:
        out.print(
            f"{reply.rejected_attempt_count} model attempts were rejected by the checks "
            "and regenerated"
        )


@cli_errors
def recommend(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="the shopper's id")],
    channel: ChannelOption = "push",
    locale: LocaleOption = "en-US",
    n: Annotated[int, typer.Option("--n", min=1, max=100, help="items")] = 10,
    experiment: Annotated[
        str, typer.Option(help="experiment id (default: the running one, if any)")
    ] = "",
    item: Annotated[
        list[str] | None,
        typer.Option("--item", help="candidate item id (repeatable); default: recalled"),
    ] = None,
) -> None:
    """Ranked items for a shopper, each with its copy, predicted CTR/CVR and reasons."""
    reply = (
        state(ctx)
        .client()
        .recommend(
            user_id, channel, locale, n, experiment_id=experiment, candidate_item_ids=item or ()
        )
    )
    out = console()
    notes = [f"user {user_id}"]
    if reply.cold_start:
        notes.append("cold start")
    if reply.assignment.experiment_id:
        notes.append(f"experiment {reply.assignment.experiment_id} arm {reply.assignment.arm_id}")
    out.print(", ".join(notes))
    if not reply.recommendations:
        out.print("no recommendations (is the catalog loaded for this API key's tenant?)")
    else:
        out.print(recommendations_table(reply, out.width))
        out.print(copy_sources_line(reply))
    for d in reply.degradations:
        out.print(f"[yellow]degraded: {d.component} -> {d.fallback} ({d.reason})[/yellow]")
