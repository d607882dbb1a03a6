"""Input adapters: a graph node reads what its upstream nodes write, as they write it.

`pull.from_artifacts` hands each upstream artifact to the node as one batch, in the order the
artifacts were recorded. `pull.from_artifacts.rechunk:size` flattens the artifacts' lists of
items and hands them on `size` at a time. Both poll every `pollMs` while the upstream nodes
run, and end once every upstream node has ended and everything it wrote has been read.

Batch uids derive from what is read (the upstream node and batch uid, or the position of a
chunk's first item), and the artifacts' order is fixed once recorded, so every attempt of the
node sees the same batches under the same uids: a resumed attempt skips the ones it did.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping

from .errors import InvalidRequestError, NonRetryableError

FROM_ARTIFACTS = "pull.from_artifacts"
RECHUNK = "pull.from_artifacts.rechunk:size"
#: Artifacts asked for at a time.
PAGE = 100
#: How often to look for new artifacts while upstream nodes run, unless the node says.
DEFAULT_POLL_MS = 300

#: Asks the foreman for artifacts: `{fromNodes, afterSeq, limit}` -> `{artifacts, upstreamDone}`.
Pull = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]]]


class UnreadableInputError(InvalidRequestError, NonRetryableError):
    """An upstream artifact the adapter cannot read: reading it again would not help."""


async def _artifacts_of(args: Mapping[str, Any], pull: Pull, check: Callable[[], None], default_poll_ms: float) -> AsyncIterator[Mapping[str, Any]]:
    """Every upstream artifact in recorded order, waiting for more while the upstream nodes run."""
    after = 0
    poll_ms = args.get("pollMs") or default_poll_ms
    while True:
        check()
        page = await pull({"fromNodes": list(args["fromNodes"]), "afterSeq": after, "limit": PAGE})
        artifacts = page.get("artifacts") or []
        for a in artifacts:
            after = int(a["seq"])
            yield a
        # upstreamDone means the upstream nodes had ended before this page was read, and the
        # page held everything after the cursor: nothing more will come.
        if page.get("upstreamDone"):
            return
        if not artifacts:
            await asyncio.sleep(poll_ms / 1000)


async def adapter_batches(adapter: str, args: Mapping[str, Any], pull: Pull, check: Callable[[], None], where: str,
                          default_poll_ms: float = DEFAULT_POLL_MS) -> AsyncIterator[tuple[str, Any]]:
    """The `(batch_uid, payload)` pairs an input adapter gives a node's `process_batch`.
    `check` raises when the run was asked to stop; `where` names the node in errors."""
    if adapter == FROM_ARTIFACTS:
        async for a in _artifacts_of(args, pull, check, default_poll_ms):
            yield f"{a['nodeId']}/{a['batchUid']}", a.get("data")
        return
    if adapter != RECHUNK:
        raise UnreadableInputError("CC_ERR_BAD_MESSAGE", f"{where}: unknown input adapter {adapter!r} (known: {FROM_ARTIFACTS}, {RECHUNK})")
    size = args.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise UnreadableInputError("CC_ERR_BAD_MESSAGE", f"{where}: {RECHUNK} needs inputArgs.size, a positive whole number of items, got {size!r}")
    key = args.get("metaListKey")
    items: list[Any] = []
    start = 0
    async for a in _artifacts_of(args, pull, check, default_poll_ms):
        data = a.get("data")
        found = (data.get(key) if isinstance(data, dict) else None) if key else data
        if not isinstance(found, list):
            what = f'under "{key}"' if key else "(it is not an array)"
            raise UnreadableInputError("CC_ERR_BAD_MESSAGE", f'{where}: the artifact of batch "{a["batchUid"]}" of node "{a["nodeId"]}" has no list {what} to rechunk')
        items.extend(found)
        while len(items) >= size:
            chunk, items = items[:size], items[size:]
            yield f"rechunk/{start}", ({key: chunk} if key else chunk)
            start += size
    if items:
        yield f"rechunk/{start}", ({key: items} if key else items)
