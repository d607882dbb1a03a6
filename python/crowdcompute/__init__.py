"""CrowdCompute for Python: workers and clients of a CrowdCompute foreman."""

from ._version import PROTOCOL_VERSION, __version__
from .errors import (
    CancelledError,
    ConflictError,
    ConnectionFailedError,
    CrowdComputeError,
    ForbiddenError,
    HandlerFailedError,
    InvalidRequestError,
    JobFailedError,
    NonRetryableError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    ShuttingDownError,
    StoreUnavailableError,
    TaskTimeoutError,
    UnauthorizedError,
)
from .client import AsyncClient
from .job import JobHandle
from .open_job import OpenJob
from .sync_client import Client, SyncJobHandle, SyncOpenJob
from .task import Task
from .worker import Worker

__all__ = [
    "AsyncClient",
    "Client",
    "JobHandle",
    "SyncJobHandle",
    "SyncOpenJob",
    "CancelledError",
    "ConflictError",
    "ConnectionFailedError",
    "CrowdComputeError",
    "ForbiddenError",
    "HandlerFailedError",
    "InvalidRequestError",
    "JobFailedError",
    "NonRetryableError",
    "NotFoundError",
    "OpenJob",
    "PROTOCOL_VERSION",
    "PayloadTooLargeError",
    "RateLimitedError",
    "ShuttingDownError",
    "StoreUnavailableError",
    "Task",
    "TaskTimeoutError",
    "UnauthorizedError",
    "Worker",
    "__version__",
]
