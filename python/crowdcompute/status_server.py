"""The worker's status server: the same routes and page as the Node worker's
(docs/protocol.md, "The worker's status server").

    GET /                  who the worker is and what it runs, as JSON; to a browser (by its
                           Accept header), a live page fed by /ws
    GET /ws                WebSocket: the page's whole picture at once, then about once a second
    GET /stats             task counts and times
    POST /restart          drop and reopen the foreman connection (Authorization: Bearer <worker token>)
    GET /health            healthy (200) or disconnected (503), with the machine's CPU and memory
    GET /metrics           JSON: counts, times, cores, memory
    GET /metrics/prometheus  Prometheus text
    GET /ui/*              the page's scripts and styles

It has no login, so it answers only requests sent to one of its own host names (localhost, IP
addresses, this machine's hostname, the interface it listens on, and `host_names`): a page on
a rebound DNS name is refused, on HTTP and on /ws. When its port is taken (a second worker on
the same machine), it takes the next free one of the 20 after it; `port` says which.

    server = StatusServer(worker, port=8001)
    await server.start()
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import os
import re
import time
from typing import TYPE_CHECKING, Any, Iterable

from ._status_hosts import host_refusal, prefers_html, same_origin, status_host_names
from ._status_http import HttpServer, LiveFeed, Request, Response, write_response
from ._status_metrics import CONTENT_TYPE as PROMETHEUS_TYPE, WorkerMetrics
from ._status_page import SECURITY_HEADERS, page_shell, ui_file
from ._status_snapshot import HostUsage, Throughput, config, iso, memory_total_bytes, running_tasks, seconds, status_snapshot, task_stats

if TYPE_CHECKING:
    from .task import Task
    from .worker import Worker

#: When the port asked for is taken, how many following ports the status server tries.
STATUS_PORT_FALLBACKS = 20
#: The command-line default port.
DEFAULT_STATUS_PORT = 8001

_UNSET: Any = object()
_BEARER = re.compile(r"^Bearer\s+(\S+)$", re.I)


class StatusServer:
    """A worker's status HTTP server. `restart_token` is the token POST /restart needs as a
    bearer token (default: the worker's own; None turns POST /restart off)."""

    def __init__(self, worker: "Worker", *, port: int = DEFAULT_STATUS_PORT, host: str = "127.0.0.1",
                 restart_token: str | None = _UNSET, host_names: Iterable[str] = (), log: logging.Logger | None = None) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"StatusServer: port (--status-port) must be from 0 to 65535, got {port!r}")
        self.worker = worker
        self.wanted_port = port
        self.host = host
        self.restart_token: str | None = getattr(worker, "_token", None) if restart_token is _UNSET else restart_token
        self.names = status_host_names(host, host_names)
        self.log = log or logging.getLogger("crowdcompute.status")
        #: The port it listens on, once started.
        self.port = 0
        #: Ports found taken before `port` (empty when it got the one asked for).
        self.taken_ports: list[int] = []
        self.metrics = WorkerMetrics(worker)
        self.throughput = Throughput()
        # Its own CPU sampler for the page: /health's measures between health checks, this one between pushes.
        self._health_usage = HostUsage()
        feed_usage = HostUsage()
        self.feed = LiveFeed(lambda: status_snapshot(worker, feed_usage, self.throughput), self.log)
        self._http = HttpServer(self._answer, self._upgrade, self.log)
        self._started = False
        worker.on("task_finished", self._finished)

    def _finished(self, outcome: dict[str, Any], task: "Task") -> None:
        self.throughput.record(str(outcome.get("status")))

    async def start(self) -> None:
        """Listen on the port asked for or, when it is taken, on the first free one of the next
        20 (0: any free port). Raises OSError naming the ports and what to do when all are taken."""
        if self._started:
            return
        wanted = self.wanted_port
        last = 0 if wanted == 0 else min(65535, wanted + STATUS_PORT_FALLBACKS)
        port = wanted
        while True:
            try:
                self.port = await self._http.listen(self.host, port)
                break
            except OSError as err:
                if err.errno != errno.EADDRINUSE:
                    raise
                self.taken_ports.append(port)
                if port >= last:
                    which = f"port {wanted} is" if wanted == last else f"ports {wanted} to {last} are all"
                    raise OSError(errno.EADDRINUSE, f"worker status server: {which} in use on {self.host}; stop what holds them, "
                                  "choose another with --status-port <port> (0 = any free port), or turn the server off with --no-status") from None
                port += 1
        self._started = True
        if self.taken_ports:
            self.log.warning("status server: port %d was taken; listening on %d instead", wanted, self.port)

    async def stop(self) -> None:
        """Stop listening, closing the page's live connections. Safe to call twice."""
        self.feed.close()
        await self._http.close()

    @property
    def url(self) -> str:
        """Where a person on this machine opens the page."""
        h = self.host
        shown = "127.0.0.1" if h in ("0.0.0.0", "::", "127.0.0.1", "localhost", "") else f"[{h}]" if ":" in h else h
        return f"http://{shown}:{self.port}/"

    # ------------------------------------------------------------------ routes

    async def _answer(self, req: Request) -> Response:
        response = self._route(req)
        response.headers.update(SECURITY_HEADERS)
        return response

    def _route(self, req: Request) -> Response:
        refused = host_refusal(req.header("host"), self.names)
        if refused:
            return Response.json(403, {"code": "CC_ERR_FORBIDDEN", "message": refused, "detail": "unknown host name"})
        w = self.worker
        method = "GET" if req.method == "HEAD" else req.method
        path = req.path
        if method == "GET" and path == "/":
            # Browsers get the page, everyone else the JSON they always got; caches must keep both.
            if prefers_html(req.header("accept")):
                return Response(200, page_shell(w.worker_id).encode(), {"Content-Type": "text/html; charset=utf-8", "Vary": "Accept"})
            running = running_tasks(w)
            return Response.json(200, {
                "worker_id": w.worker_id, "status": w.status, "connected": w.connected,
                "current_task": running[0]["task_id"] if running else None,
                "running_tasks": [{k: r[k] for k in ("task_id", "job_id", "type", "attempt", "started_at")} for r in running],
                "foreman_url": w.foreman_url, "config": config(w),
            }, {"Vary": "Accept"})
        if method == "GET" and path == "/stats":
            s = w.stats
            return Response.json(200, {"worker_id": w.worker_id, "stats": {
                **task_stats(w), "active_tasks": len(w.running_tasks), "connects": s.connects,
                "uptime_seconds": seconds(time.time() - s.started_at),
            }})
        if method == "POST" and path == "/restart":
            return self._restart(req)
        if method == "GET" and path == "/health":
            healthy = w.connected
            return Response.json(200 if healthy else 503, {
                "status": "healthy" if healthy else "disconnected", "active_tasks": len(w.running_tasks),
                # Tasks are pushed by the foreman only up to free capacity, so nothing waits locally.
                "queue_size": 0, "cpu_percent": self._health_usage.cpu_percent(), "memory_percent": self._health_usage.memory_percent(),
                "timestamp": iso(time.time()),
            })
        if method == "GET" and path == "/metrics":
            s = w.stats
            finished = s.tasks_completed + s.tasks_failed + s.tasks_cancelled
            total = memory_total_bytes()
            return Response.json(200, {
                "tasks_completed": s.tasks_completed, "tasks_failed": s.tasks_failed, "tasks_queued": 0,
                "average_execution_time": 0 if finished == 0 else seconds(s.total_execution_time / finished),
                "uptime_seconds": seconds(time.time() - s.started_at), "cpu_cores": os.cpu_count(),
                "memory_total_gb": None if total is None else round(total / 1024 ** 3, 2),
            })
        if method == "GET" and path == "/metrics/prometheus":
            return Response(200, self.metrics.text().encode(), {"Content-Type": PROMETHEUS_TYPE})
        if method == "GET" and path == "/favicon.ico":
            return Response(301, b"", {"Location": "/ui/favicon.svg"})
        if method == "GET" and path.startswith("/ui/"):
            found = ui_file(path[len("/ui/"):])
            if found:
                body, content_type, cache = found
                return Response(200, body, {"Content-Type": content_type, "Cache-Control": cache})
        return Response.json(404, {"message": f"Route {req.method}:{path} not found", "error": "Not Found", "statusCode": 404})

    def _restart(self, req: Request) -> Response:
        expected = self.restart_token
        if expected is None:
            return Response.json(403, {"code": "CC_ERR_FORBIDDEN", "detail": "restart is off",
                                       "message": "CC_ERR_FORBIDDEN: POST /restart is off: this worker has no token to check callers against"})
        m = _BEARER.match(req.header("authorization") or "")
        given = m.group(1) if m else ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return Response.json(401, {"code": "CC_ERR_UNAUTHORIZED", "detail": "unauthorized",
                                       "message": "CC_ERR_UNAUTHORIZED: POST /restart needs this worker's own token: Authorization: Bearer <worker token>"})
        self.worker.restart()
        return Response.json(200, {"status": "restarting", "worker_id": self.worker.worker_id})

    async def _upgrade(self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if req.path != "/ws":
            write_response(writer, Response(404, b"", dict(SECURITY_HEADERS)))
            writer.close()
            return
        refused = host_refusal(req.header("host"), self.names)
        if refused:
            write_response(writer, Response.json(403, {"code": "CC_ERR_FORBIDDEN", "message": refused, "detail": "refused"}, dict(SECURITY_HEADERS)))
            writer.close()
            return
        if not same_origin(req.header("origin"), req.header("host")):
            write_response(writer, Response.json(403, {"code": "CC_ERR_FORBIDDEN", "detail": "refused",
                                                       "message": "CC_ERR_FORBIDDEN: only the page this status server serves may open its /ws (the Origin is another site)"}, dict(SECURITY_HEADERS)))
            writer.close()
            return
        await self.feed.serve(req, reader, writer)


__all__ = ["StatusServer", "STATUS_PORT_FALLBACKS", "DEFAULT_STATUS_PORT"]
