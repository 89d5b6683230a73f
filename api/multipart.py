"""Multipart bodies as a stream: the parser's callbacks collected as events, and the checks a
multipart request gets before any file is stored (its boundary, each file's name)."""

from __future__ import annotations

from python_multipart.multipart import parse_options_header

from api.problems import Problem


class MultipartEvents:
    """Collects the parser's callbacks as a list of events to act on between reads."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self._headers: dict[str, str] = {}
        self._field = b""
        self._value = b""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": lambda: self.events.append(("end", None)),
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self.events.append(("headers", dict(self._headers))),
        }

    def _begin(self) -> None:
        self._headers = {}

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(("data", bytes(data[start:end])))

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._field, self._value = b"", b""

    def drain(self) -> list[tuple[str, object]]:
        events, self.events = self.events, []
        return events


# RFC 2046: a boundary is 1 to 70 characters; a file name longer than 255 fits no file system.
MAX_BOUNDARY = 70
MAX_FILE_NAME = 255


def boundary_of(content_type: str) -> bytes:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise Problem(
            400, "Malformed multipart body", "the multipart Content-Type header has no boundary"
        )
    if len(boundary) > MAX_BOUNDARY:
        raise Problem(
            400,
            "Malformed multipart body",
            f"the multipart boundary is {len(boundary)} characters long; RFC 2046 allows at "
            f"most {MAX_BOUNDARY}",
        )
    return boundary


def file_name(raw: bytes | None) -> str | None:
    """The field's file name, checked: it is stored with the job and shown back."""
    if raw is None:
        return None
    name = raw.decode("utf-8", "replace")
    if len(name) > MAX_FILE_NAME:
        raise Problem(
            422,
            "File name too long",
            f"the file name is {len(name)} characters long; at most {MAX_FILE_NAME} are kept, "
            "rename the file",
        )
    if any(ord(c) < 32 or c == "\x7f" for c in name):
        raise Problem(
            422, "Bad file name", "the file name holds control characters; rename the file"
        )
    return name
