"""Stream request bodies into the blob store, raw or multipart, never holding a whole file."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from api.multipart import MultipartEvents, boundary_of, file_name
from api.problems import Problem
from common.blob import BlobWriter
from common.errors import IngestError
from common.model.catalog import load_order, table_spec
from common.pipeline.cutting import PartCutter
from common.sql.db import utcnow
from common.stores.uploads import UploadFiles
from common.usecases.retention import UPLOADED_AT
from common.usecases.submit import StoredUpload

log = structlog.get_logger("ingest.api")


@dataclass(frozen=True)
class Receiving:
    """Where uploads go and how they are cut: what receiving a file needs of the service."""

    uploads: UploadFiles
    part_bytes: int  # files larger than this are cut into parts for parallel workers
    chunk_bytes: int  # bytes written to the blob store at once
    quoted_newlines: bool = False  # parts are cut only outside quoted fields


@dataclass
class UploadSink:
    """One file on its way into the blob store: written in chunks, hashed and cut into parts."""

    receiving: Receiving
    table: str
    original_name: str | None
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    cutter: PartCutter = field(init=False)
    writer: BlobWriter | None = field(default=None, init=False)
    _buffer: bytearray = field(default_factory=bytearray, init=False)

    def __post_init__(self) -> None:
        self.cutter = PartCutter(self.receiving.part_bytes, self.receiving.quoted_newlines)

    @property
    def blob_name(self) -> str:
        return UploadFiles.name_for(self.table, self.job_id)

    async def feed(self, data: bytes) -> None:
        if self.writer is None:
            self.writer = await run_in_threadpool(
                self.receiving.uploads.open_writer, self.blob_name
            )
        self.cutter.feed(data)
        self._buffer += data
        if len(self._buffer) >= self.receiving.chunk_bytes:
            await self._flush()

    async def _flush(self) -> None:
        if self._buffer and self.writer is not None:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            await run_in_threadpool(self.writer.write, chunk)

    async def commit(self) -> None:
        if self.writer is None:  # an empty file
            await self.feed(b"")
        await self._flush()
        assert self.writer is not None
        await run_in_threadpool(
            self.writer.commit,
            {
                "table": self.table,
                "job_id": self.job_id,
                "sha256": self.cutter.sha256,
                "original_name": self.original_name or "",
                UPLOADED_AT: utcnow().isoformat(),
            },
        )

    def stored(self) -> StoredUpload:
        """The committed file, for :func:`~common.usecases.submit.submit`."""
        return StoredUpload(
            job_id=self.job_id,
            table=self.table,
            blob_name=self.blob_name,
            sha256=self.cutter.sha256,
            size=self.cutter.size,
            original_name=self.original_name,
            parts=self.cutter.parts(),
        )

    async def abort(self) -> None:
        if self.writer is not None:
            await run_in_threadpool(self.writer.abort)

    async def discard(self) -> None:
        """Remove the file, committed or not: no job will own it."""
        await self.abort()
        await run_in_threadpool(self.receiving.uploads.delete, self.blob_name)


async def request_body(
    stream: AsyncIterator[bytes], *, limit: int, idle_seconds: float
) -> AsyncIterator[bytes]:
    """The request body as it arrives, refused once it passes ``limit`` bytes in all (every
    file and field of a multipart body counts) or once the client sends nothing for
    ``idle_seconds``."""
    received = 0
    chunks = aiter(stream)
    while True:
        try:
            chunk = await asyncio.wait_for(anext(chunks), idle_seconds)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise Problem(
                408,
                "Request timeout",
                f"the client sent nothing for {idle_seconds:g} seconds (CLIENT_IDLE_SECONDS); "
                "nothing of the upload was kept, send it again",
            ) from None
        received += len(chunk)
        if received > limit:
            raise Problem(
                413,
                "Upload too large",
                f"the request is larger than the limit of {limit} bytes (MAX_UPLOAD_BYTES)",
            )
        yield chunk


async def receive_raw(
    receiving: Receiving, table: str, stream: AsyncIterator[bytes], original_name: str | None
) -> UploadSink:
    """Stream a raw request body into a new blob."""
    sink = UploadSink(receiving, table, original_name)
    try:
        async for chunk in stream:
            if chunk:
                await sink.feed(chunk)
        await sink.commit()
    except BaseException:
        await sink.abort()
        raise
    return sink


async def receive_multipart(
    receiving: Receiving,
    content_type: str,
    stream: AsyncIterator[bytes],
    fixed_table: str | None,
) -> list[UploadSink]:
    """Stream every file field of a multipart body into its own blob.

    With ``fixed_table`` the file comes in field ``file``; without, each file field is named
    after its table. Other plain form fields are ignored.
    """
    events = MultipartEvents()
    parser = MultipartParser(boundary_of(content_type), events.callbacks())  # type: ignore[arg-type]
    sinks: list[UploadSink] = []
    current: UploadSink | None = None
    try:
        async for chunk in stream:
            try:
                parser.write(chunk)
            except Exception as exc:
                raise Problem(400, "Malformed multipart body", str(exc)) from exc
            for kind, value in events.drain():
                if kind == "headers":
                    assert isinstance(value, dict)
                    current = _start_field(receiving, value, fixed_table)
                    if current is not None:
                        sinks.append(current)
                elif kind == "data" and current is not None:
                    assert isinstance(value, bytes)
                    await current.feed(value)
                elif kind == "end" and current is not None:
                    await current.commit()
                    current = None
        parser.finalize()
        if current is not None:
            raise Problem(400, "Malformed multipart body", "the body ended inside a file field")
    except BaseException:
        for sink in sinks:
            await sink.discard()
        raise
    return sinks


def _start_field(
    receiving: Receiving, headers: dict[str, str], fixed_table: str | None
) -> UploadSink | None:
    """A sink for a multipart field holding a file for a table, or None for a plain field."""
    _, options = parse_options_header(headers.get("content-disposition", ""))
    name = options.get(b"name", b"").decode("utf-8", "replace")
    filename = options.get(b"filename")
    original = file_name(filename) if filename else None
    if fixed_table is not None:
        if name == "file":
            return UploadSink(receiving, fixed_table, original)
        if filename is None:
            return None
        raise Problem(
            422,
            "Unexpected file field",
            f"send the CSV in the multipart field 'file', not {name!r}",
        )
    try:
        table_spec(name)
    except IngestError:
        if filename is None:
            return None
        raise Problem(
            422,
            "Unknown table",
            f"multipart field {name!r} is not a table; name each file field after its "
            f"table: {', '.join(load_order())}",
        ) from None
    return UploadSink(receiving, name, original)
