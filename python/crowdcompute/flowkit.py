"""FlowKit's worker API on CrowdCompute: batch handlers (`Handler`, `Batch`, `BatchResult`,
`FinalizationResult`, `RunContext`), a `WorkerConfig` that loads from JSON, and a `Worker`
built from a config and a handler per role.

    from crowdcompute.flowkit import Worker, WorkerConfig, Handler, Batch, BatchResult

    class Squares(Handler):
        async def iter_batches(self, input_data):
            for start in range(0, input_data["n"], 100):
                yield Batch(batch_uid=f"b{start}", payload={"start": start})

        async def process_batch(self, batch, ctx):
            await ctx.artifacts_writer.upsert_partial(batch.batch_uid, {"start": batch.payload["start"]})
            await ctx.save_checkpoint({"next": batch.payload["start"] + 100})
            return BatchResult(success=True, metrics={"items": 100})

    worker = Worker(cfg=WorkerConfig.load("worker.json"), handlers={"squares": Squares()})
    worker.run()

Checkpoints, batches done and artifacts are kept by the foreman in its database, not by the
worker: a task whose worker dies resumes on any worker from its last checkpoint, skipping the
batches already recorded. There is no Kafka and no MongoDB: the worker talks to the foreman over
its WebSocket, and the `db` FlowKit passed to its worker is not needed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ._adapters import DEFAULT_POLL_MS
from ._batch import FINALIZE_BATCH_UID, ArtifactsWriter, Batch, BatchFailedError, BatchResult, FinalizationResult, Handler, RunContext, is_batch_handler
from .worker import Worker as _Worker

log = logging.getLogger("crowdcompute.flowkit")

#: Prefixes of FlowKit settings for services CrowdCompute does not use (Kafka, MongoDB): a
#: config file shared with FlowKit may keep them; they are ignored with a warning.
_FOREIGN_PREFIXES = ("kafka_", "mongo_", "topic_")


@dataclass
class WorkerConfig:
    """A FlowKit worker's settings.

    Used here: `roles` (the task types, or patterns such as `etl.*`, the worker takes; empty =
    every key of its `handlers`), `worker_id` (None: `CROWDCOMPUTE_WORKER_ID`, else generated),
    `worker_version` (sent in the hello, shown in `GET /api/workers`), `hb_interval_sec` (the
    heartbeat interval; None: what the foreman suggests, which fits its lease),
    `pull_poll_ms_default` (how often a graph node's input adapter looks for new upstream
    artifacts when the graph does not say), `foreman_url` (None: `CROWDCOMPUTE_FOREMAN`, else
    ws://localhost:8000/ws), `worker_token` (None: `CROWDCOMPUTE_WORKER_TOKEN`, else the local
    credentials file), `max_concurrent_tasks` (1, as FlowKit runs one task at a time per worker;
    raise it only for handlers that keep no per-run state on `self`), `reconnect_interval_sec`,
    `drain_timeout_sec`.

    Accepted for FlowKit compatibility, with no effect: `lease_ttl_sec` (leases are the
    foreman's setting, `crowdcompute foreman --lease-ttl`), `announce_interval_sec` (the worker
    announces itself in its hello and every heartbeat), `dedup_cache_size` and `dedup_ttl_ms`
    (the foreman records each batch and artifact once, whatever is sent twice),
    `db_cancel_poll_ms` (cancellations are pushed over the worker's connection at once), and
    `kafka_bootstrap` (there is no Kafka).
    """

    roles: list[str] = field(default_factory=list)
    worker_id: str | None = None
    worker_version: str | None = None
    lease_ttl_sec: float = 60
    hb_interval_sec: float | None = None
    announce_interval_sec: float = 60
    dedup_cache_size: int = 10_000
    dedup_ttl_ms: int = 3_600_000
    pull_poll_ms_default: float = DEFAULT_POLL_MS
    db_cancel_poll_ms: float = 500
    foreman_url: str | None = None
    worker_token: str | None = None
    max_concurrent_tasks: int = 1
    reconnect_interval_sec: float = 1.0
    drain_timeout_sec: float = 30.0
    kafka_bootstrap: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.roles, str) or not isinstance(self.roles, (list, tuple)) or not all(isinstance(r, str) and r for r in self.roles):
            raise TypeError(f"WorkerConfig: roles must be a list of task types or patterns (non-empty strings), got {self.roles!r}")
        self.roles = list(self.roles)
        for name, low, high in (("lease_ttl_sec", 0.001, 86_400), ("announce_interval_sec", 0.001, 86_400), ("dedup_cache_size", 0, 1e9),
                                ("dedup_ttl_ms", 0, 1e12), ("pull_poll_ms_default", 1, 60_000), ("db_cancel_poll_ms", 1, 3_600_000),
                                ("max_concurrent_tasks", 1, 10_000), ("reconnect_interval_sec", 0.001, 3600), ("drain_timeout_sec", 0, 86_400)):
            _check_number(name, getattr(self, name), low, high)
        if self.hb_interval_sec is not None:
            _check_number("hb_interval_sec", self.hb_interval_sec, 0.001, 3600)
        for name in ("worker_id", "worker_version", "foreman_url", "worker_token", "kafka_bootstrap"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"WorkerConfig: {name} must be a string, got {value!r}")

    @classmethod
    def load(cls, path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> "WorkerConfig":
        """The settings in a JSON file (an object of the fields above), with `overrides` on top.

        A key FlowKit uses for Kafka or MongoDB (`kafka_*`, `mongo_*`, `topic_*`) is ignored
        with a warning, so one file can serve both; any other unknown key is an error naming
        it, since it is most likely a misspelt setting.
        """
        p = Path(path)
        try:
            data = json.loads(p.read_text("utf-8"))
        except OSError as err:
            raise FileNotFoundError(f"WorkerConfig.load: cannot read {p}: {err.strerror or err}") from err
        except json.JSONDecodeError as err:
            raise ValueError(f"WorkerConfig.load: {p} is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"WorkerConfig.load: {p} must hold a JSON object of settings, got {type(data).__name__}")
        data.update(overrides or {})
        known = {f.name for f in dataclasses.fields(cls)}
        foreign = sorted(k for k in data if k not in known and k.startswith(_FOREIGN_PREFIXES))
        unknown = sorted(k for k in data if k not in known and k not in foreign)
        if unknown:
            raise ValueError(f"WorkerConfig.load: {p}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if foreign:
            log.warning("WorkerConfig.load: %s: ignoring %s (CrowdCompute uses neither Kafka nor MongoDB)", p, ", ".join(foreign))
        return cls(**{k: v for k, v in data.items() if k in known})


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise TypeError(f"WorkerConfig: {name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"WorkerConfig: {name} must be between {low:g} and {high:g}, got {value:g}")


class Worker(_Worker):
    """A worker built from a `WorkerConfig` and a handler per role (`{"processor": MyHandler()}`;
    a handler is a batch handler, or a plain function as `register_handler` takes).

    It is CrowdCompute's `Worker` otherwise: `await start()`, `await stop()`, `run()`,
    `register_handler`, `on(...)`, `stats`. The worker takes its `roles`; a handler whose key
    is not one of them is not served by this worker (several workers may share a dict of
    handlers, each with its own roles). `db` is accepted for FlowKit compatibility and unused.
    """

    def __init__(self, cfg: WorkerConfig | None = None, handlers: Mapping[str, Any] | None = None, db: Any = None, **options: Any) -> None:
        cfg = cfg if cfg is not None else WorkerConfig()
        if not isinstance(cfg, WorkerConfig):
            raise TypeError(f"Worker(cfg=...): cfg must be a WorkerConfig, got {type(cfg).__name__}")
        handlers = dict(handlers or {})
        roles = cfg.roles or list(handlers)
        missing = [r for r in roles if r not in handlers]
        if missing:
            raise ValueError(f"Worker: role(s) {', '.join(missing)} have no handler (handlers: {', '.join(handlers) or 'none'})")
        for role in roles:
            h = handlers[role]
            if isinstance(h, type):
                raise TypeError(f"Worker: the handler for role {role!r} is the class {h.__name__}; pass an instance ({h.__name__}())")
        super().__init__(
            foreman_url=cfg.foreman_url, worker_id=cfg.worker_id, worker_token=cfg.worker_token,
            heartbeat_interval=cfg.hb_interval_sec, reconnect_interval=cfg.reconnect_interval_sec,
            max_concurrent_tasks=cfg.max_concurrent_tasks, drain_timeout=cfg.drain_timeout_sec, version=cfg.worker_version,
            **options,
        )
        self.cfg = cfg
        self.db = db
        #: How often an input adapter polls when the graph does not say (read by the batch runtime).
        self.pull_poll_ms_default = cfg.pull_poll_ms_default
        for role in roles:
            self.register_handler(role, handlers[role])


__all__ = [
    "Worker", "WorkerConfig", "Handler", "Batch", "BatchResult", "FinalizationResult", "RunContext",
    "ArtifactsWriter", "BatchFailedError", "FINALIZE_BATCH_UID", "is_batch_handler",
]
