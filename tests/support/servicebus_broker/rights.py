"""Shared access rules: which key names exist and the claims (Send, Listen, Manage) each grants.

Service Bus checks the claims of the token a connection put on ``$cbs``: sending to an entity
needs ``Send``; receiving, peeking, renewing and settling need ``Listen``; the administration
API needs ``Manage``, which a rule only has together with the other two. A missing claim is
refused with ``amqp:unauthorized-access`` and a description naming the claim.
"""

from __future__ import annotations

from urllib.parse import parse_qs

SEND, LISTEN, MANAGE = "Send", "Listen", "Manage"
ALL_CLAIMS = frozenset({SEND, LISTEN, MANAGE})
UNAUTHORIZED = "amqp:unauthorized-access"


class SharedAccessRules:
    """Key names and their claims; ``test`` (the default connection string's) has all three."""

    def __init__(self) -> None:
        self._rules: dict[str, frozenset[str]] = {"test": ALL_CLAIMS}

    def add(self, key_name: str, claims: set[str]) -> None:
        unknown = set(claims) - ALL_CLAIMS
        if unknown:
            raise ValueError(f"unknown claims {sorted(unknown)}")
        if MANAGE in claims:
            claims = set(ALL_CLAIMS)
        self._rules[key_name] = frozenset(claims)

    def claims_of_token(self, token: str) -> frozenset[str] | None:
        """The claims a ``SharedAccessSignature sr=..&sig=..&se=..&skn=<key>`` token carries,
        or None for a key name the namespace does not have."""
        _, _, query = token.partition(" ")
        key_name = (parse_qs(query).get("skn") or [""])[0]
        return self._rules.get(key_name)


def refusal(claim: str, entity: str) -> str:
    """The description Service Bus gives a request that lacks ``claim``."""
    return (
        f"Unauthorized access. '{claim}' claim(s) are required to perform this operation. "
        f"Resource: 'sb://servicebus/{entity}'."
    )
