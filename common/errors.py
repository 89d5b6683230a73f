"""The project's error tree. Adapters translate driver and SDK errors into these at the edge.

Each error says what becomes of a message whose handling raised it (``delivery``), so the
worker settles by asking the error, not by the order of ``isinstance`` checks::

    IngestError                      retry: hand the message back after a back-off
    ├── TransientError               retry (in place first; then hand back; at the last
    │   │                             allowed delivery, dead-letter)
    │   ├── DatabaseUnavailable, BlobStoreUnavailable, QueueUnavailable
    │   └── ConcurrentUpdate         another writer got there first: retry from the new state
    ├── PermanentError               give up: dead-letter at once, the job fails
    │   └── BlobNotFound, UnknownTable, MalformedMessage, UnknownJob, NotText,
    │       NotAuthorised (a dependency refused the service's identity)
    ├── Interrupted                  resume: hand back at once (the worker is stopping)
    ├── LeaseLost, JobCancelled      complete: another worker has the part, or nobody should
    ├── LockLost                     the message cannot be settled any more (its lock is gone)
    └── for the API: MessageNotFound, DeadLetterTaken, JobFinished, JobNotFinished, TableBusy,
        NothingToRetry

A bug (any other exception) is retried like a transient error, and logged as unexpected.
"""

from __future__ import annotations

from enum import StrEnum


class Delivery(StrEnum):
    """What becomes of a message whose handling raised the error."""

    RETRY = "retry"
    GIVE_UP = "give up"
    RESUME = "resume"
    COMPLETE = "complete"


class IngestError(Exception):
    """Base of every error the service raises on purpose."""

    reason: str = "IngestError"
    delivery: Delivery = Delivery.RETRY

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
    delivery = Delivery.GIVE_UP


class NotAuthorised(PermanentError):
    """A dependency refused the service's identity: a role or key is missing, which an
    operator has to grant; retrying does not help."""

    reason = "NotAuthorised"

    def __init__(self, message: str, dependency: str) -> None:
        super().__init__(message)
        self.dependency = dependency


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
    delivery = Delivery.COMPLETE


class JobCancelled(IngestError):
    """An operator cancelled the job; the delivery stops without touching the data."""

    reason = "JobCancelled"
    delivery = Delivery.COMPLETE


class JobFinished(IngestError):
    """The job is already over; it cannot be cancelled or deleted in this state."""

    reason = "JobFinished"


class DeadLetterTaken(IngestError):
    """Another request resubmits or purges this dead letter, or already did."""

    reason = "DeadLetterTaken"


class JobNotFinished(IngestError):
    """The job may still write; it cannot be deleted yet."""

    reason = "JobNotFinished"


class NothingToRetry(IngestError):
    """The job has no rejected row whose line was kept as it was: there is nothing to retry."""

    reason = "NothingToRetry"


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
