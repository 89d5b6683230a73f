"""AVRO backups of the data tables in the blob store, and restores from them.

``avroschema`` says what a backup file holds, ``records`` what is known about each file (kept as
blob metadata), ``writer`` takes backups, ``restore`` checks and restores them, ``scheduler``
takes them on a cron schedule from exactly one worker.
"""

from __future__ import annotations

from common.backup.records import BackupCatalog, BackupRecord

__all__ = ["BackupCatalog", "BackupRecord"]
