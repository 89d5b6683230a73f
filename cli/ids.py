"""Ids as people type them: the whole id, or any unique prefix of at least six characters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from cli.client import Client
from cli.output import EXIT_USAGE, fail

MIN_PREFIX = 6
LISTED = 1000  # items per page when the candidates are listed
SHOWN_CANDIDATES = 5
Item = dict[str, Any]


def pick(kind: str, given: str, candidates: list[Item], key: str) -> Item:
    """The one candidate whose ``key`` is ``given`` or starts with it, or exit with a line
    saying there is none or which ones it could be."""
    exact = [c for c in candidates if str(c.get(key)) == given]
    if exact:
        return exact[0]
    if len(given) < MIN_PREFIX:
        fail(
            f"no {kind} with id '{given}' (a shortened id needs at least {MIN_PREFIX} characters)",
            EXIT_USAGE,
        )
    found = [c for c in candidates if str(c.get(key, "")).startswith(given)]
    if not found:
        fail(f"no {kind} with id '{given}'", EXIT_USAGE)
    ids = sorted({str(c[key]) for c in found})
    if len(ids) > 1:
        listed = ", ".join(ids[:SHOWN_CANDIDATES]) + (
            ", ..." if len(ids) > SHOWN_CANDIDATES else ""
        )
        fail(
            f"'{given}' could be any of {len(ids)} {kind}s ({listed}): give more characters",
            EXIT_USAGE,
        )
    return found[0]


def pages(client: Client, path: str, params: dict[str, Any] | None = None) -> Iterator[Item]:
    """Every item of a paged list."""
    offset = 0
    while True:
        page = client.json(
            "GET", path, params={**(params or {}), "limit": LISTED, "offset": offset}
        )
        yield from page["items"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return


def job_id(client: Client, given: str) -> str:
    """The id of the job ``given`` names."""
    page = client.json("GET", "/jobs", params={"id_prefix": given, "limit": SHOWN_CANDIDATES + 1})
    return str(pick("job", given, page["items"], "job_id")["job_id"])


def _direct_or_listed(
    client: Client,
    kind: str,
    given: str,
    path: str,
    key: str,
    listing: Callable[[], Iterator[Item]],
) -> Item:
    response = client.request("GET", f"{path}/{given}", allow=frozenset({404, 422}))
    if response.status_code == 200:
        found: Item = response.json()
        return found
    return pick(kind, given, list(listing()), key)


def backup(client: Client, given: str) -> Item:
    """The record of the backup ``given`` names."""
    return _direct_or_listed(
        client, "backup", given, "/backups", "backup_id", lambda: pages(client, "/backups")
    )


def backup_run(client: Client, given: str) -> list[Item]:
    """The backups taken in the run ``given`` names."""
    records = list(pages(client, "/backups"))
    run = str(pick("backup run", given, records, "run_id")["run_id"])
    return [r for r in records if r["run_id"] == run]


def dead_letter(client: Client, given: str) -> Item:
    """The dead letter ``given`` names."""
    return _direct_or_listed(
        client, "dead letter", given, "/dead-letters", "id", lambda: pages(client, "/dead-letters")
    )
