"""The package is typed (`py.typed`): a strict type check of it passes, so its annotations are
what users' type checkers will read."""

import subprocess
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]


def test_the_package_passes_a_strict_type_check() -> None:
    pytest.importorskip("mypy", reason="Debian's python3-mypy checks the annotations")
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(PYTHON_DIR / "pyproject.toml"), "crowdcompute"],
                          cwd=PYTHON_DIR, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
