"""`python -m crowdcompute worker`: run a Python worker from the command line, with the Node
CLI's flags and environment (`crowdcompute worker`) where they apply.

    python -m crowdcompute worker --foreman ws://localhost:8000/ws --handlers my_tasks
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
import time
from typing import Any, Sequence

from ._cli_args import DAY, HOUR, parse_count, parse_duration, parse_label, parse_number, parse_signed, within
from ._handlers_module import HandlersModuleError, register_handlers_from
from .credentials import credentials_file, local_foreman, local_foremen
from .errors import CrowdComputeError
from .status_server import DEFAULT_STATUS_PORT, StatusServer
from .worker import MAX_CAPACITY, Worker

_LOG_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
               "error": logging.ERROR, "silent": logging.CRITICAL + 10}

_NO_SANDBOX = ("a Python worker runs shipped Python functions natively, not in a sandbox: "
               "limit them with --code-memory and --code-cpu-seconds (with --allow-code)")

_HANDLERS_HELP = """\
--handlers takes a module name importable from the working directory (my_tasks, pkg.tasks) or a
file (./tasks.py). The module declares its handlers with a dict of task type pattern -> handler,
a register(worker) function (an async def is awaited), or both:

    HANDLERS = {"math.*": add}            # def add(task): return task.get_input("a") + task.get_input("b")

    def register(worker):
        worker.register_handler("images.resize", resize)

A handler is given the Task and returns its result (JSON). An async def runs on the worker's
event loop; a plain def runs in a thread pool of --concurrency threads.

On SIGTERM or Ctrl-C the worker takes no new tasks, lets running ones finish for up to
--drain-timeout, hands the rest back to the foreman and exits 0; a second signal ends it at once.
It exits 1 when it gives up reconnecting (--max-reconnect-attempts) or its token is refused.

Environment: CROWDCOMPUTE_FOREMAN, CROWDCOMPUTE_WORKER_ID and CROWDCOMPUTE_WORKER_TOKEN (or
DISTWORKER_CONTROLLER_URL, DISTWORKER_WORKER_ID, DISTWORKER_WORKER_TOKEN) stand for --foreman,
--id and --token when those are not given. Without --foreman the worker connects to the foreman
started on this machine, with its worker token, as the local credentials file records them: the
one at http://localhost:8000, else the only one recorded.
"""


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crowdcompute", description="CrowdCompute for Python.")
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    w = commands.add_parser(
        "worker", help="start a worker: connect to a foreman and run named tasks with Python handlers",
        description="Start a worker: connect to a foreman and run named tasks with the handlers a Python module declares (--handlers).",
        epilog=_HANDLERS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    w.set_defaults(subparser=w)
    add = w.add_argument
    add("-f", "--foreman", metavar="<urls>", help="the foreman's URL (http://host:8000, whose workers' endpoint is ws://host:8000/ws) or its WebSocket URL; comma-separated for failover (env CROWDCOMPUTE_FOREMAN; default: the local foreman's, from the local credentials file)")
    add("--id", metavar="<workerId>", help="unique worker id (env CROWDCOMPUTE_WORKER_ID; default: hostname-pid-random)")
    add("--token", metavar="<token>", help="worker token, cct_... (env CROWDCOMPUTE_WORKER_TOKEN; default: a local foreman's, from the local credentials file)")
    add("--token-file", metavar="<file>", help="read the worker token from this file")
    add("--ca", metavar="<file>", help="trust this CA certificate (PEM) for a wss:// foreman with a private certificate (instead of the system's CAs)")
    add("-c", "--concurrency", metavar="<n>", type=within(parse_count, 1, MAX_CAPACITY), default=4, help="tasks run at once (default: 4)")
    add("--handlers", metavar="<module>", help="module declaring task handlers: a module name or a .py file (see below)")
    add("--status-port", metavar="<port>", type=within(parse_count, 0, 65535), default=DEFAULT_STATUS_PORT,
        help="status HTTP server port (GET / is a live page in a browser; /stats, /health, /metrics, /metrics/prometheus; "
             "POST /restart with the worker token); when taken, the next free one of the 20 after it; 0 = any (default: 8001)")
    add("--status-host", metavar="<host>", default="127.0.0.1", help="interface of the status server (default: 127.0.0.1)")
    add("--status-host-name", metavar="<name>", action="append", default=[],
        help="a host name the status server answers to (repeatable), besides localhost, IP addresses, this machine's hostname "
             "and --status-host; requests naming another host are refused (403), so that no web page can read it through DNS rebinding")
    add("--no-status", dest="status", action="store_false", help="do not start the status HTTP server")
    add("--heartbeat-interval", metavar="<duration>", type=within(parse_duration, 1, HOUR, "ms"), help="heartbeat period, e.g. 5s (default: the foreman's)")
    add("--reconnect-interval", metavar="<duration>", type=within(parse_duration, 1, HOUR, "ms"), default=1000,
        help="base delay between reconnection attempts, e.g. 1s (default: 1s)")
    add("--max-reconnect-attempts", metavar="<n>", type=within(parse_signed, -1, 1_000_000_000), default=-1,
        help="give up after this many failed reconnects (-1 = never; default: -1)")
    add("--no-auto-restart", dest="auto_restart", action="store_false", help="exit instead of reconnecting when the connection drops")
    add("--drain-timeout", metavar="<duration>", type=within(parse_duration, 0, DAY, "ms"), default=30_000,
        help="on SIGTERM, how long running tasks may take to finish, e.g. 30s (default: 30s)")
    add("--log-level", metavar="<level>", choices=list(_LOG_LEVELS), default="info", help="trace, debug, info, warn, error, silent (default: info)")
    add("--cpus", metavar="<n>", type=within(parse_count, 0, 100_000), help="CPU cores to offer tasks that require them (default: the machine's)")
    add("--memory", metavar="<MiB>", type=within(parse_number, 0, 1e9, "MiB"), help="memory to offer tasks that require it, MiB (default: the machine's)")
    add("--gpus", metavar="<n>", type=within(parse_count, 0, 10_000), help="GPUs to offer tasks that require them")
    add("--label", metavar="<key=value>", type=parse_label, action="append", default=[], help="a label tasks may require (repeatable), e.g. region=eu")
    # The Node worker's flags for shipped JavaScript functions: refused with the reason, not unknown.
    for flag in ("--sandbox-memory", "--sandbox-timeout", "--sandbox-processes"):
        add(flag, metavar="<value>", help=argparse.SUPPRESS)
    add("--allow-code", action="store_true",
        help="run map jobs of Python functions, natively in child processes: NOT sandboxed (a shipped function can do whatever "
             "this worker's user can), for foremen whose submitters are trusted; JavaScript functions are refused")
    add("--code-memory", metavar="<MiB>", type=within(parse_count, 0, 1_000_000_000), default=1024,
        help="address space each map function process may use, MiB (RLIMIT_AS; 0 = no limit; default: 1024)")
    add("--code-cpu-seconds", metavar="<s>", type=within(parse_count, 0, 30 * 24 * 3600), default=0,
        help="CPU seconds a map function may use per chunk (RLIMIT_CPU; 0 = no limit, the task's timeout still applies; default: 0)")
    return parser


def _foreman_ws_urls(value: str, parser: argparse.ArgumentParser) -> str:
    """The WebSocket URL(s) of --foreman, as the Node worker takes them: the foreman's http(s) URL
    without a path means its workers' endpoint, /ws (one with a path may be a proxy's route, so
    only its scheme changes); a URL without a scheme is refused with the corrected one."""
    out = []
    for url in (u.strip() for u in value.split(",")):
        if not url:
            continue
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in ("http", "https", "ws", "wss"):
            bare = url.split("://", 1)[1] if "://" in url else url
            parser.error(f"the foreman URL {url} needs http:// or ws:// in front: --foreman http://{bare}")
        if scheme in ("http", "https"):
            rest = url.split("://", 1)[1]
            host, _, path = rest.partition("/")
            url = f"{'wss' if scheme == 'https' else 'ws'}://{host}/{path if path else 'ws'}"
        out.append(url)
    return ",".join(out)


#: How long a worker started without --foreman waits for a local foreman to record itself.
_LOCAL_FOREMAN_WAIT = 10.0


class LocalForemanError(Exception):
    """No local foreman to connect to when --foreman is not given; its message says what to do."""


def _local_foreman_ws_url(token_given: bool) -> str:
    """The WebSocket URL of this machine's foreman, from the local credentials file, as
    `crowdcompute worker` finds it without --foreman: the one at http://localhost:8000, else the
    only one recorded; when none is recorded yet, one starting is waited for a few seconds. Its worker token is
    in the same file, where the Worker finds it by URL."""
    next_step = "pass --foreman http://<host>:8000 (env CROWDCOMPUTE_FOREMAN) with --token or --token-file"
    deadline = time.monotonic() + _LOCAL_FOREMAN_WAIT
    while True:
        try:
            entry = local_foreman(next_step)
            break
        except LookupError as err:
            # Only an empty file is worth waiting on (a foreman starting beside this worker, as
            # start.sh does); several foremen to choose from stay several.
            if local_foremen() or time.monotonic() >= deadline:
                raise LocalForemanError(str(err)) from None
            time.sleep(0.25)
    url = str(entry["urls"][0])
    if not token_given and not entry.get("workerToken"):
        raise LocalForemanError(f"{credentials_file()} holds no worker token for the foreman at {url}: restart that foreman "
                                "(it leaves one), or give --token-file with one from crowdcompute token create --worker '*'")
    return _foreman_ws_urls(url, argparse.ArgumentParser())


def _worker_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The Worker's arguments from the flags; refusals (parser.error) name the flag."""
    for flag, given in (("--sandbox-memory", args.sandbox_memory), ("--sandbox-timeout", args.sandbox_timeout),
                        ("--sandbox-processes", args.sandbox_processes)):
        if given:
            parser.error(f"{flag}: {_NO_SANDBOX}")
    foreman = args.foreman or _env("CROWDCOMPUTE_FOREMAN", "DISTWORKER_CONTROLLER_URL")
    if not args.handlers and not args.allow_code:
        parser.error("this worker would receive no tasks: give --handlers <module> (a module name or a .py file declaring HANDLERS or register(worker)), "
                     "or --allow-code to run map jobs of Python functions")
    token = args.token
    if token is None and args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as err:
            parser.error(f"--token-file {args.token_file}: cannot read it ({err.strerror or err})")
        if not token:
            parser.error(f"--token-file {args.token_file} is empty")
    if foreman:
        foreman = _foreman_ws_urls(foreman, parser)
    else:
        foreman = _local_foreman_ws_url(token is not None)
    if args.ca:
        if not os.path.isfile(args.ca):
            parser.error(f"--ca {args.ca} does not exist")
        # Read by OpenSSL whenever the WebSocket client makes its TLS context: the worker trusts
        # this CA (as the Node worker's --ca does) for wss:// foremen.
        os.environ["SSL_CERT_FILE"] = os.path.abspath(args.ca)
    resources: dict[str, Any] = {}
    if args.cpus is not None:
        resources["cpuCores"] = args.cpus
    if args.memory is not None:
        resources["memoryMb"] = args.memory
    if args.gpus is not None:
        resources["gpu"] = args.gpus
    if args.label:
        resources["labels"] = dict(args.label)
    return {
        "foreman_url": foreman, "worker_id": args.id, "worker_token": token, "max_concurrent_tasks": args.concurrency,
        "reconnect_interval": args.reconnect_interval / 1000, "max_reconnect_attempts": args.max_reconnect_attempts,
        "heartbeat_interval": None if args.heartbeat_interval is None else args.heartbeat_interval / 1000,
        "auto_restart": args.auto_restart, "drain_timeout": args.drain_timeout / 1000, "resource_info": resources,
        # The command drains on SIGTERM and Ctrl-C itself, then exits 0.
        "handle_signals": False,
        "allow_code": args.allow_code, "code_memory_mb": args.code_memory, "code_cpu_seconds": args.code_cpu_seconds,
    }


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


async def _serve(worker: Worker, args: argparse.Namespace) -> int:
    if args.handlers:
        await register_handlers_from(worker, args.handlers)
    status: StatusServer | None = None
    if args.status:
        status = StatusServer(worker, port=args.status_port, host=args.status_host, host_names=args.status_host_name)
        await status.start()
    loop = asyncio.get_running_loop()
    stopping = False

    def shutdown(name: str) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        _say(f"{name}: worker {worker.worker_id} draining (taking no new tasks)")
        # A second signal ends the process at once, as it would have without this handler.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        worker.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown, sig.name)
    try:
        try:
            await worker.start()
        except CrowdComputeError as err:
            if not stopping:
                _say(f"worker {worker.worker_id} stopped: {err}")
                return 1
        else:
            where = ""
            if status:
                moved = f" ({args.status_port} was taken)" if status.taken_ports and args.status_port != 0 else ""
                where = f", status {status.url.rstrip('/')}{moved}"
            _say(f"worker {worker.worker_id} connected to {worker.foreman_url} (concurrency {worker.max_concurrent_tasks}, "
                 f"{'Python map functions run unsandboxed' if worker.allow_code else 'code refused'}, handlers: {', '.join(worker.patterns) or 'none'}{where})")
        await worker.wait_stopped()
        if not stopping:
            _say(f"worker {worker.worker_id} stopped: {worker.connection_history[-1].get('reason') if worker.connection_history else 'connection closed'}")
            return 1
        return 0
    finally:
        if status:
            await status.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    worker_parser: argparse.ArgumentParser = args.subparser
    try:
        options = _worker_options(args, worker_parser)
    except LocalForemanError as err:
        _say(f"python -m crowdcompute worker: error: {err}")
        return 1
    logging.basicConfig(level=_LOG_LEVELS[args.log_level], stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        worker = Worker(**options)
    except (TypeError, ValueError, CrowdComputeError) as err:
        worker_parser.error(str(err))
    try:
        return asyncio.run(_serve(worker, args))
    except HandlersModuleError as err:
        _say(f"python -m crowdcompute worker: error: {err}")
        return 1
    except OSError as err:
        # The status server's "ports in use" says what to do; others are the system's words.
        _say(f"python -m crowdcompute worker: error: {err.strerror if err.errno == errno.EADDRINUSE and err.strerror else err}")
        return 1
    except KeyboardInterrupt:
        return 130


__all__ = ["main", "build_parser"]
