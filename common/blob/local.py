"""The embedded blob store: one folder per container, one file per blob, metadata beside it."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from common.blob import BlobInfo
from common.errors import BlobNotFound, BlobStoreUnavailable, PermanentError

_META_DIR = ".meta"
_PARTIAL_SUFFIX = ".partial"


def _safe_name(name: str) -> str:
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise PermanentError(f"invalid blob name {name!r}")
    return name


class LocalBlobWriter:
    """Writes to a hidden temporary file and renames it into place on commit."""

    def __init__(self, final: Path, meta: Path) -> None:
        self._final = final
        self._meta = meta
        self._tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}{_PARTIAL_SUFFIX}")
        self._file = self._tmp.open("wb")
        self._size = 0

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise BlobStoreUnavailable(f"cannot write {self._final.name}: {exc}") from exc
        self._size += len(data)

    def commit(self, metadata: Mapping[str, str] | None = None) -> BlobInfo:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._meta.parent.mkdir(parents=True, exist_ok=True)
            meta_tmp = self._meta.with_name(f".{self._meta.name}{_PARTIAL_SUFFIX}")
            meta_tmp.write_text(json.dumps(dict(metadata or {})))
            os.replace(meta_tmp, self._meta)
            os.replace(self._tmp, self._final)
        except OSError as exc:
            self.abort()
            raise BlobStoreUnavailable(f"cannot commit {self._final.name}: {exc}") from exc
        return BlobInfo(self._final.name, self._size, dict(metadata or {}))

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)


class LocalBlobStore:
    """Blobs as files under ``root/<container>/<name>``; metadata under ``<container>/.meta``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, container: str, name: str) -> Path:
        return self.root / _safe_name(container) / _safe_name(name)

    def _meta_path(self, container: str, name: str) -> Path:
        return self.root / container / _META_DIR / f"{_safe_name(name)}.json"

    def ensure_container(self, container: str) -> None:
        try:
            (self.root / _safe_name(container)).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BlobStoreUnavailable(f"cannot create container {container!r}: {exc}") from exc

    def open_writer(self, container: str, name: str) -> LocalBlobWriter:
        path = self._path(container, name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return LocalBlobWriter(path, self._meta_path(container, name))
        except OSError as exc:
            raise BlobStoreUnavailable(f"cannot write blob {name!r}: {exc}") from exc

    def read_range(
        self,
        container: str,
        name: str,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = 4 * 1024 * 1024,
    ) -> Iterator[bytes]:
        path = self._path(container, name)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFound(f"blob {container}/{name} does not exist") from None
        except OSError as exc:
            raise BlobStoreUnavailable(f"cannot read blob {name!r}: {exc}") from exc
        with handle:
            handle.seek(start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                size = chunk_size if remaining is None else min(chunk_size, remaining)
                data = handle.read(size)
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

    def _metadata(self, container: str, name: str) -> dict[str, str]:
        try:
            loaded: dict[str, str] = json.loads(self._meta_path(container, name).read_text())
            return loaded
        except FileNotFoundError:
            return {}

    def info(self, container: str, name: str) -> BlobInfo:
        try:
            size = self._path(container, name).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(f"blob {container}/{name} does not exist") from None
        return BlobInfo(name, size, self._metadata(container, name))

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]:
        base = self.root / _safe_name(container)
        if not base.exists():
            return
        names = sorted(
            p.relative_to(base).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(base).parts)
        )
        for name in names:
            if name.startswith(prefix):
                try:
                    yield self.info(container, name)
                except BlobNotFound:
                    continue

    def delete(self, container: str, name: str) -> None:
        self._path(container, name).unlink(missing_ok=True)
        self._meta_path(container, name).unlink(missing_ok=True)

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".ping-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise BlobStoreUnavailable(f"blob folder {self.root} is not writable: {exc}") from exc
