"""The project's error tree. Adapters translate driver and SDK errors into these at the edge.

Only :class:`TransientError` is ever retried; :class:`PermanentError` dead-letters at once.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of every error the service raises on purpose."""

    reason: str = "IngestError"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or self.reason).strip())


class TransientError(IngestError):
    """A temporary failure (connection drop, throttling, deadlock, timeout): retry it.

    ``dependency`` names what failed in words safe to show a client (no host, no detail)."""

    reason = "TransientError"
    dependency = "a service the API depends on"


class PermanentError(IngestError):
    """A failure that retrying cannot fix."""

    reason = "PermanentError"


class DatabaseUnavailable(TransientError):
    """The database could not be reached or asked us to retry."""

    reason = "DatabaseUnavailable"
    dependency = "database"


class BlobStoreUnavailable(TransientError):
    """The blob store could not be reached."""

    reason = "BlobStoreUnavailable"
    dependency = "blob store"


class QueueUnavailable(TransientError):
    """The message queue could not be reached."""

    reason = "QueueUnavailable"
    dependency = "queue"


class ConcurrentUpdate(TransientError):
    """Another worker changed the same rows first; the work is retried from the new state."""

    reason = "ConcurrentUpdate"
    dependency = "database"


class BlobNotFound(PermanentError):
    """The uploaded file is no longer in the blob store."""

    reason = "BlobNotFound"


class UnknownTable(PermanentError):
    """The table is not one of departments, jobs, hired_employees."""

    reason = "UnknownTable"


class MalformedMessage(PermanentError):
    """The queue message is not a job message this service understands."""

    reason = "MalformedMessage"


class UnknownJob(PermanentError):
    """The message names a job that does not exist."""

    reason = "UnknownJob"


class NotText(PermanentError):
    """The file is not UTF-8 text."""

    reason = "NotText"


class LockLost(IngestError):
    """The message lock expired or was taken by another receiver; stop without settling."""

    reason = "LockLost"


class LeaseLost(IngestError):
    """Another worker took this part over; it carries the work on from the checkpoint."""

    reason = "LeaseLost"


class JobCancelled(IngestError):
    """An operator cancelled the job; the delivery stops without touching the data."""

    reason = "JobCancelled"


class JobFinished(IngestError):
    """The job is already over; it cannot be cancelled or deleted in this state."""

    reason = "JobFinished"


class JobNotFinished(IngestError):
    """The job may still write; it cannot be deleted yet."""

    reason = "JobNotFinished"


class TableBusy(IngestError):
    """A restore and a load or batch of the same tables cannot run at the same time.

    ``details`` names what is in the way for the client (e.g. ``{"jobs": [...]}``)."""

    reason = "TableBusy"

    def __init__(self, message: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.details = details


class MessageNotFound(IngestError):
    """No message with that id is in the queue or its dead-letter queue."""

    reason = "MessageNotFound"
