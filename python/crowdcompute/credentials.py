"""The local credentials file a foreman leaves for the CLI, the SDKs and workers on its machine.

It lives in `$CROWDCOMPUTE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/crowdcompute`, else
`~/.config/crowdcompute`, as `credentials.json`: one entry per database, with the URLs the
foreman listens on, an admin API key and a worker token for any worker id. Entries are found
by the foreman's URL, HTTP or WebSocket, with `localhost`, `127.0.0.1` and `::1` the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}

#: Where a command looks for a foreman when none is given, as the Node CLI does.
DEFAULT_FOREMAN_URL = "http://localhost:8000"


def credentials_dir() -> Path:
    if os.environ.get("CROWDCOMPUTE_CONFIG_DIR"):
        return Path(os.environ["CROWDCOMPUTE_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "crowdcompute"


def credentials_file() -> Path:
    return credentials_dir() / "credentials.json"


def endpoint_identity(url: str) -> str:
    """`http://localhost:8000`, `ws://127.0.0.1:8000/ws` -> `http://loopback:8000`."""
    if url.startswith("ws"):
        url = "http" + url[2:]
    u = urlsplit(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    host = (u.hostname or "").lower()
    host = "loopback" if host in _LOOPBACK else host
    return f"{u.scheme}://{host}:{port}"


def local_credentials_at(url: str) -> dict[str, Any] | None:
    """The entry of the foreman at `url`, if this machine's credentials file has one."""
    try:
        content = json.loads(credentials_file().read_text("utf-8"))
        at = endpoint_identity(url)
    except (OSError, ValueError):
        return None
    for entry in content.get("foremen", []) if isinstance(content, dict) else []:
        try:
            if isinstance(entry, dict) and any(endpoint_identity(u) == at for u in entry.get("urls", [])):
                return dict(entry)
        except ValueError:
            continue
    return None


def local_foremen() -> list[dict[str, Any]]:
    """Every foreman this machine's credentials file records that has listened (has a URL)."""
    try:
        content = json.loads(credentials_file().read_text("utf-8"))
    except (OSError, ValueError):
        return []
    entries = content.get("foremen", []) if isinstance(content, dict) else []
    return [dict(e) for e in entries if isinstance(e, dict) and isinstance(e.get("urls"), list) and e["urls"]]


def local_foreman(next_step: str) -> dict[str, Any]:
    """The foreman a command means when it is not told, as the Node CLI finds it: the one the
    credentials file records at http://localhost:8000, else the only one it records. Raises
    LookupError with a one-line message ending in `next_step` when there is none, or several."""
    at_default = local_credentials_at(DEFAULT_FOREMAN_URL)
    if at_default and at_default.get("urls"):
        return at_default
    found = local_foremen()
    if len(found) == 1:
        return found[0]
    where = credentials_file()
    if not found:
        raise LookupError(f"no foreman has run on this machine (none is recorded in {where}): "
                          f"start the foreman first (crowdcompute foreman), or {next_step}")
    listed = "; ".join(f"{e.get('database')} at {e['urls'][0]}" for e in found)
    raise LookupError(f"{len(found)} foremen are recorded in {where} ({listed}) and none at {DEFAULT_FOREMAN_URL}: "
                      f"choose one with --foreman <url>, or {next_step}")


def local_api_key_at(url: str) -> str | None:
    entry = local_credentials_at(url)
    key = entry.get("apiKey") if entry else None
    return key if isinstance(key, str) else None


def local_worker_token_at(url: str) -> str | None:
    entry = local_credentials_at(url)
    token = entry.get("workerToken") if entry else None
    return token if isinstance(token, str) else None
