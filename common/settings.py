"""One settings object, read from the environment; no configuration runs the embedded defaults."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote_plus

from croniter import croniter
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.access import ApiKeys, is_loopback
from common.model.catalog_file import load_catalog

SUPPORTED_SCHEMES = ("sqlite", "postgresql", "mssql")
MSSQL_DRIVER = "ODBC Driver 18 for SQL Server"


class Settings(BaseSettings):
    """Every knob of the service. Defaults run everything embedded under ``data_dir``."""

    data_dir: Path = Field(default=Path("./var"), description="Folder for every embedded file.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file under DATA_DIR."
    )

    db_server: str | None = Field(default=None, description="Azure SQL server host name.")
    db_name: str | None = None
    db_user: str | None = None
    db_password: SecretStr | None = None

    azure_storage_connection_string: SecretStr | None = None
    azure_storage_account_url: str | None = Field(
        default=None, description="https://<account>.blob.core.windows.net, with managed identity."
    )
    blob_container_name_historic: str = "historic"
    blob_container_name_backup: str = "backup"

    servicebus_connection_string: SecretStr | None = None
    servicebus_fully_qualified_namespace: str | None = Field(
        default=None, description="<namespace>.servicebus.windows.net, with managed identity."
    )
    queue_name: str = Field(default="ingest-jobs", alias="SERVICEBUS_QUEUE_NAME")
    lock_duration_seconds: float = Field(default=60.0, gt=0)
    max_delivery_count: int = Field(default=10, ge=1)

    api_keys: SecretStr | None = Field(
        default=None, description="'key=role' pairs, comma-separated; roles read, write, admin."
    )
    allow_unauthenticated: bool = Field(
        default=False, description="Listen beyond loopback without API keys (not advised)."
    )
    max_batch_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest JSON batch body; larger gets 413."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=0)

    block_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        validation_alias=AliasChoices("BLOCK_BYTES", "block_bytes", "CHUNK_BYTES"),
        description="A block: whole records of about this many bytes, validated and committed in "
        "one transaction.",
    )
    part_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Files larger than this are cut into parts that workers ingest in parallel.",
    )
    max_upload_bytes: int = Field(
        default=50 * 1024**3, ge=1, description="Largest accepted upload; larger ones get 413."
    )
    blob_chunk_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        validation_alias=AliasChoices("BLOB_CHUNK_BYTES", "blob_chunk_bytes", "UPLOAD_BLOCK_BYTES"),
        description="Bytes written to the blob store at once (one blob block each), and read "
        "from it at once.",
    )
    client_idle_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A client that sends nothing for this long is cut off (408) and its "
        "partial upload removed.",
    )
    max_connections: int = Field(
        default=200,
        ge=1,
        description="Open connections and requests an API server takes at once; beyond, it "
        "answers 503.",
    )
    api_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        validation_alias=AliasChoices("API_PROCESSES", "api_processes", "WEB_CONCURRENCY"),
        description="API server processes sharing the port. JSON batches are validated in "
        "Python, one core per process: set it to the cores the API may use.",
    )
    dependency_wait_seconds: float = Field(default=2.0, gt=0)
    receive_wait_seconds: float = Field(default=1.0, gt=0)
    retry_attempts: int = Field(default=4, ge=1)
    retry_max_wait_seconds: float = Field(default=5.0, ge=0)
    request_retry_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long an API request retries a transient database failure (jittered "
        "back-off) before answering 503 with Retry-After.",
    )

    transient_backoff_seconds: float = Field(
        default=1.0, ge=0, description="First wait before a failed delivery is handed back."
    )
    transient_backoff_max_seconds: float = Field(default=30.0, ge=0)

    restore_wait_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Longest a restore asked to wait (?wait=true) waits for running loads.",
    )
    job_retention_days: float | None = Field(
        default=None,
        gt=0,
        description="Finished jobs older than this are deleted with their rejected rows and "
        "files (loaded rows stay); unset keeps them.",
    )
    reconcile_every_seconds: float = Field(
        default=30.0, gt=0, description="How often one worker looks for stranded jobs."
    )
    reconcile_quiet_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A job part untouched this long, held by no worker and with no message in "
        "the queue, gets a new message (or fails, if its message was dead-lettered).",
    )
    unsent_after_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A job whose upload has not sent its messages this long after creating it "
        "is sent by a worker.",
    )
    hire_counts_fold_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often one worker folds the reports' summary changes into its base.",
    )
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port for a worker's own Prometheus metrics."
    )
    heartbeat_file: Path | None = Field(
        default=None, description="File a worker touches on every loop, for health checks."
    )
    backup_schedule: str | None = Field(
        default=None, description="Cron expression (UTC) on which workers take backups."
    )
    backup_retention: int | None = Field(
        default=None, ge=1, description="Backups kept per table; older ones are deleted."
    )
    catalog_file: Path | None = Field(
        default=None, description="TOML file declaring the tables to load (the shipped three)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Least severe level logged (any case)."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="console for people, json for machines; auto: console on a TTY."
    )

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("catalog_file")
    @classmethod
    def _readable_catalog(cls, value: Path | None) -> Path | None:
        load_catalog(value)  # a CatalogError (a ValueError) names every mistake in the file
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        url = self.database_url
        if url is not None:
            scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
            if scheme not in SUPPORTED_SCHEMES:
                raise ValueError(
                    f"DATABASE_URL {url.split('://')[0]!r} is not a supported database URL; "
                    "set it like postgresql+psycopg://user@host:5432/db, "
                    "mssql+pyodbc://user:password@server/db?driver=ODBC+Driver+18+for+SQL+Server "
                    "or sqlite:///path/to/file.db"
                )
        db_parts = {
            "DB_SERVER": self.db_server,
            "DB_NAME": self.db_name,
            "DB_USER": self.db_user,
            "DB_PASSWORD": self.db_password,
        }
        given = [k for k, v in db_parts.items() if v]
        if given and url:
            raise ValueError(f"set either DATABASE_URL or {', '.join(given)}, not both")
        if given and len(given) != len(db_parts):
            missing = [k for k in db_parts if k not in given]
            raise ValueError(f"{', '.join(given)} set without {', '.join(missing)}; set all four")
        if (
            "queue_name" in self.model_fields_set
            and not self.servicebus_connection_string
            and not self.servicebus_fully_qualified_namespace
        ):
            raise ValueError(
                "SERVICEBUS_QUEUE_NAME is set but no Service Bus is: set "
                "SERVICEBUS_CONNECTION_STRING or SERVICEBUS_FULLY_QUALIFIED_NAMESPACE too"
            )
        if self.servicebus_connection_string and self.servicebus_fully_qualified_namespace:
            raise ValueError(
                "set either SERVICEBUS_CONNECTION_STRING or SERVICEBUS_FULLY_QUALIFIED_NAMESPACE"
            )
        keys = ApiKeys.parse(self.api_keys.get_secret_value() if self.api_keys else None)
        if not keys and not is_loopback(self.host) and not self.allow_unauthenticated:
            raise ValueError(
                f"HOST={self.host} would expose the API without keys: set API_KEYS, "
                "or ALLOW_UNAUTHENTICATED=true to accept that"
            )
        if self.azure_storage_connection_string and self.azure_storage_account_url:
            raise ValueError(
                "set either AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL"
            )
        if self.backup_schedule is not None and not croniter.is_valid(self.backup_schedule):
            raise ValueError(
                f"BACKUP_SCHEDULE {self.backup_schedule!r} is not a cron expression; set it like "
                "'0 2 * * *' (every day at 02:00 UTC)"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL in use: DATABASE_URL, one built from DB_*, or the SQLite file."""
        if self.database_url:
            return self.database_url
        if self.db_server and self.db_name and self.db_user and self.db_password:
            password = quote_plus(self.db_password.get_secret_value())
            return (
                f"mssql+pyodbc://{quote_plus(self.db_user)}:{password}@{self.db_server}:1433/"
                f"{quote_plus(self.db_name)}?driver={quote_plus(MSSQL_DRIVER)}"
                "&Encrypt=yes&TrustServerCertificate=no"
            )
        return f"sqlite:///{(self.data_dir / 'ingest.db').resolve()}"

    @property
    def keys(self) -> ApiKeys:
        """The API keys; empty when none are configured."""
        return ApiKeys.parse(self.api_keys.get_secret_value() if self.api_keys else None)

    @property
    def blob_backend(self) -> str:
        """``azure`` when Azure Storage is configured, else ``local``."""
        if self.azure_storage_connection_string or self.azure_storage_account_url:
            return "azure"
        return "local"

    @property
    def queue_backend(self) -> str:
        """``servicebus`` when Service Bus is configured, else ``sql`` (the queue table)."""
        if self.servicebus_connection_string or self.servicebus_fully_qualified_namespace:
            return "servicebus"
        return "sql"

    @property
    def blob_root(self) -> Path:
        """Folder of the embedded blob store."""
        return self.data_dir / "blobs"


# Old setting names still read, for one release, with a warning naming the new one.
RENAMED = {"CHUNK_BYTES": "BLOCK_BYTES", "UPLOAD_BLOCK_BYTES": "BLOB_CHUNK_BYTES"}


def renamed_in(environ: Mapping[str, str]) -> list[str]:
    """A sentence for each old setting name set in ``environ``."""
    return [
        f"{old} is now called {new}; {old} still works in this release, rename it"
        for old, new in RENAMED.items()
        if old in environ and new not in environ
    ]


def load_settings() -> Settings:
    """Settings from the environment; an impossible configuration exits with one sentence."""
    try:
        return Settings()
    except ValidationError as exc:
        messages = "; ".join(_explain(e) for e in exc.errors())
        print(f"configuration error: {messages}", file=sys.stderr)
        raise SystemExit(2) from None


def _explain(error: Any) -> str:
    """One error as a sentence naming the environment variable it is about, if any."""
    message = str(error["msg"]).removeprefix("Value error, ")
    loc = [str(p) for p in error.get("loc", ()) if p != ""]
    if not loc:
        return message
    field = Settings.model_fields.get(loc[0])
    name = (field.alias if field is not None and field.alias else loc[0]).upper()
    return f"{name}: {message}"
