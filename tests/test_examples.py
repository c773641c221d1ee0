"""The examples run, so the README's extension story cannot rot."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
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


def test_the_hosting_study_specs_fit_their_scenario():
    from vpp import api
    from vpp.sweeps import _check
    from vpp.sweepspec import load_sweep_spec

    for name, points in (("hosting_study", 5 * 4 * 2), ("hosting_study_summer", 5)):
        spec = load_sweep_spec(EXAMPLES / f"{name}.toml")
        _check(spec, api.default_scenario_path())          # paths, scales and strategies against the feeder
        assert len(spec.expand()) == points


def test_the_hosting_study_summary_by_hand():
    """Two seeds at two penetrations: the baseline uses 98 % then 80 % (waste 20 %),
    the strategy 99 % then 90 %, so it recovers half the waste at 2x."""
    study = load("hosting_study")
    rows = [(scale, seed, strategy, use) for scale, b, s in ((1.0, 0.98, 0.99), (2.0, 0.80, 0.90))
            for seed in (1, 2) for strategy, use in (("source_follows_load", b), ("source_load_interaction", s))]
    t = pd.DataFrame(rows, columns=["renewables", "seed", "strategy", "green_local_consumption_rate"])
    t["curtailment_rate"], t["status"] = 0.0, "ok"
    s = study.recovered(study.by_penetration(t)).set_index(["renewables", "strategy"])
    seasons = pd.concat([t.assign(time="winter"), t.assign(time="summer")])           # the mean over seasons
    pd.testing.assert_frame_equal(study.recovered(study.by_penetration(seasons)).set_index(
        ["renewables", "strategy"]), s, check_dtype=False)
    assert s.loc[(2.0, "source_load_interaction"), "recovered_frac"] == pytest.approx(0.5)
    assert s.loc[(1.0, "source_load_interaction"), "recovered_frac"] == pytest.approx(0.5)
    assert study.onset(study.by_penetration(t), 0.05) == {"-": 2.0}


def test_the_hosting_study_names_seasons_and_finds_each_season_s_onset():
    """Winter wastes 10 % from 2x, summer never more than 5 %: the onset is per season."""
    study = load("hosting_study")
    weeks = {"winter": "start=2024-01-15 00:00:00, end=2024-01-22 00:00:00",
             "summer": "start=2024-07-15 00:00:00, end=2024-07-22 00:00:00"}
    use = {("winter", 1.0): 0.99, ("winter", 2.0): 0.90, ("summer", 1.0): 0.99, ("summer", 2.0): 0.97}
    rows = [(weeks[season], scale, seed, strategy, use[(season, scale)] + (0.01 if strategy != "source_follows_load"
                                                                          else 0.0))
            for season, scale in use for seed in (1, 2) for strategy in ("source_follows_load", "virtual_battery")]
    t = pd.DataFrame(rows, columns=["time", "renewables", "seed", "strategy", "green_local_consumption_rate"])
    t["curtailment_rate"], t["co2_kg"], t["status"] = 0.0, 1.0, "ok"
    assert set(study.with_season(t)["season"]) == {"winter (from 15 Jan)", "summer (from 15 Jul)"}
    onset = study.onset_by_season(t, 0.05)
    assert onset[("winter (from 15 Jan)", "-")] == 2.0 and pd.isna(onset[("summer (from 15 Jul)", "-")])
    assert 'id="facet-2"' in study.study_page(t)                    # local use, curtailment, CO2


def test_the_tutorial_notebook_runs_cell_by_cell(tmp_path, monkeypatch):
    """Each code cell of examples/tutorial.ipynb in order, in one namespace, as a kernel
    would run them (the notebook is kept without outputs)."""
    import json
    import tempfile

    nb = json.loads((EXAMPLES / "tutorial.ipynb").read_text(encoding="utf-8"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))       # the notebook saves a run there
    ns: dict = {"__name__": "__main__"}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)
    for i, cell in enumerate(code):
        exec(compile("".join(cell["source"]), f"tutorial.ipynb[{i}]", "exec"), ns)
    assert ns["res"].strategy == "virtual_battery" and ns["res"].baseline is not None
    assert list(ns["cmp"].table.index) == ["source_follows_load", "rule_based", "virtual_battery"]
    assert (ns["folder"] / "meta.json").exists()


def test_the_agent_training_example_runs(capsys):
    pytest.importorskip("gymnasium")
    out = load("train_agent").main(["--generations", "1", "--population", "2", "--elite", "1", "--hours", "6",
                                    "--test-seeds", "8"])
    assert np.isfinite([out["idle"], out["rule_based"], out["trained"], *out["trained_held_out"]]).all()
    assert len(out["best"]) == 1 and len(out["rule_based_held_out"]) == 1
    assert "rule_based" in capsys.readouterr().out
