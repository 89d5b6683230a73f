"""Azure Blob Storage behind the blob port: block uploads, ranged downloads, metadata."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobBlock, BlobServiceClient, ContainerClient, ExponentialRetry

from common.blob import BlobInfo
from common.errors import BlobNotFound, BlobStoreUnavailable, PermanentError
from common.settings import Settings

T = TypeVar("T")


# An outage shows within about half a minute instead of the SDK's minutes of retries; the
# worker's own retries and redeliveries take it from there.
# (The storage SDK's own default waits 15 s, then 18 s, … between tries.)
def _client_options() -> dict[str, Any]:
    return {
        "connection_timeout": 10,
        "read_timeout": 30,
        "retry_policy": ExponentialRetry(
            initial_backoff=1, increment_base=2, retry_total=3, random_jitter_range=1
        ),
    }


_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def _translate(what: str, call: Callable[[], T]) -> T:
    """Run an SDK call; raise the project's errors for the SDK's."""
    try:
        return call()
    except ResourceNotFoundError:
        raise BlobNotFound(f"{what} does not exist") from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise BlobStoreUnavailable(
            f"blob store unreachable ({what}): {type(exc).__name__}"
        ) from exc
    except HttpResponseError as exc:
        if exc.status_code in _RETRYABLE_STATUS:
            raise BlobStoreUnavailable(
                f"blob store busy or failing ({what}): HTTP {exc.status_code}"
            ) from exc
        raise PermanentError(
            f"blob store refused {what}: HTTP {exc.status_code} {exc.reason}"
        ) from exc
    except AzureError as exc:
        raise BlobStoreUnavailable(f"blob store error ({what}): {type(exc).__name__}") from exc


def _download(blob: Any, offset: int, length: int) -> bytes:
    data: bytes = blob.download_blob(offset=offset, length=length, max_concurrency=1).readall()
    return data


class AzureBlobWriter:
    """Stages a block per ``block_bytes`` written; the blob appears only on :meth:`commit`."""

    def __init__(self, container: ContainerClient, name: str, block_bytes: int) -> None:
        self._blob = container.get_blob_client(name)
        self._name = name
        self._block_bytes = block_bytes
        self._buffer = bytearray()
        self._blocks: list[BlobBlock] = []
        self._size = 0
        self._prefix = uuid.uuid4().hex[:8]

    def write(self, data: bytes) -> None:
        self._buffer += data
        self._size += len(data)
        while len(self._buffer) >= self._block_bytes:
            block = bytes(self._buffer[: self._block_bytes])
            del self._buffer[: self._block_bytes]
            self._stage(block)

    def _stage(self, block: bytes) -> None:
        # Block ids must all have the same length within a blob.
        raw_id = f"{self._prefix}-{len(self._blocks):08d}".encode()
        block_id = base64.b64encode(raw_id).decode()
        _translate(f"block of {self._name}", lambda: self._blob.stage_block(block_id, block))
        self._blocks.append(BlobBlock(block_id=block_id))

    def commit(self, metadata: Mapping[str, str] | None = None) -> BlobInfo:
        if self._buffer or not self._blocks:
            block, self._buffer = bytes(self._buffer), bytearray()
            if block:
                self._stage(block)
        meta = dict(metadata or {})
        _translate(
            f"blob {self._name}",
            lambda: self._blob.commit_block_list(self._blocks, metadata=meta),
        )
        return BlobInfo(self._name, self._size, meta)

    def abort(self) -> None:
        # Uncommitted blocks are never visible and Azure drops them after a week.
        self._buffer.clear()
        self._blocks.clear()


class AzureBlobStore:
    """Containers and blobs in one storage account."""

    def __init__(self, service: BlobServiceClient, block_bytes: int = 4 * 1024 * 1024) -> None:
        self._service = service
        self._block_bytes = block_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureBlobStore:
        if settings.azure_storage_connection_string:
            service = BlobServiceClient.from_connection_string(
                settings.azure_storage_connection_string.get_secret_value(), **_client_options()
            )
        else:
            from azure.identity import DefaultAzureCredential

            assert settings.azure_storage_account_url
            service = BlobServiceClient(
                settings.azure_storage_account_url,
                credential=DefaultAzureCredential(),
                **_client_options(),
            )
        return cls(service, settings.upload_block_bytes)

    @classmethod
    def from_connection_string(cls, connection_string: str, **options: Any) -> AzureBlobStore:
        service = BlobServiceClient.from_connection_string(
            connection_string, **{**_client_options(), **options}
        )
        return cls(service)

    def _container(self, container: str) -> ContainerClient:
        return self._service.get_container_client(container)

    def ensure_container(self, container: str) -> None:
        try:
            _translate(
                f"container {container}", lambda: self._container(container).create_container()
            )
        except PermanentError as exc:
            if isinstance(exc.__cause__, ResourceExistsError):
                return
            raise

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
        blob = self._container(container).get_blob_client(name)
        if end is None:
            end = self.info(container, name).size
        offset = start
        while offset < end:
            length = min(chunk_size, end - offset)
            data = _translate(f"blob {container}/{name}", partial(_download, blob, offset, length))
            if not data:
                return
            offset += len(data)
            yield data

    def info(self, container: str, name: str) -> BlobInfo:
        props = _translate(
            f"blob {container}/{name}",
            lambda: self._container(container).get_blob_client(name).get_blob_properties(),
        )
        return BlobInfo(name, int(props.size), dict(props.metadata or {}))

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]:
        blobs = _translate(
            f"container {container}",
            lambda: list(
                self._container(container).list_blobs(
                    name_starts_with=prefix or None, include=["metadata"]
                )
            ),
        )
        for blob in sorted(blobs, key=lambda b: b.name):
            yield BlobInfo(blob.name, int(blob.size), dict(blob.metadata or {}))

    def delete(self, container: str, name: str) -> None:
        try:
            _translate(
                f"blob {container}/{name}",
                lambda: self._container(container).get_blob_client(name).delete_blob(),
            )
        except BlobNotFound:
            return

    def ping(self) -> None:
        # A probe answers quickly: one try, short timeouts.
        _translate(
            "the storage account",
            lambda: self._service.get_service_properties(
                retry_total=0, connection_timeout=3, read_timeout=5
            ),
        )

    def close(self) -> None:
        self._service.close()
