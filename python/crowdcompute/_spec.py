"""Job specs as Python callers write them (snake_case) -> as the WebSocket takes them (camelCase).

Only the protocol's own keys are renamed: a task's `input`, a job's `metadata` and a worker's
`labels` are the caller's data and keep their keys as written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

#: Values that belong to the caller: passed on untouched, keys and all.
_DATA_KEYS = frozenset({"input", "metadata", "labels", "args"})


def camel(key: str) -> str:
    """`timeout_ms` -> `timeoutMs`; a key already in camelCase stays as it is."""
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _convert_keys(spec: Mapping[str, Any], name: Callable[[str], str]) -> dict[str, Any]:
    """`spec` with its protocol keys renamed by `name` (nested objects and lists of them too;
    the values of data keys such as `input` or `metadata` are the user's, left as they are)."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if value is None:
            continue
        if key in _DATA_KEYS:
            out[name(key)] = value
        elif isinstance(value, Mapping):
            out[name(key)] = _convert_keys(value, name)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            out[name(key)] = [_convert_keys(v, name) for v in value]
        else:
            out[name(key)] = value
    return out


def wire_keys(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec object with its protocol keys in camelCase, as the WebSocket takes it."""
    return _convert_keys(spec, camel)


def snake(key: str) -> str:
    """`timeoutMs` -> `timeout_ms`; a key already in snake_case stays as it is."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def rest_keys(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec object with its protocol keys in snake_case, as the REST API takes it."""
    return _convert_keys(spec, snake)


def wire_time(value: datetime | int | str) -> int | str:
    """A `run_at` as the protocol takes it: epoch ms or RFC 3339 text. A `datetime` becomes
    epoch ms (a naive one is local time, as `datetime.timestamp()` reads it)."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"run_at must be a datetime, epoch milliseconds (int) or RFC 3339 text, not {type(value).__name__}")
    return value


def wire_duration(value: timedelta | int | str, name: str = "delay") -> int | str:
    """A duration as the protocol takes it: milliseconds or text such as `"10m"`. A `timedelta` becomes milliseconds."""
    if isinstance(value, timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"{name} must be a timedelta, milliseconds (int) or text such as '10m', not {type(value).__name__}")
    return value


def time_value(value: datetime | int | str, name: str) -> int | str:
    """A point in time as the protocol takes it: a datetime (a naive one is local time, as
    Python reads it) becomes epoch milliseconds; epoch milliseconds and RFC 3339 text pass as they are."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"{name} takes a datetime, epoch milliseconds or an RFC 3339 string, not {type(value).__name__}")
    return value


def job_options(**options: Any) -> dict[str, Any]:
    """The options every job takes (`priority`, `timeout_ms`, …), those given, in camelCase:
    times (`run_at`, `deadline`) and durations (`delay`, `open_timeout`) as the protocol takes them."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key in ("run_at", "deadline"):
            value = time_value(value, key)
        elif key in ("delay", "open_timeout"):
            value = wire_duration(value, key)
        out[camel(key)] = value
    return out


def graph_output(nodes: list[dict[str, Any]], output: str | None) -> str | None:
    """The graph's output node: the one named, else the last node nothing depends on (as the foreman picks it)."""
    if output is not None:
        return output
    depended: set[str] = set()
    for n in nodes:
        depended.update(n.get("dependsOn") or [])
        depended.update((n.get("inputArgs") or {}).get("fromNodes") or [])
    sinks = [n["id"] for n in nodes if n.get("id") not in depended]
    return sinks[-1] if sinks else None
