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
    """A temporary failure (connection drop, throttling, deadlock, timeout): retry it."""

    reason = "TransientError"


class PermanentError(IngestError):
    """A failure that retrying cannot fix."""

    reason = "PermanentError"


class DatabaseUnavailable(TransientError):
    """The database could not be reached or asked us to retry."""

    reason = "DatabaseUnavailable"


class BlobStoreUnavailable(TransientError):
    """The blob store could not be reached."""

    reason = "BlobStoreUnavailable"


class QueueUnavailable(TransientError):
    """The message queue could not be reached."""

    reason = "QueueUnavailable"


class ConcurrentUpdate(TransientError):
    """Another worker changed the same rows first; the work is retried from the new state."""

    reason = "ConcurrentUpdate"


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


class MessageNotFound(IngestError):
    """No message with that id is in the queue or its dead-letter queue."""

    reason = "MessageNotFound"
