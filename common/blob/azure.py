"""Azure Blob Storage behind the blob port: staged blocks, ranged downloads, metadata.

SDK errors become the project's own here (see ``azure_mapping``) and nowhere else.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
)
from azure.storage.blob import BlobBlock, BlobServiceClient, ContainerClient, ExponentialRetry

from common.blob import BlobInfo
from common.blob import azure_mapping as mapping
from common.errors import BlobNotFound, BlobStoreUnavailable, PermanentError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from common.settings import Settings

DEFAULT_BLOCK_BYTES = 4 * 1024 * 1024
# Put Block List takes at most this many blocks: the largest blob is this times the block size.
MAX_BLOCKS = 50_000
# An outage shows within about 25 s (3 tries of a 5 s connect, some 3 s and 5 s apart) instead
# of the SDK's minutes; the worker's own retries and redeliveries take it from there.
CLIENT_OPTIONS: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 15}
RETRY_TOTAL = 2
# A probe answers at once: one try, short timeouts.
_PROBE: dict[str, Any] = {"retry_total": 0, "connection_timeout": 3, "read_timeout": 5}


def _retry(total: int = RETRY_TOTAL) -> ExponentialRetry:
    return ExponentialRetry(
        initial_backoff=1, increment_base=2, retry_total=total, random_jitter_range=1
    )


class AzureBlobWriter:
    """Stages one block per ``block_bytes`` written, holding at most one block in memory.

    Nothing is visible until :meth:`commit` puts the block list; after :meth:`abort` the staged
    blocks stay uncommitted, invisible, and the service drops them (after a week at most).
    """

    def __init__(self, container: ContainerClient, name: str, block_bytes: int) -> None:
        self._blob = container.get_blob_client(name)
        self._what = f"blob {container.container_name}/{name}"
        self._name = name
        self._block_bytes = block_bytes
        self._buffer = bytearray()
        self._blocks: list[BlobBlock] = []
        self._size = 0
        self._prefix = uuid.uuid4().hex[:8]
        self._open = True

    def write(self, data: bytes) -> None:
        self._check_open()
        view = memoryview(data)
        while view:
            if not self._buffer and len(view) >= self._block_bytes:
                self._stage(bytes(view[: self._block_bytes]))
                view = view[self._block_bytes :]
                continue
            room = self._block_bytes - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) == self._block_bytes:
                self._stage(bytes(self._buffer))
                self._buffer.clear()

    def _stage(self, block: bytes) -> None:
        if len(self._blocks) >= MAX_BLOCKS:
            raise PermanentError(
                f"{self._what} would take more than {MAX_BLOCKS} blocks of {self._block_bytes} "
                "bytes; raise BLOB_CHUNK_BYTES"
            )
        # Every block id of a blob has the same length; the prefix keeps writers apart.
        block_id = base64.b64encode(f"{self._prefix}-{len(self._blocks):08d}".encode()).decode()
        with mapping.errors(self._what):
            self._blob.stage_block(block_id, block, length=len(block))
        self._blocks.append(BlobBlock(block_id=block_id))
        self._size += len(block)

    def commit(self, metadata: Mapping[str, str] | None = None) -> BlobInfo:
        self._check_open()
        if self._buffer:
            self._stage(bytes(self._buffer))
            self._buffer.clear()
        with mapping.errors(self._what):
            self._blob.commit_block_list(self._blocks, metadata=mapping.encode(metadata))
        self._open = False
        return BlobInfo(self._name, self._size, dict(metadata or {}))

    def abort(self) -> None:
        self._open = False
        self._buffer.clear()
        self._blocks.clear()

    def _check_open(self) -> None:
        if not self._open:
            raise PermanentError(f"{self._what}: the writer was already committed or aborted")


class AzureBlobStore:
    """Containers and blobs in one storage account (see :class:`common.blob.BlobStore`)."""

    def __init__(
        self,
        service: BlobServiceClient,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        credential: TokenCredential | None = None,
    ) -> None:
        self._service = service
        self._block_bytes = block_bytes
        self._credential = credential
        self._containers: list[str] = []  # the ones ensured, probed by ping()

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureBlobStore:
        """A connection string if set, else the account URL with ``DefaultAzureCredential``."""
        if settings.azure_storage_connection_string:
            return cls.from_connection_string(
                settings.azure_storage_connection_string.get_secret_value(),
                block_bytes=settings.blob_chunk_bytes,
            )
        if not settings.azure_storage_account_url:
            raise ValueError("set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL")
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
        service = BlobServiceClient(
            settings.azure_storage_account_url,
            credential=credential,
            retry_policy=_retry(),
            **CLIENT_OPTIONS,
        )
        return cls(service, settings.blob_chunk_bytes, credential)

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        *,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        retry_total: int = RETRY_TOTAL,
        **options: Any,
    ) -> AzureBlobStore:
        """``options`` override the client's (``connection_timeout``, ``read_timeout``, ...)."""
        service = BlobServiceClient.from_connection_string(
            connection_string, retry_policy=_retry(retry_total), **{**CLIENT_OPTIONS, **options}
        )
        return cls(service, block_bytes)

    def _container(self, container: str) -> ContainerClient:
        return self._service.get_container_client(container)

    def ensure_container(self, container: str) -> None:
        with mapping.errors(f"container {container}"):
            try:
                self._container(container).create_container()
            except ResourceExistsError as exc:
                if getattr(exc, "error_code", None) == "ContainerBeingDeleted":
                    raise BlobStoreUnavailable(f"container {container} is being deleted") from exc
        if container not in self._containers:
            self._containers.append(container)

    def open_writer(self, container: str, name: str) -> AzureBlobWriter:
        return AzureBlobWriter(self._container(container), name, self._block_bytes)

    def read_range(
        self,
        container: str,
        name: str,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = 4 * 1024 * 1024,
    ) -> Iterator[bytes]:
        """One ranged GET per chunk: memory holds one chunk, and a read starts where it's told."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        blob = self._container(container).get_blob_client(name)
        offset = start
        while end is None or offset < end:
            length = chunk_size if end is None else min(chunk_size, end - offset)
            with mapping.errors(f"blob {container}/{name}"):
                try:
                    stream = blob.download_blob(offset=offset, length=length, max_concurrency=1)
                    data = stream.readall()
                except HttpResponseError as exc:
                    if exc.status_code != 416:
                        raise
                    data = b""  # the range starts past the end: empty, as a file read there
            if data:
                yield data
            if len(data) < length:
                return
            offset += len(data)

    def info(self, container: str, name: str) -> BlobInfo:
        with mapping.errors(f"blob {container}/{name}"):
            props = self._container(container).get_blob_client(name).get_blob_properties()
        return BlobInfo(name, int(props.size), mapping.decode(props.metadata))

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]:
        """Streamed page by page; the service lists names in order. No container, no blobs."""
        blobs = iter(
            self._container(container).list_blobs(
                name_starts_with=prefix or None, include=["metadata"]
            )
        )
        while True:
            try:
                with mapping.errors(f"container {container}"):
                    blob = next(blobs, None)
            except BlobNotFound:
                return
            if blob is None:
                return
            yield BlobInfo(blob.name, int(blob.size), mapping.decode(blob.metadata))

    def delete(self, container: str, name: str) -> None:
        try:
            with mapping.errors(f"blob {container}/{name}"):
                self._container(container).get_blob_client(name).delete_blob(
                    delete_snapshots="include"
                )
        except BlobNotFound:
            return

    def ping(self) -> None:
        """Probe a container this store uses (what a data-plane role may read), else the account."""
        if self._containers:
            with mapping.errors(f"container {self._containers[0]}"):
                self._container(self._containers[0]).get_container_properties(**_PROBE)
        else:
            with mapping.errors(f"account {self._service.account_name}"):
                self._service.get_account_information(**_PROBE)

    def close(self) -> None:
        self._service.close()
        close = getattr(self._credential, "close", None)
        if close is not None:
            close()
