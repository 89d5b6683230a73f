"""Who may call what: API keys as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.problems import Problem
from common.access import Role

_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


def require(role: Role) -> Callable[..., None]:
    """A dependency that lets the call through when the caller's key has ``role`` or more.

    With no keys configured (the service then listens on loopback only) everyone may.
    """

    def check(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        header: str | None = Depends(_header),
    ) -> None:
        keys = request.app.state.api_keys
        if not keys:
            return
        presented = header or (bearer.credentials if bearer else None)
        if not presented:
            raise Problem(
                401,
                "Authentication required",
                "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                {"WWW-Authenticate": "Bearer"},
            )
        granted = keys.role_of(presented)
        if granted is None:
            raise Problem(
                401, "Unknown API key", "the API key is not valid", {"WWW-Authenticate": "Bearer"}
            )
        if granted < role:
            raise Problem(
                403,
                "Not allowed",
                f"this needs a key with the {role.name.lower()} role; "
                f"yours has {granted.name.lower()}",
            )

    return check


ReadAccess = Depends(require(Role.READ))
WriteAccess = Depends(require(Role.WRITE))
AdminAccess = Depends(require(Role.ADMIN))
