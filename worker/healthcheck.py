"""Container health check: the worker's heartbeat file was touched recently.

``python -m worker.healthcheck`` exits 0 when healthy, 1 otherwise.
"""

from __future__ import annotations

import sys
import time

from common.settings import load_settings

# A worker touches the file between messages; one message holds it for at most a block's commit
# retries, so allow several lock durations before calling it stuck.
_LOCKS_OF_SILENCE = 5


def main() -> int:
    settings = load_settings()
    path = settings.heartbeat_file
    if path is None:
        print("HEARTBEAT_FILE is not set", file=sys.stderr)
        return 1
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        print(f"no heartbeat at {path}", file=sys.stderr)
        return 1
    limit = max(120.0, _LOCKS_OF_SILENCE * settings.lock_duration_seconds)
    if age > limit:
        print(f"last heartbeat {age:.0f}s ago (limit {limit:.0f}s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
