"""The blob store contract: block writes that appear atomically, ranged reads, metadata."""

from __future__ import annotations

import pytest

from common.blob import BlobStore
from common.errors import BlobNotFound

C = "historic"


def write(
    store: BlobStore, name: str, *blocks: bytes, metadata: dict[str, str] | None = None
) -> None:
    writer = store.open_writer(C, name)
    for block in blocks:
        writer.write(block)
    writer.commit(metadata)


def test_a_blob_written_in_blocks_reads_back_whole(blob_store: BlobStore) -> None:
    blob_store.ensure_container(C)
    blocks = [bytes([i]) * 100_000 for i in range(7)]
    write(blob_store, "t/file.csv", *blocks)

    assert b"".join(blob_store.read_range(C, "t/file.csv", chunk_size=65_536)) == b"".join(blocks)
    assert blob_store.info(C, "t/file.csv").size == 700_000


def test_ranged_reads_return_exactly_the_range_in_bounded_chunks(blob_store: BlobStore) -> None:
    blob_store.ensure_container(C)
    data = bytes(range(256)) * 1000
    write(blob_store, "range.bin", data)

    chunks = list(blob_store.read_range(C, "range.bin", 1000, 50_000, chunk_size=4096))

    assert b"".join(chunks) == data[1000:50_000]
    assert max(len(c) for c in chunks) <= 4096
    assert b"".join(blob_store.read_range(C, "range.bin", 255_000)) == data[255_000:]
    assert b"".join(blob_store.read_range(C, "range.bin", 10, 10)) == b""


def test_nothing_is_visible_before_commit_and_abort_leaves_nothing(blob_store: BlobStore) -> None:
    blob_store.ensure_container(C)
    writer = blob_store.open_writer(C, "pending.csv")
    writer.write(b"half a file")

    with pytest.raises(BlobNotFound):
        blob_store.info(C, "pending.csv")
    writer.abort()

    assert [b.name for b in blob_store.list(C)] == []
    with pytest.raises(BlobNotFound):
        list(blob_store.read_range(C, "pending.csv"))


def test_metadata_travels_with_the_blob(blob_store: BlobStore) -> None:
    blob_store.ensure_container(C)
    write(blob_store, "b/one.avro", b"x", metadata={"table": "jobs", "rows": "12"})

    info = blob_store.info(C, "b/one.avro")

    assert dict(info.metadata) == {"table": "jobs", "rows": "12"}
    [listed] = blob_store.list(C, prefix="b/")
    assert (listed.name, listed.size, dict(listed.metadata)) == (
        "b/one.avro",
        1,
        {"table": "jobs", "rows": "12"},
    )


def test_listing_filters_by_prefix_in_name_order(blob_store: BlobStore) -> None:
    blob_store.ensure_container(C)
    for name in ("jobs/2.csv", "departments/1.csv", "jobs/1.csv"):
        write(blob_store, name, name.encode())

    assert [b.name for b in blob_store.list(C, prefix="jobs/")] == ["jobs/1.csv", "jobs/2.csv"]
    assert len(list(blob_store.list(C))) == 3


def test_delete_removes_and_tolerates_missing_blobs(blob_store: BlobStore) -> None:
    blob_store.ensure_container(C)
    write(blob_store, "gone.csv", b"data")

    blob_store.delete(C, "gone.csv")
    blob_store.delete(C, "gone.csv")

    with pytest.raises(BlobNotFound):
        blob_store.info(C, "gone.csv")


def test_an_empty_blob_exists_with_size_zero(blob_store: BlobStore) -> None:
    blob_store.ensure_container(C)
    write(blob_store, "empty.csv")

    assert blob_store.info(C, "empty.csv").size == 0
    assert b"".join(blob_store.read_range(C, "empty.csv")) == b""


def test_ping_answers_when_reachable(blob_store: BlobStore) -> None:
    blob_store.ping()


def test_an_aborted_rewrite_keeps_the_old_blob_and_a_committed_one_replaces_it(
    blob_store: BlobStore,
) -> None:
    blob_store.ensure_container(C)
    write(blob_store, "report.csv", b"first version", metadata={"v": "1"})

    aborted = blob_store.open_writer(C, "report.csv")
    aborted.write(b"never seen")
    aborted.abort()

    assert b"".join(blob_store.read_range(C, "report.csv")) == b"first version"
    assert dict(blob_store.info(C, "report.csv").metadata) == {"v": "1"}

    write(blob_store, "report.csv", b"second", metadata={"v": "2"})

    assert b"".join(blob_store.read_range(C, "report.csv")) == b"second"
    assert blob_store.info(C, "report.csv").size == len(b"second")
    assert dict(blob_store.info(C, "report.csv").metadata) == {"v": "2"}


def test_a_range_past_the_end_reads_as_empty(blob_store: BlobStore) -> None:
    blob_store.ensure_container(C)
    write(blob_store, "short.csv", b"12345")

    assert b"".join(blob_store.read_range(C, "short.csv", 3, 100)) == b"45"
    assert b"".join(blob_store.read_range(C, "short.csv", 5)) == b""
    assert b"".join(blob_store.read_range(C, "short.csv", 50, 60)) == b""
