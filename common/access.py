"""API keys and their roles: ``API_KEYS="key-one=admin,key-two=read"``.

Roles nest: ``admin`` may do what ``write`` may, and ``write`` what ``read`` may.
"""

from __future__ import annotations

import hmac
import ipaddress
from enum import IntEnum


class Role(IntEnum):
    READ = 1
    WRITE = 2
    ADMIN = 3


class ApiKeys:
    """The configured keys; lookups compare against every key in constant time."""

    def __init__(self, keys: dict[str, Role]) -> None:
        self._keys = [(k.encode(), role) for k, role in keys.items()]

    @classmethod
    def parse(cls, spec: str | None) -> ApiKeys:
        """Parse ``key=role`` pairs separated by commas; raise ``ValueError`` naming the fault."""
        keys: dict[str, Role] = {}
        for item in (spec or "").split(","):
            if not item.strip():
                continue
            key, sep, role = item.strip().rpartition("=")
            if not sep or not key:
                raise ValueError("API_KEYS must look like 'key1=admin,key2=read'")
            try:
                keys[key] = Role[role.strip().upper()]
            except KeyError:
                raise ValueError(
                    f"API_KEYS role {role.strip()!r} is not one of read, write, admin"
                ) from None
            if len(key) < 16:
                raise ValueError("every API key in API_KEYS needs at least 16 characters")
        return cls(keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def role_of(self, presented: str) -> Role | None:
        """The role of ``presented``, or None; takes the same time whichever key matches."""
        candidate = presented.encode()
        found: Role | None = None
        for key, role in self._keys:
            if hmac.compare_digest(key, candidate):
                found = role
        return found


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
