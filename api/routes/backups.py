"""Backups: AVRO copies of the tables in the backup container, and restores from them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.deps import PagingDep, ServicesDep
from api.problems import PROBLEM_RESPONSE, Problem
from api.schemas import Page, UtcDatetime
from api.security import AdminAccess
from common.backup.errors import BackupInvalid, BackupNotFound, RestoreConflict
from common.backup.records import BackupCatalog, BackupRecord
from common.backup.writer import take_backups
from common.bootstrap import Services
from common.model.catalog import load_order, table_spec
from common.usecases.restore import restore_tables

router = APIRouter(tags=["backups"], dependencies=[AdminAccess])

BackupId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="A backup's id.")]
RunId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="The id of a backup run.")]
Wait = Annotated[
    bool,
    Query(
        description="While loads of the tables (or of tables referencing them) are running, "
        "wait for them (up to RESTORE_WAIT_SECONDS) instead of answering 409."
    ),
]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: PROBLEM_RESPONSE,
    409: PROBLEM_RESPONSE,
    422: PROBLEM_RESPONSE,
}


class BackupOut(BaseModel):
    backup_id: str
    run_id: str = Field(description="Backups taken together (POST /backups) share it.")
    table: str
    row_count: int
    byte_size: int
    sha256: str
    schema_version: int
    created_at: UtcDatetime
    last_job_id: str | None = Field(
        description="The newest succeeded upload job of the table whose rows the backup holds."
    )


class BackupRunOut(BaseModel):
    run_id: str
    backups: list[BackupOut]


class RestoreOut(BaseModel):
    restored: dict[str, int] = Field(description="Rows now in each restored table.")
    backups: list[BackupOut]


def _out(record: BackupRecord) -> BackupOut:
    return BackupOut(
        backup_id=record.backup_id,
        run_id=record.run_id,
        table=record.table,
        row_count=record.row_count,
        byte_size=record.byte_size,
        sha256=record.sha256,
        schema_version=record.schema_version,
        created_at=record.created_at,
        last_job_id=record.last_job_id,
    )


@contextmanager
def _as_problems() -> Iterator[None]:
    try:
        yield
    except BackupNotFound as exc:
        raise Problem(404, "Backup not found", str(exc)) from None
    except BackupInvalid as exc:
        raise Problem(422, "Backup refused", f"{exc}; nothing was changed") from None
    except RestoreConflict as exc:
        raise Problem(
            409, "Restore would break references", str(exc), dangling=exc.dangling
        ) from None


@router.post(
    "/backups",
    response_model=BackupRunOut,
    status_code=201,
    summary="Back up every table, from one snapshot, as one run",
)
def back_up_all(services: ServicesDep) -> BackupRunOut:
    records = take_backups(services.db, services.backups, load_order())
    return BackupRunOut(run_id=records[0].run_id, backups=[_out(r) for r in records])


@router.post(
    "/backups/runs/{run_id}/restore",
    response_model=RestoreOut,
    responses=ERRORS,
    summary="Restore every table of one run, parents first, in one transaction",
)
def restore_run(
    run_id: RunId, services: ServicesDep, after: BackgroundTasks, wait: Wait = False
) -> RestoreOut:
    catalog = services.backups
    with _as_problems():
        records = catalog.run(run_id)
        restored = _restore(services, catalog, records, wait)
    _tidy_after_restore(after, services, restored)
    return RestoreOut(restored=restored, backups=[_out(r) for r in records])


def _restore(
    services: Services, catalog: BackupCatalog, records: list[BackupRecord], wait: bool
) -> dict[str, int]:
    return restore_tables(
        services.db,
        catalog,
        services.jobs,
        records,
        wait_seconds=services.settings.restore_wait_seconds if wait else 0.0,
    )


def _tidy_after_restore(after: BackgroundTasks, services: Services, tables: dict[str, int]) -> None:
    # A restore rewrites the table: new pages and, on PostgreSQL, as many dead rows as there
    # were before. The reports stay slow until a vacuum; it runs once the answer is sent.
    for table in tables:
        after.add_task(services.db.refresh_after_bulk_load, table)


@router.post(
    "/backups/{table}",
    response_model=BackupOut,
    status_code=201,
    responses={404: PROBLEM_RESPONSE},
    summary="Back up one table to AVRO in the backup container",
)
def back_up_table(table: str, services: ServicesDep) -> BackupOut:
    spec = table_spec(table)
    return _out(take_backups(services.db, services.backups, [spec.name])[0])


@router.get("/backups", response_model=Page[BackupOut], summary="Backups, newest first")
def list_backups(
    services: ServicesDep,
    paging: PagingDep,
    table: Annotated[str | None, Query(description="Only this table's backups.")] = None,
    run_id: Annotated[str | None, Query(description="Only this run's backups.")] = None,
) -> Page[BackupOut]:
    if table is not None:
        table_spec(table)
    records = services.backups.all(table)
    if run_id is not None:
        records = [r for r in records if r.run_id == run_id]
    page = records[paging.offset : paging.offset + paging.limit]
    return Page(
        items=[_out(r) for r in page], total=len(records), limit=paging.limit, offset=paging.offset
    )


@router.get("/backups/{backup_id}", response_model=BackupOut, responses=ERRORS)
def get_backup(backup_id: BackupId, services: ServicesDep) -> BackupOut:
    with _as_problems():
        return _out(services.backups.get(backup_id))


@router.get(
    "/backups/{backup_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/avro": {}}}, 404: PROBLEM_RESPONSE},
    summary="The AVRO file, streamed",
)
def download_backup(backup_id: BackupId, services: ServicesDep) -> StreamingResponse:
    catalog = services.backups
    with _as_problems():
        record = catalog.get(backup_id)
    return StreamingResponse(
        catalog.read(record, chunk_size=1024 * 1024),
        media_type="application/avro",
        headers={
            "Content-Length": str(record.byte_size),
            "Content-Disposition": f'attachment; filename="{record.table}-{backup_id}.avro"',
            "X-Backup-SHA256": record.sha256,
        },
    )


@router.post(
    "/backups/{backup_id}/restore",
    response_model=RestoreOut,
    responses=ERRORS,
    summary="Replace a table's rows with a backup, in one transaction",
)
def restore_backup(
    backup_id: BackupId, services: ServicesDep, after: BackgroundTasks, wait: Wait = False
) -> RestoreOut:
    catalog = services.backups
    with _as_problems():
        record = catalog.get(backup_id)
        restored = _restore(services, catalog, [record], wait)
    _tidy_after_restore(after, services, restored)
    return RestoreOut(restored=restored, backups=[_out(record)])
