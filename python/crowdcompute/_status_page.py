"""The worker page as the status server serves it: the HTML shell, the security headers of
every answer, and the page's files under /ui/ (copies of the Node worker's page, made by
scripts/copy-worker-ui.mjs; see ui/MANIFEST.json). The shell and the headers are the Node
worker's (src/host/ui-assets.ts, src/host/page-headers.ts), with an import map of only the
libraries the worker page uses.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path

UI_DIR = Path(__file__).resolve().parent / "ui"

#: Lets the page's modules `import { h } from 'preact'`; the only inline script the policy allows.
IMPORT_MAP = json.dumps({"imports": {
    "preact": "/ui/vendor/preact.mjs", "preact/hooks": "/ui/vendor/hooks.mjs", "htm": "/ui/vendor/htm.mjs", "uplot": "/ui/vendor/uplot.mjs",
}}, separators=(",", ":"))

_IMPORT_MAP_SOURCE = "'sha256-" + base64.b64encode(hashlib.sha256(IMPORT_MAP.encode()).digest()).decode() + "'"

#: Nothing but what is named: the page's own scripts, styles and WebSocket, no frames, no inline code.
PAGE_CSP = "; ".join(f"{name} {' '.join(sources)}" for name, sources in {
    "default-src": ["'none'"],
    "script-src": ["'self'", _IMPORT_MAP_SOURCE],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "manifest-src": ["'self'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}.items())

#: The headers of every answer of the status server.
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

_TYPES = {
    ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
}


def page_shell(worker_id: str) -> str:
    """The page's HTML: a title, the styles, the import map and the one module that renders the
    rest from the /ws feed. The worker id (escaped) is the only data in it."""
    title = html.escape(f"CrowdCompute worker {worker_id}", quote=True)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="/ui/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/style.css">
<link rel="stylesheet" href="/ui/vendor/uplot.css">
<link rel="stylesheet" href="/ui/worker.css">
<script type="importmap">{IMPORT_MAP}</script>
<script type="module" src="/ui/worker.js"></script>
</head><body><div id="app"></div></body></html>"""


def ui_file(path: str) -> tuple[bytes, str, str] | None:
    """The file at /ui/`path` (body, content type, cache control), or None when there is none:
    only the page's own files, by a plain relative path."""
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") or p.startswith(".") for p in parts) or "\\" in path:
        return None
    file = UI_DIR.joinpath(*parts)
    content_type = _TYPES.get(file.suffix)
    if content_type is None or not file.is_file():
        return None
    cache = "public, max-age=86400" if parts[0] == "vendor" else "public, max-age=0"
    return file.read_bytes(), content_type, cache
