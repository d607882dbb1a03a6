"""The package's version: the same as the npm package it speaks with (checked by a test)."""

__version__ = "0.1.0"

#: The protocol version this package speaks (the foreman's major version must match).
PROTOCOL_VERSION = "1.0"
