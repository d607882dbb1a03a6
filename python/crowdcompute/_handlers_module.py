"""Load the task handlers a user's module declares (`--handlers`), by module name
(`my_tasks`, `pkg.tasks`, importable from the working directory) or by file (`tasks.py`).
A module declares them as the Node CLI's handler modules do, in Python's spelling:

    HANDLERS = {"math.*": add, "etl.load": load}     # pattern -> handler (or `handlers`)

    def register(worker):                            # or a function given the Worker
        worker.register_handler("math.*", add)       # (an `async def register` is awaited)

or both.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .worker import Worker


class HandlersModuleError(Exception):
    """A handlers module that is missing, fails to load, or declares no handlers."""


def _why(err: BaseException) -> str:
    text = str(err).split("\n")[0]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or os.sep in spec


def load_handlers_module(spec: str) -> ModuleType:
    """Import `spec`; errors name it and what went wrong."""
    if _is_path(spec):
        file = Path(spec).resolve()
        if not file.is_file():
            shown = f" (looked for {file})" if str(file) != spec else ""
            raise HandlersModuleError(f"handlers module {spec} does not exist{shown}")
        name = file.stem if file.stem.isidentifier() else "crowdcompute_handlers"
        # Its own folder first, so that it can import the modules beside it.
        sys.path.insert(0, str(file.parent))
        module_spec = importlib.util.spec_from_file_location(name, file)
        if module_spec is None or module_spec.loader is None:
            raise HandlersModuleError(f"handlers module {spec} cannot be loaded as Python source")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            sys.modules.pop(name, None)
            raise HandlersModuleError(f"handlers module {spec} failed to load: {_why(err)}") from err
        return module
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as err:
        if err.name and (spec == err.name or spec.startswith(err.name + ".")):
            raise HandlersModuleError(f"handlers module {spec} does not exist: no module {err.name!r} importable from {os.getcwd()} "
                                      "(give a module name on the Python path, or a file such as tasks.py)") from err
        raise HandlersModuleError(f"handlers module {spec} failed to load: {_why(err)}") from err
    except Exception as err:
        raise HandlersModuleError(f"handlers module {spec} failed to load: {_why(err)}") from err


async def register_handlers_from(worker: "Worker", spec: str) -> None:
    """Register on `worker` the handlers module `spec` declares."""
    module = load_handlers_module(spec)
    table = getattr(module, "HANDLERS", None)
    if table is None:
        table = getattr(module, "handlers", None)
    register = getattr(module, "register", None)
    if table is None and not callable(register):
        raise HandlersModuleError(f'{spec} must define HANDLERS = {{"pattern.*": handler, ...}} or def register(worker): ...')
    if callable(register):
        try:
            done = register(worker)
            if inspect.isawaitable(done):
                await done
        except Exception as err:
            raise HandlersModuleError(f"{spec}: register(worker) raised {_why(err)}") from err
    if table is not None:
        if not isinstance(table, dict):
            raise HandlersModuleError(f"{spec}: HANDLERS must be a dict of pattern -> handler, not {type(table).__name__}")
        for pattern, handler in table.items():
            if not isinstance(pattern, str) or not pattern:
                raise HandlersModuleError(f"{spec}: HANDLERS has a key {pattern!r}; keys are task type patterns such as 'math.*'")
            if not callable(handler):
                raise HandlersModuleError(f"{spec}: HANDLERS[{pattern!r}] is a {type(handler).__name__}, not a function")
            try:
                worker.register_handler(pattern, handler)
            except (TypeError, ValueError) as err:
                raise HandlersModuleError(f"{spec}: HANDLERS[{pattern!r}]: {err}") from err
    if not worker.patterns:
        raise HandlersModuleError(f"{spec} registered no handlers")
