"""The package as users get it: installed offline into a virtual environment with Debian's
build tools, built as a wheel, its version the npm package's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
ROOT = PYTHON_DIR.parent
OFFLINE = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def source_copy(tmp: Path) -> Path:
    """The package's source as a checkout holds it, without build leftovers."""
    dest = tmp / "python"
    shutil.copytree(PYTHON_DIR, dest, ignore=shutil.ignore_patterns("tests", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
    return dest


def test_the_version_is_the_npm_packages() -> None:
    npm = json.loads((ROOT / "package.json").read_text())["version"]
    from crowdcompute import __version__

    assert __version__ == npm
    assert re.search(rf'^version = "{re.escape(npm)}"$', (PYTHON_DIR / "pyproject.toml").read_text(), re.M)


def test_installs_offline_into_a_venv_with_debians_packages(tmp_path: Path) -> None:
    src = source_copy(tmp_path)
    venv = tmp_path / "v"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation", "--no-deps", str(src)],
                          capture_output=True, text=True, timeout=300, env=OFFLINE)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    probe = ("import crowdcompute, pathlib; p = pathlib.Path(crowdcompute.__file__).parent; "
             "print(crowdcompute.__version__, p, (p / 'py.typed').exists(), (p / 'protocol.schema.json').exists(), (p / 'ui' / 'worker.js').exists())")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=OFFLINE)
    assert out.returncode == 0, out.stderr
    version, where, typed, schema, ui = out.stdout.split()
    assert version == json.loads((ROOT / "package.json").read_text())["version"]
    assert where.startswith(str(venv)), where
    assert (typed, schema, ui) == ("True", "True", "True")
    cli = subprocess.run([str(venv / "bin" / "python"), "-m", "crowdcompute", "worker", "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert cli.returncode == 0 and "--handlers" in cli.stdout


def test_builds_a_wheel_without_a_registry(tmp_path: Path) -> None:
    pytest.importorskip("build", reason="Debian's python3-build builds the wheel")
    src = source_copy(tmp_path)
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300, env=OFFLINE)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [wheel] = list((tmp_path / "dist").glob("crowdcompute-*-py3-none-any.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("crowdcompute/__init__.py", "crowdcompute/py.typed", "crowdcompute/worker.py", "crowdcompute/client.py",
                     "crowdcompute/flowkit.py", "crowdcompute/protocol.schema.json", "crowdcompute/wire_types.py", "crowdcompute/ui/worker.js"):
        assert required in names, f"{required} is missing from {wheel.name}"
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert re.search(r"^Requires-Dist: websockets ?\(?>=10\.4\)?$", text, re.M), text
    assert "Requires-Python: >=3.11" in text
