"""Settings from the environment: embedded defaults, and one clear sentence when impossible."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from common.settings import MSSQL_DRIVER, Settings, load_settings, renamed_in


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting of the machine running the tests leaks in."""
    names = {name.upper() for name in Settings.model_fields} | {"SERVICEBUS_QUEUE_NAME"}
    for key in list(os.environ):
        if key.upper() in names:
            monkeypatch.delenv(key)


def configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **env: str
) -> str:
    """What a process started with ``env`` prints before exiting with status 2."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exited:
        load_settings()
    assert exited.value.code == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1, printed.err
    assert lines[0].startswith("configuration error: ")
    assert "Traceback" not in printed.err
    return lines[0]


def test_no_configuration_runs_everything_embedded_under_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))

    settings = load_settings()

    assert settings.blob_backend == "local"
    assert settings.queue_backend == "sql"
    assert settings.sqlalchemy_url == f"sqlite:///{(tmp_path / 'ingest.db').resolve()}"
    assert settings.blob_root == tmp_path / "blobs"


def test_database_url_from_the_environment_is_used_as_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "postgresql+psycopg://app@db.internal:5432/ingest"
    monkeypatch.setenv("DATABASE_URL", url)

    assert load_settings().sqlalchemy_url == url


def test_servicebus_queue_name_without_a_service_bus_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = configuration_error(monkeypatch, capsys, SERVICEBUS_QUEUE_NAME="ingest")

    assert "SERVICEBUS_QUEUE_NAME" in message
    assert "SERVICEBUS_CONNECTION_STRING" in message


def test_servicebus_queue_name_with_a_service_bus_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVICEBUS_QUEUE_NAME", "ingest")
    monkeypatch.setenv("SERVICEBUS_FULLY_QUALIFIED_NAMESPACE", "ns.servicebus.windows.net")

    settings = load_settings()

    assert (settings.queue_name, settings.queue_backend) == ("ingest", "servicebus")


@pytest.mark.parametrize("url", ["mysql://root@db/ingest", "not a url", "oracle+cx://x@y/z"])
def test_an_unknown_database_url_scheme_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    message = configuration_error(monkeypatch, capsys, DATABASE_URL=url)

    assert "DATABASE_URL" in message
    assert "postgresql+psycopg://" in message and "sqlite:///" in message


def test_some_but_not_all_db_settings_are_refused_naming_the_missing_ones(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = configuration_error(
        monkeypatch, capsys, DB_SERVER="sql.example.net", DB_NAME="ingest"
    )

    assert "DB_USER" in message and "DB_PASSWORD" in message


def test_db_settings_and_database_url_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = configuration_error(
        monkeypatch,
        capsys,
        DATABASE_URL="sqlite:///x.db",
        DB_SERVER="s",
        DB_NAME="n",
        DB_USER="u",
        DB_PASSWORD="p",
    )

    assert "DATABASE_URL" in message


def test_the_password_never_appears_in_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = configuration_error(monkeypatch, capsys, DB_PASSWORD="hunter2-secret")

    assert "hunter2-secret" not in message


def test_db_settings_build_an_azure_sql_url_with_odbc_driver_18(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the four DB_* settings, with characters a URL must escape
    monkeypatch.setenv("DB_SERVER", "myserver.database.windows.net")
    monkeypatch.setenv("DB_NAME", "ingest")
    monkeypatch.setenv("DB_USER", "app@myserver")
    monkeypatch.setenv("DB_PASSWORD", "p@ss:w/rd#1")

    # When the database URL is built
    url = make_url(load_settings().sqlalchemy_url)

    # Then it is an mssql+pyodbc URL that decodes back to exactly those values
    assert url.drivername == "mssql+pyodbc"
    assert (url.host, url.database, url.username, url.password) == (
        "myserver.database.windows.net",
        "ingest",
        "app@myserver",
        "p@ss:w/rd#1",
    )
    assert url.query["driver"] == MSSQL_DRIVER == "ODBC Driver 18 for SQL Server"


def test_a_bad_value_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = configuration_error(monkeypatch, capsys, MAX_DELIVERY_COUNT="0", PORT="http")

    assert "MAX_DELIVERY_COUNT: " in message and "greater than or equal to 1" in message
    assert "PORT: " in message


def test_renamed_settings_are_still_read_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUNK_BYTES", "4096")
    monkeypatch.setenv("UPLOAD_BLOCK_BYTES", "131072")

    settings = Settings()

    assert (settings.block_bytes, settings.blob_chunk_bytes) == (4096, 131072)
    assert renamed_in(os.environ) == [
        "CHUNK_BYTES is now called BLOCK_BYTES; CHUNK_BYTES still works in this release, rename it",
        "UPLOAD_BLOCK_BYTES is now called BLOB_CHUNK_BYTES; UPLOAD_BLOCK_BYTES still works in "
        "this release, rename it",
    ]


def test_the_new_names_win_and_raise_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLOCK_BYTES", "8192")

    assert Settings().block_bytes == 8192
    assert renamed_in(os.environ) == []
