"""A Python function made into the source a map job ships: exactly one top-level `def`, with
no decorators, that uses nothing from outside itself but builtins and what it imports.

The worker runs the source alone, in a fresh namespace, so anything the function reads from
its module (a helper, a constant, an imported module) would be missing there: such names are
refused here, at submission, by name, rather than failing on every argument on the workers.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import json
import symtable
import textwrap
from typing import Any, Callable, Iterable, Literal, Mapping

_BUILTINS = frozenset(dir(builtins))


class FunctionSourceError(TypeError):
    """The function cannot be shipped as it is; the message says why and what to change."""


def function_source(fn: Callable[..., Any]) -> tuple[str, str]:
    """The function's name and the source to ship: its `def`, dedented, decorators removed.

    Raises FunctionSourceError for what cannot run alone on a worker: lambdas (write a `def`),
    methods, builtins, closures, async functions, functions whose source is not available, and
    functions that use names from outside themselves."""
    if inspect.ismethod(fn):
        raise FunctionSourceError(f"{fn.__qualname__} is a bound method: ship a plain function defined with def (it is called with one argument)")
    if not inspect.isfunction(fn):
        raise FunctionSourceError(f"map needs a function defined with def, or JavaScript source text; got {type(fn).__name__}")
    if fn.__name__ == "<lambda>":
        raise FunctionSourceError("a lambda cannot be shipped: define the function with def (e.g. def square(x): return x * x) and pass that")
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise FunctionSourceError(f"{fn.__name__} is an async def: ship a plain def (it is called once per argument and returns its result)")
    try:
        inspect.signature(fn).bind(None)
    except TypeError:
        raise FunctionSourceError(f"{fn.__name__}{inspect.signature(fn)} cannot be called with one argument, as map calls it") from None
    try:
        raw = inspect.getsource(fn)
    except (OSError, TypeError) as err:
        raise FunctionSourceError(f"the source of {fn.__name__} is not available ({err}): define it in a .py file, or pass its source text with language='python'") from None
    source = strip_decorators(textwrap.dedent(raw), fn.__name__)
    closure = fn.__code__.co_freevars
    if closure:
        # Variables of an enclosing function: not in the shipped source, so missing on the worker.
        raise FunctionSourceError(f"{fn.__name__} uses names from outside itself: {', '.join(closure)} (variables of the function it is defined in); "
                                  "define it at top level and import what it needs inside it")
    check_free_names(source)
    return fn.__name__, source


def strip_decorators(source: str, name: str | None = None) -> str:
    """The source of one `def` from its `def` line on (decorators dropped)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise FunctionSourceError(f"the source of {name or 'the function'} does not parse on its own ({err.msg}, line {err.lineno})") from None
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if len(tree.body) != 1 or len(defs) != 1:
        raise FunctionSourceError(f"the source of {name or 'the function'} must be exactly one def (got {len(tree.body)} top-level statements)")
    node = defs[0]
    lines = source.splitlines(keepends=True)
    return "".join(lines[node.lineno - 1:node.end_lineno])


def check_free_names(source: str) -> str:
    """Check the source is one `def` using only builtins and names it imports itself; its name.

    Raises FunctionSourceError naming every other name it uses (its own name is allowed: a
    function may call itself)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise FunctionSourceError(f"the function does not parse: {err.msg} (line {err.lineno})") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        kinds = ", ".join(type(n).__name__ for n in tree.body) or "nothing"
        raise FunctionSourceError(f"the source must be exactly one top-level def (got {kinds})")
    node = tree.body[0]
    if node.decorator_list:
        raise FunctionSourceError(f"{node.name} has decorators: ship the plain def")
    table = symtable.symtable(source, "<map function>", "exec")
    outside: list[str] = []

    def visit(t: symtable.SymbolTable) -> None:
        for sym in t.get_symbols():
            name = sym.get_name()
            if t.get_type() == "module":
                # The def binds its own name; defaults and annotations are read at module level.
                if sym.is_referenced() and name not in _BUILTINS and name != node.name:
                    outside.append(name)
            elif sym.is_global() and name not in _BUILTINS and name != node.name:
                outside.append(name)
        for child in t.get_children():
            visit(child)

    visit(table)
    names = list(dict.fromkeys(outside))
    if names:
        raise FunctionSourceError(f"{node.name} uses names from outside itself: {', '.join(names)}; "
                                  "the worker runs the function alone, so import modules inside it and pass values as its argument")
    return node.name


#: The languages a map job's function may be written in.
Language = Literal["javascript", "python"]


def map_code(code: str | Callable[..., Any], language: str | None) -> tuple[Language, str, str | None]:
    """What a map job ships: `(language, source, function name)`, from a Python function or source text.

    Text is JavaScript unless `language` says python; a function is Python."""
    if language not in (None, "javascript", "python"):
        raise ValueError(f"language must be 'javascript' or 'python', got {language!r}")
    if isinstance(code, str):
        if language == "python":
            return "python", code, check_free_names(code)
        return "javascript", code, None
    if language == "javascript":
        raise FunctionSourceError("language='javascript' takes the function's source text; a Python function is shipped as Python")
    name, source = function_source(code)
    return "python", source, name


def map_args(args: Iterable[Any]) -> list[Any]:
    """The arguments as a list of JSON values (any iterable: a range, a generator)."""
    if isinstance(args, (str, bytes, Mapping)):
        raise TypeError(f"map arguments must be a list (or another iterable) of JSON values, got {type(args).__name__}")
    values = list(args)
    try:
        json.dumps(values, allow_nan=False)
    except (TypeError, ValueError):
        for i, v in enumerate(values):
            try:
                json.dumps(v, allow_nan=False)
            except (TypeError, ValueError) as err:
                raise TypeError(f"map argument {i} is not a JSON value ({type(v).__name__}: {err})") from None
        raise
    return values
