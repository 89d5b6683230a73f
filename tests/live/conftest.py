"""Suites against real servers that cannot run on every machine; each is collected only when
its server is named, so a run without one reports nothing rather than a skip."""

from __future__ import annotations

import os

collect_ignore = [] if os.environ.get("TEST_MSSQL_URL") else ["test_mssql_live.py"]
