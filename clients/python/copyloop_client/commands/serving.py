"""`copyloop generate`, `copyloop review` and `copyloop recommend`: the calls a marketer tries
first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from copyloop.common import vocabulary
from copyloop_client.commands.state import cli_errors, console, state
from copyloop_client.render import (
    copy_sources_line,
    recommendations_table,
    review_table,
    variants_table,
)

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
def review(
    ctx: typer.Context,
    item_id: Annotated[str, typer.Argument(help="a catalog item id")],
    text: Annotated[str, typer.Argument(help="the copy to check")],
    channel: ChannelOption = "push",
    locale: LocaleOption = "en-US",
    segment: Annotated[str, typer.Option(help="audience segment it is written for")] = "",
    discount: Annotated[
        float, typer.Option(help="the promotion's discount in percent (0 = none)")
    ] = 0.0,
    free_shipping: Annotated[bool, typer.Option(help="the promotion ships free")] = False,
    ends: Annotated[
        datetime | None, typer.Option(help="when the promotion ends (time-limited wording)")
    ] = None,
) -> None:
    """Checks copy you wrote as generated copy is checked: every price, discount and number
    against the item (and promotion), sentiment, compliance and length. Exits 1 when it fails."""
    reply = (
        state(ctx)
        .client()
        .review(
            item_id,
            text,
            channel,
            locale,
            segment=segment,
            discount_percent=discount,
            free_shipping=free_shipping,
            promotion_ends=ends.replace(tzinfo=ends.tzinfo or UTC) if ends else None,
        )
    )
    out = console()
    out.print(review_table(text, reply))
    if not reply.passed:
        raise typer.Exit(1)


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
