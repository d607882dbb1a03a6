"""Fixtures: real foremen, started from this checkout's `bin/crowdcompute.js` with Node.

Every foreman of the session shares one configuration directory (set before anything reads
it), so the Python SDK finds each foreman's admin key and worker token by its URL there, as
it would on a user's machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "bin" / "crowdcompute.js"
SESSION_DIR = Path(tempfile.mkdtemp(prefix="cc-pytest-"))
os.environ["CROWDCOMPUTE_CONFIG_DIR"] = str(SESSION_DIR / "config")
for name in ("CROWDCOMPUTE_API_KEY", "CROWDCOMPUTE_FOREMAN", "CROWDCOMPUTE_WORKER_TOKEN", "CROWDCOMPUTE_WORKER_ID"):
    os.environ.pop(name, None)
# The foremen, workers and CLI commands started here share Node's compile cache (compiled code,
# and the TypeScript sources with their types stripped), as the TypeScript suite's do: without
# it each process strips and compiles the same sources anew, a third of its start-up time.
os.environ.setdefault("NODE_COMPILE_CACHE", str(Path(tempfile.gettempdir()) / "crowdcompute-compile-cache"))

POSTGRES_URL = os.environ.get("CROWDCOMPUTE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")


def node() -> str:
    # The checkout's own Node 24 (scripts/ensure-node.sh puts it in .node/ when the machine's is older).
    own = ROOT / ".node" / "node_modules" / ".bin" / "node"
    if own.exists():
        return str(own)
    found = shutil.which("node")
    if not found:
        raise RuntimeError("Node.js (24) is needed to run a foreman for these tests: bash scripts/ensure-node.sh")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_reachable() -> bool:
    from urllib.parse import urlsplit

    u = urlsplit(POSTGRES_URL)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=2):
            return True
    except OSError:
        return False


def cli(*args: str, timeout: float = 60) -> str:
    """Run `crowdcompute <args>` (key, token, … commands) and return its standard output."""
    done = subprocess.run([node(), str(BIN), *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"crowdcompute {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


class Foreman:
    """A foreman process on 127.0.0.1, its database, and the credentials it left."""

    def __init__(self, database: str, args: list[str]) -> None:
        self.database = database
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = SESSION_DIR / f"foreman-{self.port}.log"
        self.start()

    def start(self) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [node(), str(BIN), "foreman", "--port", str(self.port), "--host", "127.0.0.1",
             "--log-level", "warn", "--database", self.database, *self.args],
            stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy(),
        )
        out.close()
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"foreman exited {self.proc.returncode}: {self.output()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill(signal.SIGKILL)
                raise RuntimeError(f"foreman did not answer /health within 30 s: {self.output()[-2000:]}")
            time.sleep(0.1)
        entry = self.credentials()
        self.api_key: str = entry.get("apiKey", "")
        self.worker_token: str = entry.get("workerToken", "")

    def credentials(self) -> dict[str, Any]:
        from crowdcompute.credentials import local_credentials_at

        return local_credentials_at(self.url) or {}

    def output(self) -> str:
        try:
            return self.log.read_text("utf-8", "replace")
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        """Start again on the same port and database (after a kill)."""
        self.kill(signal.SIGKILL)
        self.start()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A REST call with the admin key; the parsed JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def cli(self, *args: str) -> str:
        return cli(*args, "--database", self.database)


def database_url(store: str, sqlite_file: Path) -> str:
    if store == "sqlite":
        return f"sqlite:{sqlite_file}"
    if not postgres_reachable():
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"PostgreSQL at {POSTGRES_URL} is required under CI=true")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable")
    return f"{POSTGRES_URL}?schema=py_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def start_foreman(tmp_path: Path) -> Iterator[Callable[..., Foreman]]:
    """Start foremen (`store`: sqlite or postgres, extra CLI flags); all are stopped after the test."""
    started: list[Foreman] = []

    def start(*args: str, store: str = "sqlite") -> Foreman:
        f = Foreman(database_url(store, tmp_path / f"cc{len(started)}.db"), list(args))
        started.append(f)
        return f

    yield start
    for f in started:
        f.kill(signal.SIGKILL)


@pytest.fixture
def foreman(start_foreman: Callable[..., Foreman]) -> Foreman:
    """A foreman on SQLite with short heartbeats, for most tests."""
    return start_foreman("--heartbeat-interval", "500ms", "--lease-ttl", "5s")


@pytest.fixture(params=["sqlite", "postgres"])
def any_store_foreman(request: pytest.FixtureRequest, start_foreman: Callable[..., Foreman]) -> Foreman:
    """The same, once on each store."""
    return start_foreman("--heartbeat-interval", "500ms", "--lease-ttl", "5s", store=request.param)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


sys.path.insert(0, str(ROOT / "python"))
