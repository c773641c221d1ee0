"""The parts stay in their rooms (docs/ARCHITECTURE.md): who may import whom, checked on the source."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

VOCABULARY = ["vpp/errors.py", "vpp/rng.py", "vpp/timeline.py", "vpp/params.py", "vpp/flex.py", "vpp/arrivals.py",
              "vpp/dispatch.py", "vpp/scenario.py", "vpp/sweepspec.py", "vpp/results.py", "vpp/kpi.py",
              "vpp/exogenous"]
ORCHESTRATION = ("vpp.engine", "vpp.api", "vpp.sweeps", "vpp.cli", "vpp.recorder", "vpp.queueing", "vpp.sim",
                 "vpp.testing", "vpp.estimate")

RULES = {
    # part: forbidden import prefixes
    "assets": ("pyomo", "simpy", "highspy", "plotly", "vpp.optimizer", "vpp.dashboards") + ORCHESTRATION,
    "optimizer": ("simpy", "plotly", "vpp.assets", "vpp.dashboards") + ORCHESTRATION,
    "dashboards": ("pyomo", "simpy", "highspy", "vpp.assets", "vpp.optimizer") + ORCHESTRATION,
}
VOCAB_FORBIDDEN = ("pyomo", "simpy", "highspy", "plotly", "vpp.assets", "vpp.optimizer", "vpp.dashboards") \
    + ORCHESTRATION


def modules(part: str):
    p = ROOT / part
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


def _violations(paths, forbidden):
    return [(p.relative_to(ROOT).as_posix(), m) for p in paths for m in imports(p)
            if any(m == f or m.startswith(f + ".") for f in forbidden)]


@pytest.mark.parametrize("part", sorted(RULES))
def test_part_imports_only_what_it_may_know(part):
    assert _violations(modules(part), RULES[part]) == []


def test_vocabulary_imports_none_of_the_parts():
    paths = [m for v in VOCABULARY for m in modules(v)]
    assert _violations(paths, VOCAB_FORBIDDEN) == []


def test_nobody_imports_the_top_level_folders_bare():
    bare = ("assets", "optimizer", "dashboards", "scenarios")
    paths = [p for p in ROOT.rglob("*.py") if ".venv" not in p.parts and "build" not in p.parts]
    assert _violations(paths, bare) == []


def test_every_module_declares_its_public_api():
    missing = []
    for part in ("vpp", "assets", "optimizer", "dashboards"):
        for p in modules(part):
            if p.name == "__main__.py":
                continue
            tree = ast.parse(p.read_text(encoding="utf-8"))
            names = {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                     for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
            if "__all__" not in names:
                missing.append(p.relative_to(ROOT).as_posix())
    assert missing == []


def test_no_tests_package_marker():
    assert not (ROOT / "tests" / "__init__.py").exists()


def test_the_conformance_suites_import_neither_pytest_nor_hypothesis():
    """vpp.testing is for users too, who may not have the test extras."""
    code = "import sys, vpp.testing; print(sorted({'pytest', 'hypothesis'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
