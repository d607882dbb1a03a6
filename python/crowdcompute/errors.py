"""Errors with a stable code (`CC_ERR_*`), one class per kind, as docs/guarantees.md lists them.

Every error the foreman sends (an HTTP error body, a WebSocket `error`) becomes an instance of
the class for its code, so a caller can catch a kind (`NotFoundError`) or read `code`.
"""

from __future__ import annotations

from typing import Any, Mapping


class CrowdComputeError(Exception):
    """An error with a stable `code`; `str()` reads `CC_ERR_X: what happened`."""

    code: str
    message: str
    details: dict[str, Any]
    #: The HTTP status that carried it, when it came over REST.
    status: int | None

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None, *, status: int | None = None) -> None:
        message = strip_code(message)
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.status = status

    @classmethod
    def from_wire(cls, body: Mapping[str, Any], *, status: int | None = None) -> "CrowdComputeError":
        """The error for a wire error (`{code, message, details?}`), of the class its code names."""
        code = str(body.get("code") or "CC_ERR_INTERNAL")
        message = str(body.get("message") or body.get("detail") or code)
        details = body.get("details")
        kind = error_class(code)
        return kind(code, message, details if isinstance(details, Mapping) else None, status=status)


class UnauthorizedError(CrowdComputeError):
    """No credential, or a wrong, revoked or expired one (HTTP 401)."""


class ForbiddenError(CrowdComputeError):
    """The credential lacks the scope the request needs (HTTP 403)."""


class NotFoundError(CrowdComputeError):
    """No such job, task, worker, file or route; or a job pruned after its retention (HTTP 404)."""


class ConflictError(CrowdComputeError):
    """The request conflicts with the state: a task id taken, a sealed job, nothing to retry (HTTP 409)."""


class InvalidRequestError(CrowdComputeError):
    """The request or message is malformed, or a value is out of its bounds (HTTP 400)."""


class PayloadTooLargeError(CrowdComputeError):
    """A frame, body, input, result or artifact exceeded its size limit (HTTP 413)."""


class RateLimitedError(CrowdComputeError):
    """Too many requests or messages (HTTP 429)."""


class StoreUnavailableError(CrowdComputeError):
    """The foreman's database cannot be reached or cannot grow (HTTP 503, 507); retry later."""


class ShuttingDownError(CrowdComputeError):
    """The foreman or worker is shutting down."""


class ConnectionFailedError(CrowdComputeError):
    """The connection to the foreman failed."""


class TaskTimeoutError(CrowdComputeError):
    """A task did not finish within its timeout."""


class CancelledError(CrowdComputeError):
    """The task or job was cancelled."""


class JobFailedError(CrowdComputeError):
    """At least one task of the job failed, or it was cancelled (raised by `job.result()`).

    `failures` lists the tasks that did not complete (`task_id`, `index`, `status`, `error`),
    `results` what did (None elsewhere), `state` how the job ended (`failed`, `cancelled`).
    """

    job_id: str | None
    state: str | None
    results: list[Any]
    failures: list[dict[str, Any]]

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None, *, status: int | None = None,
                 job_id: str | None = None, state: str | None = None, results: list[Any] | None = None,
                 failures: list[dict[str, Any]] | None = None) -> None:
        super().__init__(code, message, details, status=status)
        self.job_id = job_id
        self.state = state
        self.results = results if results is not None else []
        self.failures = failures if failures is not None else []


class HandlerFailedError(CrowdComputeError):
    """A task's handler or shipped function raised."""


class NonRetryableError(Exception):
    """Raise this from a handler to fail the task at once, without retrying it."""


_CLASSES: dict[str, type[CrowdComputeError]] = {
    "CC_ERR_UNAUTHORIZED": UnauthorizedError,
    "CC_ERR_FORBIDDEN": ForbiddenError,
    "CC_ERR_NOT_FOUND": NotFoundError,
    "CC_ERR_JOB_NOT_FOUND": NotFoundError,
    "CC_ERR_JOB_PRUNED": NotFoundError,
    "CC_ERR_TASK_NOT_FOUND": NotFoundError,
    "CC_ERR_WORKER_NOT_FOUND": NotFoundError,
    "CC_ERR_RATE_LIMIT_NOT_FOUND": NotFoundError,
    "CC_ERR_KEY_NOT_FOUND": NotFoundError,
    "CC_ERR_SCHEDULE_NOT_FOUND": NotFoundError,
    "CC_ERR_SCHEDULE_EXISTS": ConflictError,
    "CC_ERR_INVALID_SCHEDULE": InvalidRequestError,
    "CC_ERR_TASK_EXISTS": ConflictError,
    "CC_ERR_JOB_SEALED": ConflictError,
    "CC_ERR_APPEND_CONFLICT": ConflictError,
    "CC_ERR_NOTHING_TO_RETRY": ConflictError,
    "CC_ERR_BAD_JSON": InvalidRequestError,
    "CC_ERR_BAD_MESSAGE": InvalidRequestError,
    "CC_ERR_UNKNOWN_MESSAGE": InvalidRequestError,
    "CC_ERR_INVALID_JOB": InvalidRequestError,
    "CC_ERR_TOO_DEEP": InvalidRequestError,
    "CC_ERR_PROTOCOL_VERSION": InvalidRequestError,
    "CC_ERR_PAYLOAD_TOO_LARGE": PayloadTooLargeError,
    "CC_ERR_RATE_LIMITED": RateLimitedError,
    "CC_ERR_STORE_UNAVAILABLE": StoreUnavailableError,
    "CC_ERR_STORE_FULL": StoreUnavailableError,
    "CC_ERR_SHUTTING_DOWN": ShuttingDownError,
    "CC_ERR_CONNECTION": ConnectionFailedError,
    "CC_ERR_TIMEOUT": TaskTimeoutError,
    "CC_ERR_CANCELLED": CancelledError,
    "CC_ERR_JOB_FAILED": JobFailedError,
    "CC_ERR_HANDLER_FAILED": HandlerFailedError,
}


def error_class(code: str) -> type[CrowdComputeError]:
    """The class errors of `code` are raised as (CrowdComputeError for codes without one)."""
    return _CLASSES.get(code, CrowdComputeError)


def strip_code(message: str) -> str:
    """`CC_ERR_X: what happened` -> `what happened`; other text is returned as it is."""
    if message.startswith("CC_ERR_"):
        head, sep, rest = message.partition(": ")
        if sep and head.replace("_", "").isalnum() and head.upper() == head:
            return rest
    return message
