"""``ingest dead-letters``: messages the workers gave up on; replay or purge them."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import ids
from cli.client import Client, options_of
from cli.command import Command, group
from cli.output import fields, note, print_json, say, short_id, short_time, table

app = group(help="Jobs the workers gave up on: list, show, resubmit, purge.")

LetterId = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="The dead letter's id, or its first 6+ characters (from 'dead-letters list').",
    ),
]


@app.command("list", cls=Command)
def list_letters(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, metavar="N", help="Items per page.")
    ] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, metavar="N", help="Items to skip.")] = 0,
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
                short_id(d["id"]),
                short_id(d.get("job_id")),
                d.get("part"),
                d["reason"],
                d["description"],
                d["delivery_count"],
                short_time(d.get("dead_lettered_at"), seconds=False),
            ]
            for d in page["items"]
        ),
        optional=["dead-lettered", "deliveries", "part"],
    )
    note(f"{len(page['items'])} of {page['total']} dead letter(s)")


@app.command("show", cls=Command)
def show(ctx: typer.Context, letter_id: LetterId) -> None:
    """Show one dead letter."""
    options = options_of(ctx)
    with Client(options) as client:
        letter = ids.dead_letter(client, letter_id)
    if options.json:
        print_json(letter)
    else:
        fields(letter, title=f"dead letter {letter['id']}")


@app.command("resubmit", cls=Command)
def resubmit(ctx: typer.Context, letter_id: LetterId) -> None:
    """Put a dead letter back on the queue and its job back to queued."""
    options = options_of(ctx)
    with Client(options) as client:
        found = ids.dead_letter(client, letter_id)
        letter = client.json("POST", f"/dead-letters/{found['id']}/resubmit")
    if options.json:
        print_json(letter)
    else:
        job = letter.get("job_id")
        say(
            f"resubmitted dead letter {short_id(letter['id'])}"
            + (f" (job {short_id(job)} queued again)" if job else "")
        )


@app.command("purge", cls=Command)
def purge(ctx: typer.Context, letter_id: LetterId) -> None:
    """Remove a dead letter for good."""
    options = options_of(ctx)
    with Client(options) as client:
        found = ids.dead_letter(client, letter_id)
        client.request("DELETE", f"/dead-letters/{found['id']}")
    if options.json:
        print_json({"id": found["id"], "purged": True})
    else:
        say(f"purged dead letter {short_id(found['id'])}")
