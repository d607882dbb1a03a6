"""`python -m crowdcompute worker` as a user runs it: a subprocess against a real foreman, its
status server over HTTP and /ws, its signals and its refusals."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from support import wait_until

from conftest import ROOT, free_port

HANDLERS = '''
import time

HANDLERS = {"math.*": lambda task: task.get_input("a") + task.get_input("b")}

def register(worker):
    def wait(task):
        # Runs until the test creates the file it names, reporting progress meanwhile.
        worker.send_task_progress(40, "waiting for the flag")
        while not __import__("os").path.exists(task.get_input("flag")):
            time.sleep(0.02)
        return "released"

    worker.register_handler("slow.wait", wait)
'''


class CliWorker:
    """`python -m crowdcompute worker <args>` in the background, its stderr collected."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONPATH": str(ROOT / "python"), **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "crowdcompute", "worker", *args], cwd=cwd, env=full_env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"the worker exited {self.proc.returncode} before printing /{pattern}/:\n{self.output}")
            return next((m for m in (re.search(pattern, line) for line in list(self.lines)) if m), None)

        return wait_until(found, timeout, f"/{pattern}/ in the worker's output")

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def launch(tmp_path: Path) -> Any:
    started: list[CliWorker] = []

    def start(*args: str, env: dict[str, str] | None = None) -> CliWorker:
        w = CliWorker(tmp_path, *args, env=env)
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill()


def http(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def get_json(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, _, body = http("GET", url, headers)
    return status, json.loads(body)


def submit(foreman: Any, tasks: list[dict[str, Any]]) -> str:
    return str(foreman.api("POST", "/api/jobs", {"kind": "tasks", "tasks": tasks})["id"])


def finished(foreman: Any, job: str) -> dict[str, Any]:
    return wait_until(lambda: (lambda j: j if j["status"] in ("completed", "failed", "cancelled") else None)(foreman.api("GET", f"/api/jobs/{job}")),
                      60, f"job {job} to finish")


def ws_messages(url: str, count_until: Any, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Messages of the status feed at `url` until `count_until(messages)` is true."""
    import asyncio

    import websockets

    async def run() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        async with websockets.connect(url, extra_headers=headers or {}, open_timeout=30) as ws:
            while not count_until(got):
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        return got

    return asyncio.run(run())


def ws_refusal(url: str, headers: dict[str, str]) -> int | None:
    """The HTTP status a refused /ws upgrade got (None when it was accepted)."""
    import asyncio

    import websockets

    async def run() -> int | None:
        try:
            async with websockets.connect(url, extra_headers=headers, open_timeout=30):
                return None
        except websockets.exceptions.InvalidStatusCode as err:
            return err.status_code

    return asyncio.run(run())


def token_file(tmp_path: Path, foreman: Any) -> str:
    f = tmp_path / "worker-token"
    f.write_text(foreman.worker_token + "\n")
    return str(f)


SNAPSHOT_KEYS = {"worker_id", "status", "now", "connection", "config", "running_tasks", "stats", "throughput", "host"}


def test_runs_tasks_serves_its_status_and_drains_on_sigterm(foreman: Any, launch: Any, tmp_path: Path) -> None:
    (tmp_path / "my_handlers.py").write_text(HANDLERS)
    w = launch("--foreman", foreman.ws_url, "--token-file", token_file(tmp_path, foreman), "--id", "py-cli-1",
               "--handlers", "my_handlers", "--status-port", "0", "--concurrency", "3", "--heartbeat-interval", "500ms",
               "--drain-timeout", "60s", "--label", "region=eu", "--cpus", "2")
    start = w.line(r"worker py-cli-1 connected to (\S+) \(concurrency 3, code refused, handlers: (.*), status (http://127\.0\.0\.1:(\d+))\)")
    assert start.group(1) == foreman.ws_url
    assert set(start.group(2).split(", ")) == {"math.*", "slow.wait"}
    base, port = start.group(3), start.group(4)

    # Named tasks run, with the module's dict and register(worker) handlers alike.
    job = submit(foreman, [{"type": "math.add", "input": {"a": i, "b": 1}} for i in range(20)])
    assert finished(foreman, job)["status"] == "completed"
    assert [r for r in foreman.api("GET", f"/api/jobs/{job}/results")["results"]] == [i + 1 for i in range(20)]
    mine = next(x for x in foreman.api("GET", "/api/workers") if x["worker_id"] == "py-cli-1")
    assert mine["resources"]["labels"] == {"region": "eu"} and mine["resources"]["cpuCores"] == 2

    # GET /: JSON for tools, the page for browsers, and caches told it varies.
    status, headers, body = http("GET", base + "/")
    doc = json.loads(body)
    assert status == 200 and headers["content-type"].startswith("application/json") and headers["vary"] == "Accept"
    assert doc["worker_id"] == "py-cli-1" and doc["status"] == "connected" and doc["connected"] is True
    assert doc["foreman_url"] == foreman.ws_url and doc["current_task"] is None and doc["running_tasks"] == []
    assert doc["config"]["max_concurrent_tasks"] == 3 and doc["config"]["allow_code"] is False
    status, headers, body = http("GET", base + "/", {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert status == 200 and headers["content-type"].startswith("text/html") and headers["vary"] == "Accept"
    assert b"<title>CrowdCompute worker py-cli-1</title>" in body and b'src="/ui/worker.js"' in body
    assert "frame-ancestors 'none'" in headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff"
    for path, kind in (("/ui/worker.js", "text/javascript"), ("/ui/common.js", "text/javascript"), ("/ui/vendor/preact.mjs", "text/javascript"),
                       ("/ui/vendor/uplot.css", "text/css"), ("/ui/style.css", "text/css")):
        status, headers, body = http("GET", base + path)
        assert status == 200 and headers["content-type"].startswith(kind) and body, path
    assert http("GET", base + "/ui/../cli.py")[0] == 404
    assert http("GET", base + "/ui/MANIFEST.json")[0] == 404

    status, stats = get_json(base + "/stats")
    assert status == 200 and stats["worker_id"] == "py-cli-1"
    assert stats["stats"]["tasks_completed"] == 20 and stats["stats"]["tasks_failed"] == 0 and stats["stats"]["connects"] == 1
    status, health = get_json(base + "/health")
    assert status == 200 and health["status"] == "healthy" and health["queue_size"] == 0 and health["active_tasks"] == 0
    status, metrics = get_json(base + "/metrics")
    assert status == 200 and metrics["tasks_completed"] == 20 and metrics["cpu_cores"] >= 1
    status, headers, body = http("GET", base + "/metrics/prometheus")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "\ncrowdcompute_worker_tasks_completed_total 20\n" in text and "\ncrowdcompute_worker_connected 1\n" in text
    assert 'crowdcompute_worker_task_duration_seconds_count{type="math.add"} 20' in text
    assert 'crowdcompute_worker_info{worker_id="py-cli-1"} 1' in text

    # Only its own host names: a rebound DNS name is refused, on HTTP and on /ws.
    status, refused = get_json(base + "/stats", {"Host": f"attacker.example:{port}"})
    assert status == 403 and refused["code"] == "CC_ERR_FORBIDDEN" and "attacker.example" in refused["message"]
    assert get_json(base + "/stats", {"Host": f"localhost:{port}"})[0] == 200
    ws_url = f"ws://127.0.0.1:{port}/ws"
    assert ws_refusal(ws_url, {"Host": f"attacker.example:{port}"}) == 403
    assert ws_refusal(ws_url, {"Origin": "http://attacker.example"}) == 403
    assert ws_refusal(ws_url, {"Origin": f"http://127.0.0.1:{port}"}) is None

    # A running task on the live feed, with the progress its handler reported.
    flag = tmp_path / "release"
    slow = submit(foreman, [{"type": "slow.wait", "input": {"flag": str(flag)}}])
    msgs = ws_messages(ws_url, lambda got: got and got[-1]["data"]["running_tasks"] and got[-1]["data"]["running_tasks"][0]["progress"] == 40)
    assert all(m["type"] == "status" and set(m["data"]) == SNAPSHOT_KEYS for m in msgs)
    data = msgs[-1]["data"]
    task = data["running_tasks"][0]
    assert task["type"] == "slow.wait" and task["progress_message"] == "waiting for the flag" and task["job_id"] == slow
    assert data["stats"]["tasks_completed"] == 20 and data["connection"]["connected"] is True
    assert data["connection"]["history"][0]["kind"] == "connected" and data["connection"]["foreman_id"]
    assert data["throughput"]["bucket_seconds"] == 10 and sum(data["throughput"]["completed"]) == 20
    assert data["host"]["process_heap_used_bytes"] is None and data["host"]["process_rss_bytes"] > 0
    assert get_json(base + "/")[1]["current_task"] == task["task_id"]

    # POST /restart needs the worker's own token.
    assert http("POST", base + "/restart")[0] == 401
    assert http("POST", base + "/restart", {"Authorization": "Bearer cct_wrong"})[0] == 401
    status, _, body = http("POST", base + "/restart", {"Authorization": f"Bearer {foreman.worker_token}"})
    assert status == 200 and json.loads(body) == {"status": "restarting", "worker_id": "py-cli-1"}
    wait_until(lambda: get_json(base + "/stats")[1]["stats"]["connects"] == 2, 60, "the worker to reconnect after POST /restart")

    # SIGTERM drains: the running task finishes on this worker (no other could run it), then it exits 0.
    wait_until(lambda: get_json(base + "/health")[0] == 200, 60, "the worker to be connected again")
    w.proc.send_signal(signal.SIGTERM)
    w.line(r"SIGTERM: worker py-cli-1 draining \(taking no new tasks\)")
    flag.write_text("go")
    assert w.wait() == 0, w.output
    done = finished(foreman, slow)
    assert done["status"] == "completed", done
    assert foreman.api("GET", f"/api/jobs/{slow}/results")["results"] == ["released"]


def test_status_port_taken_moves_on_and_no_status_serves_none(foreman: Any, launch: Any, tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(HANDLERS)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    try:
        w = launch("-f", foreman.ws_url, "--token", foreman.worker_token, "--id", "py-cli-port", "--handlers", "./tasks.py",
                   "--status-port", str(taken))
        m = w.line(r"status http://127\.0\.0\.1:(\d+) \((\d+) was taken\)")
        assert int(m.group(2)) == taken and taken < int(m.group(1)) <= taken + 20
        assert get_json(f"http://127.0.0.1:{m.group(1)}/")[1]["worker_id"] == "py-cli-port"
    finally:
        holder.close()
    quiet = launch("-f", foreman.ws_url, "--id", "py-cli-quiet", "--handlers", "tasks.py", "--no-status",
                   env={"CROWDCOMPUTE_WORKER_TOKEN": foreman.worker_token})
    line = quiet.line(r"worker py-cli-quiet connected to .*\(concurrency 4, code refused, handlers: ([^,]+), ([^,]+)\)$")
    assert {line.group(1), line.group(2)} == {"math.*", "slow.wait"}, "no status server, so no status URL"
    quiet.proc.send_signal(signal.SIGINT)
    assert quiet.wait() == 0, quiet.output


@pytest.mark.parametrize(("args", "message"), [
    (["--concurrency", "0"], "argument -c/--concurrency: must be at least 1"),
    (["--concurrency", "lots"], 'argument -c/--concurrency: "lots" is not a non-negative integer'),
    (["--drain-timeout", "2d"], "argument --drain-timeout: must be at most 86400000 ms (24 h)"),
    (["--heartbeat-interval", "soon"], 'argument --heartbeat-interval: "soon" is not a duration'),
    (["--status-port", "70000"], "argument --status-port: must be at most 65535"),
    (["--max-reconnect-attempts", "-2"], "argument --max-reconnect-attempts: must be at least -1"),
    (["--label", "region"], '--label takes key=value, not "region"'),
    (["--allow-code", "--code-memory", "lots"], 'argument --code-memory: "lots" is not a non-negative integer'),
    (["--sandbox-memory", "64"], "--sandbox-memory: a Python worker runs shipped Python functions natively, not in a sandbox"),
])
def test_a_bad_flag_is_refused_naming_it_and_its_limit(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "crowdcompute", "worker", "-f", "ws://127.0.0.1:9/ws", "--handlers", "x.py", *args],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT / "python")}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_what_a_worker_needs_is_asked_for(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "crowdcompute", "worker", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    assert "this worker would receive no tasks: give --handlers" in run("-f", "ws://127.0.0.1:9/ws").stderr
    missing = run("-f", "ws://127.0.0.1:9/ws", "--handlers", "nowhere.py", "--no-status")
    assert missing.returncode == 1 and "handlers module nowhere.py does not exist" in missing.stderr
    (tmp_path / "broken.py").write_text("import json\nraise RuntimeError('no database configured')\n")
    broken = run("-f", "ws://127.0.0.1:9/ws", "--handlers", "broken", "--no-status")
    assert broken.returncode == 1 and "handlers module broken failed to load: RuntimeError: no database configured" in broken.stderr
    (tmp_path / "empty.py").write_text("X = 1\n")
    assert "empty.py must define HANDLERS" in run("-f", "ws://127.0.0.1:9/ws", "--handlers", "empty.py", "--no-status").stderr
    bare = run("-f", "localhost:8000", "--handlers", "x.py", "--no-status")
    assert bare.returncode == 2 and "the foreman URL localhost:8000 needs http:// or ws:// in front: --foreman http://localhost:8000" in bare.stderr, bare.stderr
    help_text = run("--help").stdout
    assert "HANDLERS = " in help_text and "def register(worker)" in help_text and "CROWDCOMPUTE_WORKER_TOKEN" in help_text


def test_gives_up_after_max_reconnect_attempts_and_exits_1(launch: Any, tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(HANDLERS)
    nobody = free_port()
    w = launch("-f", f"ws://127.0.0.1:{nobody}/ws", "--handlers", "tasks.py", "--no-status", "--max-reconnect-attempts", "1",
               "--reconnect-interval", "10ms", "--log-level", "silent")
    assert w.wait() == 1
    assert re.search(r"worker \S+ stopped: .*", w.output), w.output


def test_the_foremans_http_url_means_its_workers_endpoint() -> None:
    from crowdcompute.cli import _foreman_ws_urls
    parser = argparse.ArgumentParser()
    assert _foreman_ws_urls("http://127.0.0.1:8000", parser) == "ws://127.0.0.1:8000/ws"
    assert _foreman_ws_urls("https://f.example/, ws://b:8000/ws", parser) == "wss://f.example/ws,ws://b:8000/ws"
    assert _foreman_ws_urls("https://proxy.example/crowd/ws", parser) == "wss://proxy.example/crowd/ws"


def test_without_foreman_it_connects_to_the_local_foreman_with_its_token(start_foreman: Any, launch: Any, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine where one foreman has run: its credentials file records that foreman alone.
    monkeypatch.setenv("CROWDCOMPUTE_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("CROWDCOMPUTE_FOREMAN", "DISTWORKER_CONTROLLER_URL", "CROWDCOMPUTE_WORKER_TOKEN", "DISTWORKER_WORKER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "tasks.py").write_text(HANDLERS)
    foreman = start_foreman()
    w = launch("--handlers", "tasks.py", "--no-status", "--id", "py-local")
    assert w.line(r"worker py-local connected to (\S+) ").group(1) == foreman.ws_url
    job = submit(foreman, [{"type": "math.add", "input": {"a": 2, "b": 3}}])
    assert finished(foreman, job)["status"] == "completed"
    assert foreman.api("GET", f"/api/jobs/{job}/results")["results"] == [5]

    # With two recorded and none at http://localhost:8000 it does not guess: it names them, at once.
    other = start_foreman()
    done = subprocess.run([sys.executable, "-m", "crowdcompute", "worker", "--handlers", "tasks.py", "--no-status"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "python")}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "2 foremen are recorded in" in done.stderr and "none at http://localhost:8000: choose one with --foreman <url>" in done.stderr, done.stderr
    assert foreman.url in done.stderr and other.url in done.stderr, done.stderr
