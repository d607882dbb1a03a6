"""The programs under examples/ run as the README shows them, against a real foreman."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_sdk_example_prints_what_the_readme_says(foreman: Any) -> None:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent), "CROWDCOMPUTE_FOREMAN": foreman.ws_url}
    done = subprocess.run([sys.executable, str(EXAMPLES / "sdk_example.py")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == ["math.add {'result': 3}", "many [0, 2, 4, 6, 8]", "squares.sum 328350"]
