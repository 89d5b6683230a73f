"""HTTP to the service, and every way it can go wrong mapped to one line and an exit code."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, NoReturn

import httpx

from cli.output import EXIT_UNAVAILABLE, EXIT_USAGE, fail

PROBLEM_JSON = "application/problem+json"
TIMEOUT_SECONDS = 30.0
Params = Mapping[str, str | int | float | bool | None]


@dataclass(frozen=True)
class Options:
    """The global options, shared by every command."""

    url: str
    api_key: str | None
    json: bool


def problem_line(response: httpx.Response) -> str:
    """``title: detail`` of a problem document, or the status and the start of the body."""
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in (PROBLEM_JSON, "application/json"):
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and ("title" in body or "detail" in body):
            title = body.get("title") or f"HTTP {response.status_code}"
            detail = body.get("detail")
            return f"{title}: {detail}" if detail else str(title)
    text = " ".join(response.text.split())[:200]
    reason = response.reason_phrase or "error"
    return f"HTTP {response.status_code} {reason}" + (f": {text}" if text else "")


class Client:
    """A thin httpx client: each call returns a successful response or exits with one line."""

    def __init__(self, options: Options, timeout: float = TIMEOUT_SECONDS) -> None:
        self.url = options.url
        self.has_key = bool(options.api_key)
        headers = {"User-Agent": "ingest-cli"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        self._http = httpx.Client(base_url=options.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    # --- errors ---------------------------------------------------------------------------------

    def transport_failed(self, exc: Exception) -> NoReturn:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            fail(
                f"cannot reach the service at {self.url}: is it running? (make run)",
                EXIT_UNAVAILABLE,
            )
        if isinstance(exc, httpx.TimeoutException):
            fail(
                f"the service at {self.url} did not answer in time: "
                "try again, or check GET /readyz",
                EXIT_UNAVAILABLE,
            )
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            fail(f"{self.url} is not an http(s) URL: pass --url or set INGEST_URL", EXIT_USAGE)
        fail(f"lost the connection to the service at {self.url}: {exc}", EXIT_UNAVAILABLE)

    def refused(self, response: httpx.Response) -> NoReturn:
        line = problem_line(response)
        if response.status_code == 401 and not self.has_key:
            line += " (pass --api-key or set INGEST_API_KEY)"
        code = EXIT_UNAVAILABLE if response.status_code >= 500 else EXIT_USAGE
        fail(line, code)

    # --- calls ----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        content: Iterable[bytes] | None = None,
        files: Mapping[str, tuple[str, IO[bytes], str]] | None = None,
        timeout: float | None = None,
        allow: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """Send one request; a status >= 400 not in ``allow`` exits with its problem line."""
        try:
            response = self._http.request(
                method,
                path,
                params=_clean(params),
                headers=headers,
                content=content,
                files=files,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except (httpx.HTTPError, httpx.StreamError) as exc:
            self.transport_failed(exc)
        if response.status_code >= 400 and response.status_code not in allow:
            self.refused(response)
        return response

    def json(self, method: str, path: str, *, params: Params | None = None, **kw: Any) -> Any:
        """The JSON body of a successful answer (``None`` for 204)."""
        response = self.request(method, path, params=params, **kw)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except json.JSONDecodeError:
            fail(
                f"the service at {self.url} answered {method} {path} with something other "
                "than JSON: is --url the ingestion service?",
                EXIT_UNAVAILABLE,
            )

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """A successful response whose body is read as the caller iterates it."""
        try:
            with self._http.stream(
                method, path, params=_clean(params), headers=headers
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    self.refused(response)
                yield response
        except (httpx.HTTPError, httpx.StreamError) as exc:
            self.transport_failed(exc)


def _clean(params: Params | None) -> dict[str, str | int | float] | None:
    """Query parameters without the unset ones; booleans as ``true``/``false``."""
    if params is None:
        return None
    out: dict[str, str | int | float] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def options_of(ctx: Any) -> Options:
    """The global options of the command running in ``ctx`` (a click/typer context)."""
    obj = ctx.find_root().obj
    assert isinstance(obj, Options)
    return obj
