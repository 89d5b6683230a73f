"""A catalog of the user's own tables (tests/support/catalogs/shop.toml) goes through everything
the challenge's tables do, in real processes over HTTP: uploads with rejections of every rule,
batches, backups and restores, and workers killed during a load."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from common.model.catalog_file import load_catalog
from common.sql.catalog_tables import catalog_tables, key_column
from common.sql.db import Database
from tests.faults.conftest import Fleet, get_job, query, upload, wait_for_job
from tests.support.catalogs import SHOP
from tests.support.services import postgres_database
from tests.support.shop_data import order_line, shop_files

JOB_SECONDS = 120.0
# The file of the kill test: big enough for several parts with a few blocks each.
KILL_ROWS = 200_000
KILL_BAD_EVERY = 997
KILL_ENV = {"BLOCK_BYTES": "65536", "BLOB_CHUNK_BYTES": "65536", "PART_BYTES": str(2 << 20)}


@pytest.fixture(params=["sqlite", "postgresql"])
def shop_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
        return
    with postgres_database() as url:
        yield url


def contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every shop table, by key, as the database gives them back."""
    tables = catalog_tables(load_catalog(SHOP)).data
    db = Database.from_url(url)
    try:
        with db.read() as conn:
            return {
                name: [tuple(r) for r in conn.execute(select(t).order_by(key_column(t)))]
                for name, t in tables.items()
            }
    finally:
        db.dispose()


def rejected(client: httpx.Client, job_id: str) -> dict[int, list[str]]:
    answer = client.get(f"/jobs/{job_id}/rejected-rows", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return {r["line"]: [e["rule"] for e in r["errors"]] for r in answer.json()["items"]}


def test_a_declared_catalog_loads_rejects_batches_backs_up_and_restores(
    fleet_factory: Any, shop_url: str
) -> None:
    files = shop_files()
    fleet: Fleet = fleet_factory(shop_url, CATALOG_FILE=str(SHOP))
    fleet.api()
    fleet.worker()
    with httpx.Client(base_url=fleet.base_url, timeout=60) as client:
        # Given the five files sent in one request, children first,
        sent = [(t, (f"{t}.csv", e.body, "text/csv")) for t, e in reversed(files.items())]
        answer = client.post("/uploads", files=sent)
        assert answer.status_code == 202, answer.text

        # when they are loaded, each job keeps its valid rows and names each bad line's rule,
        jobs = {j["table"]: j for j in answer.json()["jobs"]}
        assert list(jobs) == list(files)  # queued parents first
        for table, expected in files.items():
            done = wait_for_job(client, jobs[table]["job_id"], JOB_SECONDS)
            assert done["status"] == "succeeded", done
            assert (done["rows_inserted"], done["rows_rejected"]) == (
                len(expected.keys),
                len(expected.bad),
            ), (table, done)
            found = rejected(client, done["job_id"])
            assert {line: rules[0] for line, rules in found.items()} == expected.bad, table
        stored = contents(shop_url)
        for table, expected in files.items():
            assert {row[_key_index(table)] for row in stored[table]} == expected.keys, table

        # a batch takes JSON values of each type and rejects what the file would,
        batch = client.post(
            "/tables/order_lines/rows",
            json={
                "rows": [
                    _batch_row(900_001, unit_price="12.3456", delivered_at=None),
                    _batch_row(900_002, unit_price=7.5, shipped_on="2021-05-01"),
                    _batch_row(900_003, product_id=999),
                ]
            },
        )
        assert batch.status_code == 200, batch.text
        assert batch.json()["inserted"] == 2
        assert [
            (r["index"], [e["rule"] for e in r["errors"]]) for r in batch.json()["rejected"]
        ] == [(2, ["unknown_reference"])]
        before = contents(shop_url)

        # and a backup restores every table exactly as it was, after more rows went in.
        run = client.post("/backups")
        assert run.status_code == 201, run.text
        more = client.post("/tables/order_lines/rows", json={"rows": [_batch_row(900_004)]})
        assert more.json()["inserted"] == 1
        restored = client.post(
            f"/backups/runs/{run.json()['run_id']}/restore", params={"wait": "true"}
        )
        assert restored.status_code == 200, restored.text
        assert contents(shop_url) == before

        # The challenge's reports are not there: this catalog does not declare their tables.
        assert client.get("/reports/hires-by-quarter").status_code == 404


def _key_index(table: str) -> int:
    spec = load_catalog(SHOP).table(table)
    return spec.column_names.index(spec.key.name)


def _batch_row(key: int, **changes: Any) -> dict[str, Any]:
    names = load_catalog(SHOP).table("order_lines").column_names
    row: dict[str, Any] = dict(zip(names, order_line(key), strict=True))
    row.update(id=key, order_id=1, product_id=1, quantity=2, delivered_at="2021-04-01T00:00:00Z")
    row.update(changes)
    return row


def test_workers_killed_during_a_load_of_a_declared_table_lose_and_duplicate_nothing(
    fleet_factory: Any,
) -> None:
    files = shop_files()
    lines = shop_files(KILL_ROWS, KILL_BAD_EVERY)["order_lines"]
    rng = random.Random(20211)
    with postgres_database() as url:
        fleet: Fleet = fleet_factory(url, CATALOG_FILE=str(SHOP), **KILL_ENV)
        fleet.api()
        workers = [fleet.worker(n) for n in (0, 1)]
        with httpx.Client(base_url=fleet.base_url, timeout=60) as client:
            # Given the parents loaded,
            for table in ("regions", "stores", "orders", "products"):
                job = upload(client, table, files[table].body, f"{table}.csv")
                assert wait_for_job(client, job["job_id"], JOB_SECONDS)["status"] == "succeeded"
            # when workers are SIGKILLed (and started again) while the big file loads,
            job_id = upload(client, "order_lines", lines.body, "order_lines.csv")["job_id"]
            kills = 0
            while kills < 3 and get_job(client, job_id)["status"] not in ("succeeded", "failed"):
                if get_job(client, job_id)["bytes_done"] > kills * len(lines.body) // 4:
                    slot = rng.randrange(len(workers))
                    fleet.kill(workers[slot])
                    workers[slot] = fleet.worker(slot, wait=False)
                    kills += 1
                time.sleep(0.05)
            done = wait_for_job(client, job_id, JOB_SECONDS * 3)

        # then the job's counts, the table and the stored rejections are each row exactly once.
        assert kills >= 1, done
        assert done["status"] == "succeeded", done
        assert (done["rows_inserted"], done["rows_rejected"]) == (len(lines.keys), len(lines.bad))
        [(rows, distinct, total)] = query(
            url, "SELECT COUNT(*), COUNT(DISTINCT id), SUM(id) FROM order_lines"
        )
        assert (rows, distinct, total) == (len(lines.keys), len(lines.keys), sum(lines.keys))
        stored = query(
            url,
            "SELECT line, COUNT(*), MIN(rules) FROM job_rejections r JOIN ingest_jobs j"
            " ON j.seq = r.job_seq WHERE j.job_id = :j GROUP BY line",
            j=job_id,
        )
        assert {line: count for line, count, _ in stored} == dict.fromkeys(lines.bad, 1)
        assert all(lines.bad[line] in rules for line, _, rules in stored)
