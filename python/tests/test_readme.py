"""The README's Python worker and client run as written (the foreman's address aside)."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import wait_until

README = Path(__file__).resolve().parents[2] / "README.md"


def block(starting: str) -> str:
    for code in re.findall(r"```python\n(.*?)```", README.read_text(), re.S):
        if code.startswith(starting):
            return str(code)
    raise AssertionError(f"README.md has no python block starting with {starting!r}")


def test_the_readme_worker_and_client(foreman: Any, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(README.parent / "python")}
    worker = block("import asyncio\nfrom crowdcompute import Worker").replace("ws://localhost:8000/ws", foreman.ws_url)
    client = block("from crowdcompute import Client, JobFailedError").replace("http://localhost:8000", foreman.url)
    (tmp_path / "worker.py").write_text(worker)
    (tmp_path / "client.py").write_text(client)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "worker.py")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def connected() -> bool:
            assert proc.poll() is None, "the README's worker exited"
            return any(w["worker_id"] == "math-worker-001" and w["status"] != "offline" for w in foreman.api("GET", "/api/workers"))

        wait_until(connected, 30, "the README's worker to connect")
        done = subprocess.run([sys.executable, str(tmp_path / "client.py")], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "{'result': 3}"
        assert lines[1] == str([{"result": 2 * i} for i in range(100)])
        assert lines[2].split(" ", 1)[1] == "['math-worker-001']"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_the_readme_map_example_runs_on_a_node_worker_in_pyodide(foreman: Any, tmp_path: Path) -> None:
    from conftest import BIN, node

    env = {**os.environ, "PYTHONPATH": str(README.parent / "python")}
    example = block("from crowdcompute import Client\n\ndef collatz_steps").replace("http://localhost:8000", foreman.url)
    (tmp_path / "collatz.py").write_text(example)
    worker = subprocess.Popen([node(), str(BIN), "worker", "--foreman", foreman.ws_url, "--id", "node-pyodide",
                               "--allow-code", "--no-status", "--log-level", "warn"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        done = subprocess.run([sys.executable, str(tmp_path / "collatz.py")], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip() == "[0, 1, 7, 2, 5]"
        job = foreman.api("GET", "/api/jobs?limit=1")[0]
        assert job["language"] == "python" and job["label"] == "collatz_steps"
        tasks = foreman.api("GET", f"/api/jobs/{job['id']}/tasks?limit=5")
        assert {t["attempts"][-1]["worker_id"] for t in tasks} == {"node-pyodide"}
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
