"""Parsers of command-line values: durations (`500ms`, `30s`, `5m`), whole numbers, numbers,
each kept within its flag's range and refused in the flag's name with the limit, as the Node
CLI does."""

from __future__ import annotations

import argparse
import math
import re
from typing import Callable

SECOND, MINUTE, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000

_UNITS = {
    "ms": 1, "msec": 1, "msecs": 1, "millisecond": 1, "milliseconds": 1,
    "s": SECOND, "sec": SECOND, "secs": SECOND, "second": SECOND, "seconds": SECOND,
    "m": MINUTE, "min": MINUTE, "mins": MINUTE, "minute": MINUTE, "minutes": MINUTE,
    "h": HOUR, "hr": HOUR, "hrs": HOUR, "hour": HOUR, "hours": HOUR,
    "d": DAY, "day": DAY, "days": DAY,
    "w": 7 * DAY, "week": 7 * DAY, "weeks": 7 * DAY,
    "y": 365.25 * DAY, "yr": 365.25 * DAY, "yrs": 365.25 * DAY, "year": 365.25 * DAY, "years": 365.25 * DAY,
}
_DURATION = re.compile(r"^(\d*\.?\d+)\s*([a-z]+)?$", re.I)


def parse_duration(value: str) -> int:
    """A duration in milliseconds: `500ms`, `30s`, `5m`, `2h`, `7d`, or a number of milliseconds."""
    m = _DURATION.match(value.strip())
    unit = (m.group(2) or "ms").lower() if m else ""
    if not m or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f'"{value}" is not a duration (e.g. 500ms, 30s, 5m, 7d, or milliseconds)')
    return round(float(m.group(1)) * _UNITS[unit])


def parse_count(value: str) -> int:
    """A non-negative whole number."""
    try:
        n = float(value)
    except ValueError:
        n = math.nan
    if not n.is_integer() or n < 0:
        raise argparse.ArgumentTypeError(f'"{value}" is not a non-negative integer')
    return int(n)


def parse_signed(value: str) -> int:
    """A whole number that may be negative (`-1` = never)."""
    try:
        n = float(value)
    except ValueError:
        n = math.nan
    if not n.is_integer():
        raise argparse.ArgumentTypeError(f'"{value}" is not an integer')
    return int(n)


def parse_number(value: str) -> float:
    """A number that may have a fraction."""
    try:
        n = float(value)
    except ValueError:
        n = math.nan
    if not math.isfinite(n):
        raise argparse.ArgumentTypeError(f'"{value}" is not a number')
    return n


def _format_duration(ms: float) -> str:
    for size, unit in ((DAY, "d"), (HOUR, "h"), (MINUTE, "min"), (SECOND, "s")):
        if ms >= size and ms % size == 0 and (unit != "d" or ms >= 2 * DAY):
            return f"{int(ms // size)} {unit}"
    return f"{ms / SECOND:.1f} s" if ms >= SECOND else f"{ms:g} ms"


def describe(n: float, unit: str = "") -> str:
    """A limit as quoted: `86400000 ms (24 h)`, `1000000000 MiB`, `10000`."""
    text = f"{n:g}" if not float(n).is_integer() else str(int(n))
    if unit == "ms":
        return f"{text} ms ({_format_duration(n)})" if n >= SECOND else f"{text} ms"
    return f"{text} {unit}" if unit else text


def within(parse: Callable[[str], float], low: float, high: float, unit: str = "") -> Callable[[str], float]:
    """`parse`, then refuse a value outside [low, high] with the limit (argparse names the flag:
    `argument --drain-timeout: must be at most 86400000 ms (24 h)`)."""

    def check(value: str) -> float:
        n = parse(value)
        if n < low:
            raise argparse.ArgumentTypeError(f"must be at least {describe(low, unit)}")
        if n > high:
            raise argparse.ArgumentTypeError(f"must be at most {describe(high, unit)}")
        return n

    return check


def parse_label(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f'--label takes key=value, not "{value}"')
    return key, val
