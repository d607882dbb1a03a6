"""Handler patterns, as the foreman reads them: `*` matches any run of characters (dots
included), `?` exactly one, everything else itself. The most specific match wins."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.S)


def matches(pattern: str, task_type: str) -> bool:
    return pattern == task_type or _regex(pattern).match(task_type) is not None


def best_pattern(patterns: Iterable[str], task_type: str) -> str | None:
    """An exact name wins, then the pattern with the most literal text, then the first registered."""
    best: str | None = None
    best_score = -1
    for p in patterns:
        if p == task_type:
            return p
        if not matches(p, task_type):
            continue
        score = len(p.replace("*", "").replace("?", ""))
        if score > best_score:
            best, best_score = p, score
    return best
