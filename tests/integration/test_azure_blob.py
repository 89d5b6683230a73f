"""The Azure Blob adapter against Azurite: many blocks, ranges, outages, configuration."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.blob.azure import AzureBlobStore
from common.errors import BlobStoreUnavailable
from common.settings import Settings
from tests.support.azurite import Azurite, azurite


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Azurite]:
    with azurite(tmp_path) as running:
        yield running


def test_a_file_of_many_blocks_reads_back_exactly_from_any_offset(server: Azurite) -> None:
    store = AzureBlobStore.from_connection_string(server.connection_string)
    store._block_bytes = 64 * 1024  # many blocks for a small file
    store.ensure_container("historic")
    data = b"".join(f"{i},name {i},2021-01-01T00:00:00Z,1,1\n".encode() for i in range(20_000))
    writer = store.open_writer("historic", "jobs/big.csv")
    for start in range(0, len(data), 10_000):
        writer.write(data[start : start + 10_000])
    writer.commit({"sha256": "abc"})

    assert b"".join(store.read_range("historic", "jobs/big.csv", chunk_size=100_000)) == data
    middle = len(data) // 2
    assert (
        b"".join(store.read_range("historic", "jobs/big.csv", middle, middle + 12_345))
        == (data[middle : middle + 12_345])
    )
    store.close()


def test_an_unreachable_store_is_reported_as_unavailable_within_seconds(server: Azurite) -> None:
    store = AzureBlobStore.from_connection_string(
        server.connection_string, retry_total=1, connection_timeout=2
    )
    store.ensure_container("historic")
    server.stop()

    started = time.monotonic()
    with pytest.raises(BlobStoreUnavailable) as caught:
        store.ping()
    assert time.monotonic() - started < 30
    assert "AccountKey" not in str(caught.value)
    server.start()
    store.ping()
    store.close()


def test_settings_with_a_connection_string_select_the_azure_store(
    server: Azurite, tmp_path: Path
) -> None:
    from common.bootstrap import build_blob_store

    settings = Settings(data_dir=tmp_path, azure_storage_connection_string=server.connection_string)
    store = build_blob_store(settings)

    assert isinstance(store, AzureBlobStore)
    store.ensure_container(settings.blob_container_name_backup)
    store.ensure_container(settings.blob_container_name_backup)  # idempotent
    store.ping()
