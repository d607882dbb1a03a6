"""Traces through a Python worker: the worker makes no spans (no OpenTelemetry package here), but
it sends each attempt's trace context back with its outcome, so the foreman's `result commit`
span joins the job's trace under its `dispatch` span, as with the Node worker. The foreman
exports its spans by OTLP/HTTP (JSON) to a collector in this process."""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from crowdcompute import Task, Worker
from support import finished, results_of, submit, wait_for


def _hex(value: str) -> str:
    """OTLP/JSON ids are hex; the protobuf JSON mapping would give base64. Either way, hex."""
    if re.fullmatch(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}", value or ""):
        return value.lower()
    return base64.b64decode(value).hex() if value else ""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An OTLP/HTTP collector on 127.0.0.1 that keeps every span it is sent (name, ids, service)."""
    spans: list[dict[str, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self._body()
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            for rs in json.loads(body).get("resourceSpans", []):
                attributes = {a["key"]: a["value"].get("stringValue") for a in rs.get("resource", {}).get("attributes", [])}
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        spans.append({"service": str(attributes.get("service.name")), "name": s["name"], "trace": _hex(s["traceId"]),
                                      "span": _hex(s["spanId"]), "parent": _hex(s.get("parentSpanId", ""))})
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def _body(self) -> bytes:
            if self.headers.get("content-length") is not None:
                return self.rfile.read(int(self.headers["content-length"]))
            # Node's exporter may send its body chunked: size line, chunk, CRLF, until a 0 size.
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", spans
    finally:
        server.shutdown()


async def test_the_result_commit_of_a_python_workers_attempt_joins_the_jobs_trace(start_foreman: Any, collector: Any,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, spans = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    foreman = start_foreman("--heartbeat-interval", "500ms")
    trace_id = "5b8efff798038103d269b633813fc60c"

    async def show(task: Task) -> Any:
        return task.trace_context

    worker = Worker(foreman.ws_url, "py-traced-commit", foreman.worker_token)
    worker.register_handler("trace.py", show)
    await worker.start()
    try:
        job = await submit(foreman, [{"type": "trace.py"}], trace_context={"traceparent": f"00-{trace_id}-eee19b7ec3c1b174-01"})
        assert (await finished(foreman, job))["status"] == "completed"
        (seen,) = await results_of(foreman, job)

        def span(name: str) -> dict[str, str] | None:
            found = [s for s in spans if s["trace"] == trace_id and s["service"] == "crowdcompute-foreman" and s["name"] == name]
            assert len(found) <= 1, found
            return found[0] if found else None

        commit = await wait_for(lambda: span("result commit"), 30, message="the foreman's result commit span of the Python worker's outcome")
        dispatch = span("dispatch")
        assert dispatch is not None
        # The handler ran under the dispatch span, and the outcome brought that context back.
        assert seen["traceparent"].split("-")[1:3] == [trace_id, dispatch["span"]]
        assert commit["parent"] == dispatch["span"]
    finally:
        await worker.stop()
