"""The status server's rules, without a foreman: whom it answers, what a browser gets, the
Prometheus text, the port it takes. (tests/test_cli.py runs it for real.)"""

from __future__ import annotations

import asyncio
import re
import socket
from typing import Any

import pytest

from crowdcompute import Worker
from crowdcompute._status_hosts import host_refusal, prefers_html, same_origin, status_host_names
from crowdcompute._status_metrics import MAX_TYPE_LABELS, WorkerMetrics
from crowdcompute._status_snapshot import Throughput, iso
from crowdcompute.status_server import StatusServer

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def idle_worker(worker_id: str = "unit") -> Worker:
    return Worker("ws://127.0.0.1:9/ws", worker_id, handle_signals=False)


def test_browsers_get_the_page_and_everyone_else_json() -> None:
    assert prefers_html(BROWSER_ACCEPT)
    assert prefers_html("text/html")
    for accept in (None, "", "*/*", "application/json", "text/html, application/json", "text/*;q=0.5, application/json",
                   "text/html;q=0.4, application/json;q=0.5", "application/json, text/html;q=0.9"):
        assert not prefers_html(accept), accept


def test_it_answers_only_to_its_own_host_names() -> None:
    names = status_host_names("127.0.0.1", ["Worker-7.Lab.Example."])
    for host in ("evil.example:8001", "localhost.evil.example", "127.0.0.1.nip.example:80", "worker-7.lab.example.evil.example", "a b", "x/y"):
        refused = host_refusal(host, names)
        assert refused and f'"Host: {host}"' in refused and "--status-host-name" in refused, host
    for host in (None, "", "127.0.0.1:8001", "localhost", "LOCALHOST:1", "[::1]:8001", socket.gethostname(), "worker-7.lab.example",
                 "192.0.2.7", "status.localhost:8001"):
        assert host_refusal(host, names) is None, host
    # The interface it is bound to, when that is a name; not a wildcard address.
    assert host_refusal("box.internal", status_host_names("box.internal")) is None
    assert "0.0.0.0" not in status_host_names("0.0.0.0")


def test_only_its_own_page_may_open_the_live_feed() -> None:
    assert same_origin(None, "127.0.0.1:8001")
    assert same_origin("http://127.0.0.1:8001", "127.0.0.1:8001")
    assert same_origin("http://LOCALHOST:80", "localhost")
    assert not same_origin("http://evil.example", "127.0.0.1:8001")
    assert not same_origin("http://127.0.0.1:8002", "127.0.0.1:8001")
    assert not same_origin("null", "127.0.0.1:8001")


def test_prometheus_text_is_well_formed_and_caps_the_task_type_labels() -> None:
    w = idle_worker("prom-\"unit\"")
    metrics = WorkerMetrics(w)
    for i in range(MAX_TYPE_LABELS + 7):
        metrics.observe(f"t{i}", 0.02)
    metrics.observe("t0", 2.0)
    text = metrics.text()
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="(?:[^"\\]|\\.)*"(,[a-z_]+="(?:[^"\\]|\\.)*")*\})? -?(\d+(\.\d+)?(e[-+]?\d+)?|\+Inf)$')
    for line in text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or sample.match(line), line
    types = set(re.findall(r'crowdcompute_worker_task_duration_seconds_count\{type="([^"]+)"\}', text))
    assert len(types) == MAX_TYPE_LABELS + 1 and "other" in types
    assert 'crowdcompute_worker_task_duration_seconds_count{type="other"} 7' in text
    assert 'crowdcompute_worker_task_duration_seconds_bucket{le="2.5",type="t0"} 2' in text
    assert 'crowdcompute_worker_task_duration_seconds_bucket{le="1",type="t0"} 1' in text
    assert 'crowdcompute_worker_info{worker_id="prom-\\"unit\\""} 1' in text
    assert "\ncrowdcompute_worker_connected 0\n" in text and "\ncrowdcompute_worker_capacity 4\n" in text


def test_throughput_counts_per_ten_second_slot_over_fifteen_minutes() -> None:
    t = Throughput()
    now = 1_700_000_005.0
    t.record("completed", now - 1000)  # before the window
    t.record("completed", now - 30)
    t.record("failed", now)
    t.record("completed", now)
    s = t.series(now)
    assert len(s["times"]) == 90 and s["times"][-1] == 1_700_000_000 and s["bucket_seconds"] == 10
    assert sum(s["completed"]) == 2 and s["completed"][-1] == 1 and s["failed"][-1] == 1 and s["completed"][-4] == 1


def test_times_are_written_as_javascript_writes_them() -> None:
    assert iso(0) == "1970-01-01T00:00:00.000Z"
    assert iso(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"


async def test_a_taken_port_moves_on_and_all_taken_is_an_error_that_says_what_to_do() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    server = StatusServer(idle_worker(), port=taken)
    try:
        await server.start()
        assert server.taken_ports[0] == taken and server.port != taken
    finally:
        await server.stop()
    # The last port there is: nothing after it to fall back on.
    last: Any = socket.socket()
    try:
        last.bind(("127.0.0.1", 65535))
        last.listen()
    except OSError:
        pass  # held by something else: taken all the same
    try:
        with pytest.raises(OSError, match=r"port 65535 is in use on 127\.0\.0\.1; .*--status-port <port>.*--no-status"):
            await StatusServer(idle_worker(), port=65535).start()
    finally:
        last.close()
        holder.close()
    with pytest.raises(ValueError, match="port"):
        StatusServer(idle_worker(), port=70000)


async def test_restart_is_off_without_a_token() -> None:
    server = StatusServer(idle_worker(), port=0, restart_token=None)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /restart HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        answer = (await reader.read()).decode()
        writer.close()
        assert answer.startswith("HTTP/1.1 403 ") and "POST /restart is off" in answer
    finally:
        await server.stop()
