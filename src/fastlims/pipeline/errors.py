"""How the pipeline tells a failure that retrying can cure from one it cannot.

Transient (retried with backoff, then again after a durable pause): storage or database
unreachable, timeouts, connection errors. Permanent (the request ends Failed, naming the step
and the reason): invalid input, an infeasible schedule, a missing file, and anything unexpected,
since retrying a bug does not fix it (after a fix, ``fastlims workflows resume`` does).
"""

from __future__ import annotations


class PermanentError(Exception):
    """A step cannot succeed with this input; the request fails with ``step`` and ``reason``."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(step, reason)  # both in args: DBOS pickles a step's error for replay
        self.step = step
        self.reason = reason

    def __str__(self) -> str:
        return f"step {self.step}: {self.reason}"


class Stopped(Exception):
    """The request left the pipeline's path (cancelled, or failed elsewhere): stop quietly."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(step, reason)
        self.step = step
        self.reason = reason

    def __str__(self) -> str:
        return f"stopped before {self.step}: {self.reason}"


class TransientError(Exception):
    """Raised by the pipeline's own code for a condition that will pass (e.g. a set still arriving)."""


_PERMANENT_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def is_transient(error: BaseException) -> bool:
    """Whether retrying the step may succeed."""
    if isinstance(error, PermanentError | Stopped):
        return False
    if isinstance(error, TransientError | TimeoutError | ConnectionError):
        return True
    if isinstance(error, OSError):
        return not isinstance(error, _PERMANENT_OS_ERRORS)
    module = type(error).__module__
    name = type(error).__name__
    if module.startswith("sqlalchemy"):
        # OperationalError (server gone, locked), InterfaceError, pool TimeoutError, DisconnectionError.
        return name in ("OperationalError", "InterfaceError", "TimeoutError", "DisconnectionError") or bool(
            getattr(error, "connection_invalidated", False)
        )
    if module.startswith("psycopg"):
        return name in ("OperationalError", "InterfaceError")
    if module.startswith("obstore"):
        # obstore raises NotFoundError / PermissionDeniedError / UnauthenticatedError for answers
        # that will not change, GenericError and friends for a store that did not answer.
        return name not in ("NotFoundError", "PermissionDeniedError", "UnauthenticatedError", "InvalidPathError")
    return name == "StorageError"
