"""The examples run, so the README's extension story cannot rot."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL

import vpp
from vpp.dispatch import Decision
from vpp.optimizer import Strategy

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_strategy_example_runs_by_name():
    load("custom_strategy")
    res = vpp.run(SMALL, strategy="cheapest_hours")
    assert res.strategy == "cheapest_hours"
    assert res.kpis.loc["battery_cycles", "value"] > 0.1
    assert res.kpis.loc["n_fallbacks", "value"] == 0


class WrongShape(Strategy):
    name = "wrong_shape"

    def decide(self, problem):
        return Decision(setpoints={"battery": np.zeros((3, 4))})


def test_malformed_setpoints_name_the_strategy_and_fleet():
    with pytest.raises(ValueError, match=r"strategy 'wrong_shape': setpoints for fleet 'battery' have shape \(3, 4\)"):
        vpp.run(SMALL, strategy=WrongShape())


def test_scaling_study_runs(capsys, monkeypatch):
    study = load("scaling_study")
    monkeypatch.setattr("sys.argv", ["scaling_study.py", str(SMALL), "--factors", "0.5", "--days", "1"])
    study.main()
    out = capsys.readouterr().out
    assert "optimality_gap_frac" in out and "source_load_interaction" in out
