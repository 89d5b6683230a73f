"""``ingest dead-letters``: messages the workers gave up on; replay or purge them."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.client import Client, options_of
from cli.output import fields, note, print_json, short_time, table

app = typer.Typer(
    help="Jobs the workers gave up on: list, show, resubmit, purge.", no_args_is_help=True
)

LetterId = Annotated[str, typer.Argument(help="The dead letter's id (from 'dead-letters list').")]


@app.command("list")
def list_letters(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
) -> None:
    """List dead letters with the reason each was given up on."""
    options = options_of(ctx)
    with Client(options) as client:
        page = client.json("GET", "/dead-letters", params={"limit": limit, "offset": offset})
    if options.json:
        print_json(page)
        return
    table(
        ["id", "job", "part", "reason", "description", "deliveries", "dead-lettered"],
        (
            [
                d["id"],
                d.get("job_id"),
                d.get("part"),
                d["reason"],
                d["description"],
                d["delivery_count"],
                short_time(d.get("dead_lettered_at")),
            ]
            for d in page["items"]
        ),
    )
    note(f"{len(page['items'])} of {page['total']} dead letter(s)")


@app.command("show")
def show(ctx: typer.Context, letter_id: LetterId) -> None:
    """Show one dead letter."""
    options = options_of(ctx)
    with Client(options) as client:
        letter = client.json("GET", f"/dead-letters/{letter_id}")
    if options.json:
        print_json(letter)
    else:
        fields(letter, title=f"dead letter {letter_id}")


@app.command("resubmit")
def resubmit(ctx: typer.Context, letter_id: LetterId) -> None:
    """Put a dead letter back on the queue and its job back to queued."""
    options = options_of(ctx)
    with Client(options) as client:
        letter = client.json("POST", f"/dead-letters/{letter_id}/resubmit")
    if options.json:
        print_json(letter)
    else:
        job = letter.get("job_id")
        typer.echo(
            f"resubmitted dead letter {letter_id}" + (f" (job {job} queued again)" if job else "")
        )


@app.command("purge")
def purge(ctx: typer.Context, letter_id: LetterId) -> None:
    """Remove a dead letter for good."""
    options = options_of(ctx)
    with Client(options) as client:
        client.request("DELETE", f"/dead-letters/{letter_id}")
    if options.json:
        print_json({"id": letter_id, "purged": True})
    else:
        typer.echo(f"purged dead letter {letter_id}")
