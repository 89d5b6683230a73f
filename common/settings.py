"""One settings object, read from the environment; no configuration runs the embedded defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service. Defaults run everything embedded under ``data_dir``."""

    data_dir: Path = Field(default=Path("./var"), description="Folder for every embedded file.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file under DATA_DIR."
    )

    blob_container_name_historic: str = "historic"
    blob_container_name_backup: str = "backup"

    queue_name: str = Field(default="ingest-jobs", alias="SERVICEBUS_QUEUE_NAME")
    lock_duration_seconds: float = Field(default=60.0, gt=0)
    max_delivery_count: int = Field(default=10, ge=1)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=0)

    chunk_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Bytes read, validated and committed at once."
    )
    part_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Files larger than this are cut into parts that workers ingest in parallel.",
    )
    max_upload_bytes: int = Field(
        default=50 * 1024**3, ge=1, description="Largest accepted upload; larger ones get 413."
    )
    upload_block_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    dependency_wait_seconds: float = Field(default=2.0, gt=0)
    receive_wait_seconds: float = Field(default=1.0, gt=0)
    retry_attempts: int = Field(default=4, ge=1)
    retry_max_wait_seconds: float = Field(default=5.0, ge=0)

    transient_backoff_seconds: float = Field(
        default=1.0, ge=0, description="First wait before a failed delivery is handed back."
    )
    transient_backoff_max_seconds: float = Field(default=30.0, ge=0)

    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        url = self.database_url
        if url is not None and "://" not in url:
            raise ValueError(
                f"DATABASE_URL {url!r} is not a SQLAlchemy URL; set it like "
                "postgresql+psycopg://user@host:5432/db or sqlite:///path/to/file.db"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL in use: DATABASE_URL, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ingest.db').resolve()}"

    @property
    def blob_root(self) -> Path:
        """Folder of the embedded blob store."""
        return self.data_dir / "blobs"
