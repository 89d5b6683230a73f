"""Azure Blob SDK errors and metadata as the blob port's; used by ``azure.py`` only.

Messages name the account, the container and the blob, never a key, a SAS token or a
connection string.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import quote, unquote

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from common.errors import BlobNotFound, BlobStoreUnavailable, NotAuthorised, PermanentError

_RETRYABLE_STATUS = frozenset({408, 429})
# Metadata travels in HTTP headers: ASCII only, edges trimmed. Values are stored percent-encoded.
_META_SAFE = "".join(c for c in string.printable if c not in string.whitespace + "%")


@contextmanager
def errors(what: str) -> Iterator[None]:
    """Raise the project's errors for the SDK's while talking to the store about ``what``."""
    try:
        yield
    except ResourceNotFoundError as exc:
        raise BlobNotFound(f"{what} does not exist") from exc
    except (ServiceRequestError, ServiceResponseError, DecodeError) as exc:
        raise BlobStoreUnavailable(
            f"blob store unreachable ({what}): {type(exc).__name__}"
        ) from exc
    except ClientAuthenticationError as exc:
        if exc.status_code is None:  # no token: the identity endpoint did not answer
            raise BlobStoreUnavailable(
                f"no access token for the blob store ({what}): {type(exc).__name__}; "
                "check the managed identity"
            ) from exc
        raise NotAuthorised(refusal(what, exc), "blob store") from exc
    except HttpResponseError as exc:
        status = exc.status_code or 0
        if status in _RETRYABLE_STATUS or status >= 500:
            raise BlobStoreUnavailable(
                f"blob store busy or failing ({what}): HTTP {status}"
            ) from exc
        if status == 403:
            raise NotAuthorised(refusal(what, exc), "blob store") from exc
        raise PermanentError(refusal(what, exc)) from exc
    except AzureError as exc:
        raise BlobStoreUnavailable(f"blob store error ({what}): {type(exc).__name__}") from exc


def refusal(what: str, exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)  # set by the storage SDK, often an enum
    code = f" ({getattr(code, 'value', code)})" if code else ""
    return f"blob store refused {what}: HTTP {exc.status_code} {exc.reason}{code}"


def encode(metadata: Mapping[str, str] | None) -> dict[str, str]:
    return {k: quote(v, safe=_META_SAFE) for k, v in (metadata or {}).items()}


def decode(metadata: Mapping[str, str] | None) -> dict[str, str]:
    return {k: unquote(v) for k, v in (metadata or {}).items()}
