"""CrowdCompute for Python: workers and clients of a CrowdCompute foreman."""

from ._version import PROTOCOL_VERSION, __version__
from .errors import CrowdComputeError, NonRetryableError

__all__ = ["CrowdComputeError", "NonRetryableError", "PROTOCOL_VERSION", "__version__"]
