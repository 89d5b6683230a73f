"""Suites against real servers that cannot run on every machine (``make test-live`` runs them
against the compose stack, see docs/deployment.md); each is collected only when its servers are
named, so a run without them reports nothing rather than a skip."""

from __future__ import annotations

import os

_NEEDS = {
    "test_mssql_live.py": ("TEST_MSSQL_URL",),
    "test_tour_live.py": (
        "TEST_MSSQL_URL",
        "TEST_SERVICEBUS_CONNECTION_STRING",
        "TEST_AZURE_STORAGE_CONNECTION_STRING",
    ),
}

collect_ignore = [
    name for name, needs in _NEEDS.items() if not all(os.environ.get(n) for n in needs)
]
