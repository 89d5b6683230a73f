"""The Azure Blob adapter against Azurite: many blocks, ranges, metadata, outages, configuration
(managed identity: ``test_managed_identity.py``)."""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from common.blob.azure import AzureBlobStore
from common.bootstrap import build_blob_store
from common.errors import BlobStoreUnavailable, NotAuthorised, PermanentError
from common.settings import Settings
from tests.support.azurite import (
    KEY,
    Azurite,
    FreshContainers,
    azurite,
    azurite_store,
    shared_azurite,
)

C = "historic"
BLOCK = 64 * 1024


@pytest.fixture(scope="session")
def server() -> Azurite:
    """One Azurite for the session; every test works in containers of its own."""
    return shared_azurite()


@pytest.fixture
def store(server: Azurite) -> Iterator[FreshContainers]:
    with azurite_store(block_bytes=BLOCK) as fresh:
        fresh.ensure_container(C)
        yield fresh


def committed_blocks(server: Azurite, container: str, name: str) -> list[int]:
    """Sizes of the blob's committed blocks, as the service holds them."""
    with BlobServiceClient.from_connection_string(server.connection_string) as service:
        committed, _ = service.get_blob_client(container, name).get_block_list("committed")
    return [block.size for block in committed]


def test_a_file_of_many_blocks_reads_back_exactly(server: Azurite, store: FreshContainers) -> None:
    data = b"".join(f"{i},name {i},2021-01-01T00:00:00Z,1,1\n".encode() for i in range(30_000))
    writer = store.open_writer(C, "jobs/big.csv")
    writer.write(data[:10])  # a small write, then one spanning many blocks, then the rest
    writer.write(data[10 : 5 * BLOCK + 7])
    for start in range(5 * BLOCK + 7, len(data), 10_000):
        writer.write(data[start : start + 10_000])
    info = writer.commit({"sha256": "abc"})

    assert info.size == len(data)
    blocks = committed_blocks(server, store.container(C), "jobs/big.csv")
    assert len(blocks) == math.ceil(len(data) / BLOCK)
    assert max(blocks) == BLOCK
    assert b"".join(store.read_range(C, "jobs/big.csv", chunk_size=100_000)) == data


def test_a_ranged_read_from_the_middle_starts_and_stops_where_asked(
    store: FreshContainers,
) -> None:
    data = bytes(range(256)) * 4000
    writer = store.open_writer(C, "range.bin")
    writer.write(data)
    writer.commit()
    middle = len(data) // 2

    chunks = list(store.read_range(C, "range.bin", middle, middle + 12_345, chunk_size=1000))

    assert b"".join(chunks) == data[middle : middle + 12_345]
    assert [len(c) for c in chunks] == [1000] * 12 + [345]
    # Past the end, as a file read would: what is there, then nothing.
    assert b"".join(store.read_range(C, "range.bin", len(data) - 5, len(data) + 100)) == data[-5:]
    assert b"".join(store.read_range(C, "range.bin", len(data) + 10, len(data) + 20)) == b""


def test_metadata_round_trips_whatever_its_characters(store: FreshContainers) -> None:
    metadata = {
        "table": "jobs",
        "original_name": " données 数据 100%.csv ",
        "at": "2021-07-01T10:00:00+02:00",
    }
    writer = store.open_writer(C, "jobs/named.csv")
    writer.write(b"1,Job\n")
    writer.commit(metadata)

    assert dict(store.info(C, "jobs/named.csv").metadata) == metadata
    [listed] = store.list(C, prefix="jobs/")
    assert dict(listed.metadata) == metadata


def test_the_service_refusing_a_request_is_a_permanent_error_that_says_why(
    server: Azurite, store: FreshContainers
) -> None:
    with pytest.raises(PermanentError, match=r"container Not_Valid.*HTTP 400"):
        store.store.ensure_container("Not_Valid")

    wrong_key = base64.b64encode(b"w" * 64).decode()
    intruder = AzureBlobStore.from_connection_string(
        server.connection_string.replace(KEY, wrong_key)
    )
    with pytest.raises(NotAuthorised, match=r"HTTP 403 .*\(AuthorizationFailure\)") as refused:
        intruder.info(store.container(C), "any.csv")
    assert wrong_key not in str(refused.value)
    intruder.close()

    writer = store.open_writer(C, "once.csv")
    writer.commit()
    with pytest.raises(PermanentError, match="already committed"):
        writer.write(b"more")


def test_a_stopped_store_is_reported_unavailable_within_seconds(tmp_path: Path) -> None:
    # Its own Azurite: stopping the session's would pull it from under other tests.
    with azurite(tmp_path) as own:
        store = AzureBlobStore.from_connection_string(own.connection_string, block_bytes=BLOCK)
        store.ensure_container(C)
        own.stop()

        for attempt in (
            store.ping,
            lambda: list(store.read_range(C, "any.csv")),
            lambda: store.open_writer(C, "new.csv").write(b"x" * BLOCK),
        ):
            started = time.monotonic()
            with pytest.raises(BlobStoreUnavailable) as caught:
                attempt()
            assert time.monotonic() - started < 30  # the client's own retries, bounded
            assert KEY not in str(caught.value)
            assert "AccountKey" not in str(caught.value)

        own.start()  # same port, empty again: in memory
        store.ensure_container(C)
        store.ping()
        store.close()


def test_settings_with_a_connection_string_build_the_azure_store(
    server: Azurite, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        azure_storage_connection_string=server.connection_string,
        upload_block_bytes=BLOCK,
        blob_container_name_historic="from-settings",
    )
    store = build_blob_store(settings)
    assert isinstance(store, AzureBlobStore)
    store.ensure_container(settings.blob_container_name_historic)
    store.ensure_container(settings.blob_container_name_historic)  # idempotent
    writer = store.open_writer(settings.blob_container_name_historic, "three-blocks.csv")
    writer.write(b"x" * (2 * BLOCK + 1))
    writer.commit()

    assert len(committed_blocks(server, "from-settings", "three-blocks.csv")) == 3
    store.ping()
    store.close()
