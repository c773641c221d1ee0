"""Lint is part of the test run: ruff with the project's rules (pyproject.toml),
including the ban on importing the top-level folders bare."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the project's own code (a user's scratch files in the checkout are theirs)
CODE = ("vpp", "assets", "optimizer", "dashboards", "scenarios", "tests", "benchmarks", "examples")


def _ruff() -> str | None:
    return shutil.which("ruff") or (str(Path(sys.executable).with_name("ruff"))
                                    if Path(sys.executable).with_name("ruff").exists() else None)


@pytest.mark.skipif(_ruff() is None, reason="ruff not installed (pip install -e '.[test]')")
def test_ruff_finds_nothing():
    paths = [str(ROOT / d) for d in CODE if (ROOT / d).exists()]
    out = subprocess.run([_ruff(), "check", "--no-cache", *paths], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:]
