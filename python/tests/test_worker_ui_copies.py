"""The worker page's copies in the Python package match their sources (ui/ and the libraries
in node_modules): a change to the page that was not copied with `npm run copy:worker-ui`
fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "python" / "crowdcompute" / "ui"
MANIFEST = json.loads((UI / "MANIFEST.json").read_text("utf-8"))["files"]
FIX = "run `npm run copy:worker-ui` (node scripts/copy-worker-ui.mjs) and commit the copies"


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_copy_is_identical_to_its_source(name: str) -> None:
    source = ROOT / MANIFEST[name]
    if MANIFEST[name].startswith("node_modules/") and not (ROOT / "node_modules").is_dir():
        pytest.skip("node_modules is not installed (npm ci) to compare the library copies with")
    assert source.is_file(), f"{MANIFEST[name]} no longer exists: update scripts/copy-worker-ui.mjs, then {FIX}"
    assert (UI / name).read_bytes() == source.read_bytes(), f"python/crowdcompute/ui/{name} differs from {MANIFEST[name]}: {FIX}"


def test_nothing_but_the_manifest_is_in_the_copy_folder() -> None:
    present = {p.relative_to(UI).as_posix() for p in UI.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert present - {"MANIFEST.json"} == set(MANIFEST), FIX


def test_every_module_the_page_imports_is_copied() -> None:
    # A new `import ... from './x.js'` in the page, or a new library, must come along.
    from crowdcompute._status_page import IMPORT_MAP

    import_map = {k: v.removeprefix("/ui/") for k, v in json.loads(IMPORT_MAP)["imports"].items()}
    todo, seen = ["worker.js"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        source = (ROOT / "ui" / name).read_text("utf-8")
        for spec in re.findall(r"""^\s*import\s[^'"]*['"]([^'"]+)['"]""", source, re.M):
            if spec.startswith("./"):
                todo.append(spec[2:])
            else:
                assert spec in import_map, f"ui/{name} imports {spec!r}, which the Python worker's page does not serve: add it to scripts/copy-worker-ui.mjs and to the import map in crowdcompute/_status_page.py"
                assert import_map[spec] in MANIFEST
        assert name in MANIFEST, f"ui/{name} is part of the worker page but is not copied: add it to scripts/copy-worker-ui.mjs, then {FIX}"
