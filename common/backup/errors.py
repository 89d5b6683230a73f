"""What can go wrong with a backup or a restore, as the project's permanent errors."""

from __future__ import annotations

from common.errors import PermanentError


class BackupNotFound(PermanentError):
    """No backup with that id (or run id) is in the backup container."""

    reason = "BackupNotFound"


class BackupInvalid(PermanentError):
    """The backup file is corrupt, truncated, or not a backup of the table it claims to be."""

    reason = "BackupInvalid"


class RestoreConflict(PermanentError):
    """Restoring would leave rows referencing ids that no longer exist."""

    reason = "RestoreConflict"

    def __init__(self, message: str, dangling: dict[str, int]) -> None:
        super().__init__(message)
        self.dangling = dangling
