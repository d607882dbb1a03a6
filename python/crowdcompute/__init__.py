"""CrowdCompute for Python: workers and clients of a CrowdCompute foreman."""

from ._version import PROTOCOL_VERSION, __version__
from .errors import CrowdComputeError, NonRetryableError
from .client import AsyncClient
from .job import JobHandle
from .sync_client import Client, SyncJobHandle

__all__ = ["CrowdComputeError", "NonRetryableError", "PROTOCOL_VERSION", "__version__", "AsyncClient", "Client", "JobHandle", "SyncJobHandle"]
