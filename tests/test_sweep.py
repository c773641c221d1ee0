"""Sweeps: the spec's points by hand, bad specs in one line, and a tiny sweep on a
Dask LocalCluster that resumes, records failures and agrees with vpp.compare."""

import json
import math
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL

import vpp
from vpp.cli import main
from vpp.dashboards import paired_differences, seed_summary, sweep_report
from vpp.errors import ScenarioError
from vpp.kpi import KPI_META
from vpp.scenario import read_scenario_dict, scenario_from_dict
from vpp.sweeps import RUNS, RunKey, _compare_task, _Task
from vpp.sweepspec import SweepSpec, apply_point, load_sweep_spec

ONE_DAY = "2024-07-23T00:00:00"


def spec_file(tmp_path, text: str, name="study.toml"):
    path = tmp_path / name
    path.write_text(f'scenario = "{SMALL.as_posix()}"\n' + text, encoding="utf-8")
    return path


# -- the spec ---------------------------------------------------------------------------------------

def test_the_product_design_runs_every_combination(tmp_path):
    spec = load_sweep_spec(spec_file(tmp_path, 'replications = 3\n[parameters]\n"fleets.pv.count" = [1, 2]\n'
                                               '[scales.storage]\nfields = ["fleets.battery.count"]\n'
                                               'values = [0.5, 1.0, 2.0]\n'))
    points = spec.expand()
    assert len(points) == 6 and points[0] == {"fleets.pv.count": 1, "storage": 0.5}
    assert spec.seeds_for(7) == [7, 8, 9]
    assert spec.varied == ["fleets.pv.count", "storage"]


def test_a_table_value_merges_into_the_scenarios_table():
    base = read_scenario_dict(SMALL)
    spec = SweepSpec(parameters={"time": [{"end": "x"}]})
    data = apply_point(base, spec, {"time": {"start": 1, "end": 2}}, seed=1)
    assert data["time"] == base["time"] | {"start": 1, "end": 2}


def test_a_point_sets_paths_scales_counts_to_integers_and_sets_the_seed():
    base = read_scenario_dict(SMALL)               # battery count 2, wind count 2
    spec = SweepSpec(scales={"s": {"fields": ["fleets.battery.count", "fleets.wind.count"], "values": [1.26]}},
                     parameters={"grid.ramp_limit_kw_per_h": [500.0], "fleets.offices.params.cooling_setpoint_c":
                                 [25.0]})
    data = apply_point(base, spec, {"s": 1.26, "grid.ramp_limit_kw_per_h": 500.0,
                                    "fleets.offices.params.cooling_setpoint_c": 25.0}, seed=11)
    fleets = {f["name"]: f for f in data["fleets"]}
    assert fleets["battery"]["count"] == 3 and fleets["wind"]["count"] == 3          # round(2 * 1.26)
    assert isinstance(fleets["battery"]["count"], int)
    assert data["grid"]["ramp_limit_kw_per_h"] == 500.0 and data["seed"] == 11
    assert fleets["offices"]["params"]["cooling_setpoint_c"] == 25.0
    assert {f["name"]: f for f in base["fleets"]}["battery"]["count"] == 2          # the base is untouched
    scenario_from_dict(data, "<point>", SMALL.parent)                               # and the point is valid


@pytest.mark.parametrize("text, field, words", [
    ('[parameters]\n"fleets.nope.count" = [1]\n', 'parameters."fleets.nope.count"', "no entry named 'nope'"),
    ('[parameters]\n"fleets.pv.count" = []\n', 'parameters."fleets.pv.count"', "has no values"),
    ('[scales.r]\nfields = ["fleets.pv.params.tilt_deg"]\nvalues = [2]\n', "scales.r.fields[0]",
     "not set in the scenario"),
    ('[scales.r]\nfields = ["fleets.pv.count"]\nvalues = [-1]\n', "scales.r.values[0]", "negative"),
    ("seeds = [1]\nreplications = 2\n", "replications", "not both"),
    ('design = "points"\n[[points]]\n"seed" = 1\n[[points]]\n"fleets.pv.count" = 3\n', "points[1]",
     "every point sets the same paths"),
    ('design = "grid"\n', "design", "product|points"),
    ('strategies = ["nope"]\n', "strategies[0]", "unknown strategy 'nope'"),
    ("colour = 3\n", "colour", "unknown field"),
])
def test_a_bad_spec_is_one_line_naming_the_file_and_field(tmp_path, capsys, text, field, words):
    path = spec_file(tmp_path, text)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {path}: {field}: ") and words in err, err
    assert not out.exists()                                                     # nothing written


def test_a_missing_spec_file_is_one_line(tmp_path):
    with pytest.raises(ScenarioError, match="no such file"):
        load_sweep_spec(tmp_path / "none.toml")


def test_the_confidence_interval_is_students_t_over_seeds():
    t = pd.DataFrame({"strategy": "a", "x": 1, "status": "ok", "k": [1.0, 2.0, 3.0]})
    s = seed_summary(t, ["strategy", "x"], "k").iloc[0]
    assert s["mean"] == 2.0 and s["n"] == 3
    assert s["half_width"] == pytest.approx(4.302652729749464 / math.sqrt(3))    # t(0.975, 2) from tables
    one = seed_summary(t.iloc[:1], ["strategy", "x"], "k").iloc[0]
    assert math.isnan(one["half_width"])
    two = seed_summary(t.iloc[:2], ["strategy", "x"], "k").iloc[0]
    assert math.isnan(two["half_width"])                  # t(0.975, 1) = 12.7: no interval, the seeds as dots


def _sweep_table(seeds, co2_kg=(2000.0, 3000.0, 4000.0), unserved=1e-15):
    rows = []
    for x in (1, 2):
        for k, seed in enumerate(seeds):
            rows.append({"strategy": "source_follows_load", "x": x, "seed": seed, "status": "ok",
                         "green_local_consumption_rate": 0.5 + 0.01 * k, "co2_kg": co2_kg[k],
                         "unserved_energy_kwh": unserved})
    return pd.DataFrame(rows)


def test_the_sweep_figure_draws_seeds_as_dots_below_three_and_intervals_from_three():
    from vpp.dashboards import sweep_figure

    few = sweep_figure(_sweep_table([1, 2]), "x", ["x"])
    assert any(t.name.endswith("(each seed)") for t in few.data)
    assert all(not any(t.error_y.array) for t in few.data if t.error_y.array is not None)
    many = sweep_figure(_sweep_table([1, 2, 3]), "x", ["x"])
    assert not any(t.name.endswith("(each seed)") for t in many.data)
    co2 = next(t for t in many.data if t.yaxis == "y2")
    assert list(co2.y) == pytest.approx([3.0, 3.0])                          # kg -> t
    assert co2.error_y.array[0] == pytest.approx(4.302652729749464 * 1.0 / math.sqrt(3))


def test_the_sweep_figure_leaves_out_a_kpi_that_is_noise_in_every_run():
    from vpp.dashboards import sweep_figure

    fig = sweep_figure(_sweep_table([1, 2, 3]), "x", ["x"])
    assert "zero in every run: unserved energy" in fig.layout.title.text
    assert len(fig.layout.annotations) == 2                                   # two KPI panels, not three
    fig = sweep_figure(_sweep_table([1, 2, 3], unserved=0.5), "x", ["x"])
    assert "zero in every run" not in fig.layout.title.text and len(fig.layout.annotations) == 3


def test_differences_pair_each_run_with_the_baseline_on_the_same_draws():
    t = pd.DataFrame({"x": [1, 1, 1, 1], "seed": [1, 1, 2, 2], "status": "ok",
                      "strategy": ["source_follows_load", "s", "source_follows_load", "s"],
                      "co2_kg": [10.0, 7.0, 20.0, 19.0]})
    d = paired_differences(t, ["x"]).sort_values("seed")
    assert list(d["co2_kg"]) == [-3.0, -1.0] and set(d["strategy"]) == {"s"}


def test_a_task_that_fails_records_every_run_with_one_line(tmp_path):
    data = read_scenario_dict(SMALL) | {"seed": "seven"}
    keys = [RunKey({}, 1, s, f"h{i}") for i, s in enumerate(["source_follows_load", "rule_based"])]
    out = _compare_task(_Task(data, "<bad>", SMALL.parent, keys), tmp_path, keep_results=False)
    assert [status for _, status, _ in out] == ["failed", "failed"]
    rec = json.loads((tmp_path / "h1" / "run.json").read_text())
    assert rec["status"] == "failed" and rec["error"].startswith("<bad>: seed: ") and "\n" not in rec["error"]


def test_a_run_keeps_its_full_results_on_request(tmp_path):
    data = read_scenario_dict(SMALL)
    data["time"]["end"] = pd.Timestamp(ONE_DAY).to_pydatetime()
    keys = [RunKey({}, 7, "source_follows_load", "base")]
    assert _compare_task(_Task(data, "<one day>", SMALL.parent, keys), tmp_path, keep_results=True) == [
        ("base", "ok", None)]
    run = tmp_path / "base"
    assert (run / "scenario.toml").read_text().startswith("# Resolved scenario")
    res = vpp.Results.load(run / "results")
    rec = json.loads((run / "run.json").read_text())
    assert rec["kpis"]["co2_kg"] == pytest.approx(res.kpis.loc["co2_kg", "value"])


# -- a tiny sweep on a local cluster ----------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c.scheduler_address


TINY = ('strategies = ["source_follows_load", "rule_based"]\nseeds = [1, 2]\n'
        f'[parameters]\n"fleets.pv.count" = [10, 40, -5]\n"time.end" = [{ONE_DAY}]\n')


@pytest.fixture(scope="module")
def swept(tmp_path_factory, cluster):
    tmp = tmp_path_factory.mktemp("sweep")
    path = spec_file(tmp, TINY)
    return path, vpp.sweep(path, tmp / "out", scheduler=cluster)


def test_every_run_is_a_row_with_every_kpi(swept):
    _, res = swept
    t = res.table
    assert len(t) == 3 * 2 * 2 and res.computed == 12 and res.skipped == 0
    assert set(KPI_META) <= set(t.columns)
    assert (t.loc[t["fleets.pv.count"] != -5, "status"] == "ok").all()
    pd.testing.assert_frame_equal(pd.read_parquet(res.folder / "sweep.parquet"), t, check_dtype=False)


def test_a_point_the_scenario_refuses_is_recorded_and_the_others_run(swept):
    _, res = swept
    bad = res.table[res.table["fleets.pv.count"] == -5]
    assert len(bad) == 4 and (bad["status"] == "failed").all()
    assert bad["error"].str.contains("fleets[0].count", regex=False).all()
    assert len(res.failed) == 4


def test_a_run_equals_the_same_point_compared_in_process(swept):
    _, res = swept
    d = read_scenario_dict(SMALL)
    d["time"]["end"] = pd.Timestamp(ONE_DAY).to_pydatetime()
    d["seed"] = 2
    next(f for f in d["fleets"] if f["name"] == "pv")["count"] = 40
    comp = vpp.compare(scenario_from_dict(d, "<here>", SMALL.parent), ("source_follows_load", "rule_based"))
    row = res.table[(res.table["fleets.pv.count"] == 40) & (res.table["seed"] == 2)].set_index("strategy")
    for s in ("source_follows_load", "rule_based"):
        for kpi in ("green_local_consumption_rate", "total_cost_cny", "co2_kg"):
            assert row.loc[s, kpi] == pytest.approx(comp.table.loc[s, kpi], rel=1e-12)


def test_seeds_and_parameters_change_the_runs(swept):
    _, res = swept
    ok = res.table[res.table["status"] == "ok"].set_index(["fleets.pv.count", "seed", "strategy"])
    green = ok["green_local_consumption_rate"]
    assert green.loc[(10, 1, "rule_based")] != green.loc[(10, 2, "rule_based")]
    assert green.loc[(10, 1, "rule_based")] != green.loc[(40, 1, "rule_based")]


def test_a_sweep_started_again_skips_what_is_done_and_cleans_half_written_runs(swept, cluster):
    path, first = swept
    again = vpp.sweep(path, first.folder, scheduler=cluster)
    assert again.computed == 0 and again.skipped == 12
    lost = first.table.loc[(first.table["status"] == "ok") & (first.table["strategy"] == "rule_based"), "hash"].iloc[0]
    shutil.rmtree(first.folder / RUNS / lost)
    (first.folder / RUNS / f".{lost}.0badc0de.partial").mkdir()                  # as a killed run leaves it
    third = vpp.sweep(path, first.folder, scheduler=cluster)
    assert third.computed == 1 and third.skipped == 11
    assert not list((first.folder / RUNS).glob(".*.partial"))
    cols = [c for c in first.table.columns if c not in ("elapsed_s", "solve_time_s")]      # timings differ
    pd.testing.assert_frame_equal(third.table[cols], first.table[cols])


def test_the_page_plots_each_parameter_and_lists_the_failed_runs(swept):
    _, res = swept
    page = (res.folder / "sweep.html").read_text(encoding="utf-8")
    assert page == sweep_report(res.table, res.varied)
    assert 'id="sweep-0"' in page and 'id="sweep-1"' not in page          # time.end has one value: no plot
    assert "Held at one value: <code>time.end</code>" in page
    assert "4 run(s) failed" in page


def test_a_dry_run_counts_what_is_done_and_writes_nothing(swept, tmp_path, capsys):
    path, res = swept
    fresh = tmp_path / "fresh"
    assert main(["sweep", str(path), "--out", str(fresh), "--dry-run"]) == 0
    assert "12 runs (6 points x seeds, 2 strategies with the baseline): 0 done, 12 to run" in capsys.readouterr().out
    assert not fresh.exists()
    again = vpp.sweep(path, res.folder, dry_run=True)
    assert again.skipped == 12 and (again.table["status"] != "planned").all()


def test_an_interrupted_sweep_says_it_can_resume(tmp_path, capsys, monkeypatch):
    import vpp.sweeps

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(vpp.sweeps, "_execute", interrupted)
    assert main(["sweep", str(spec_file(tmp_path, TINY)), "--out", str(tmp_path / "out"), "--quiet"]) == 130
    assert "the same command resumes the sweep" in capsys.readouterr().err


def test_the_cli_runs_a_sweep_and_says_what_it_did(swept, cluster, capsys):
    path, res = swept
    assert main(["sweep", str(path), "--out", str(res.folder), "--scheduler", cluster, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "12 runs: 0 run now, 12 already done, 4 failed" in out


def test_without_a_terminal_progress_is_a_log_line_a_minute_with_the_time_left():
    import io

    from vpp.progresslog import LogLines

    now = [0.0]
    out = io.StringIO()
    log = LogLines("sweep", 10, "runs", True, every_s=60.0, clock=lambda: now[0], stream=out)
    failed = 0
    for done, (t, f) in enumerate(((30, 0), (50, 1), (95, 0), (100, 0), (150, 0), (170, 0), (200, 0), (260, 0),
                                   (280, 0), (290, 1)), start=1):
        now[0], failed = t, failed + f
        log.update(done, f"{failed} failed")
    assert out.getvalue().splitlines() == [
        "sweep: 1/10 runs, 0 failed, 30 s so far, about 4 min left",      # the first: 30 s a run, 9 left
        "sweep: 3/10 runs, 1 failed, 2 min so far, about 4 min left",     # a minute later: 95/3 s a run, 7 left
        "sweep: 6/10 runs, 1 failed, 3 min so far, about 2 min left",     # 60 s after 95: 170/6 * 4 = 113 s
        "sweep: 8/10 runs, 1 failed, 4 min so far, about 1 min left",     # 260/8 * 2 = 65 s
        "sweep: 10/10 runs, 2 failed, 5 min so far"]                      # the last, whatever the minute
    quiet = io.StringIO()
    LogLines("sweep", 1, "runs", False, stream=quiet).update(1)
    assert quiet.getvalue() == ""


def test_small_multiples_put_each_season_in_its_panel_with_one_colour_per_strategy():
    from vpp.dashboards import facet_figure, facet_report

    rows = [(season, x, seed, strategy, {"winter": 0.9, "summer": 0.5}[season] + 0.01 * x + 0.02 * seed
             + (0.1 if strategy == "virtual_battery" else 0.0))
            for season in ("winter", "summer") for x in (1, 2) for seed in (1, 2)
            for strategy in ("source_follows_load", "virtual_battery")]
    t = pd.DataFrame(rows, columns=["season", "renewables", "seed", "strategy", "green_local_consumption_rate"])
    t["status"] = "ok"
    fig = facet_figure(t, "renewables", "green_local_consumption_rate", cols="season")
    assert len(fig.data) == 2 * 2                                          # panels x strategies
    by = {(tr.xaxis, tr.name): tr for tr in fig.data}
    summer_vb = by[("x2", "virtual_battery")]                              # summer is the second panel
    # by hand: 0.5 + 0.01 x + mean(0.02, 0.04) + 0.1, in %
    np.testing.assert_allclose(summer_vb.y, [100 * (0.5 + 0.01 * x + 0.03 + 0.1) for x in (1, 2)])
    assert [tr.showlegend for tr in fig.data].count(True) == 2
    assert len({tr.line.color for tr in fig.data if tr.name == "virtual_battery"}) == 1
    page = facet_report(t, "renewables", ["green_local_consumption_rate"], cols="season", title="t")
    assert 'id="facet-0"' in page and 'id="facet-diff-0"' in page          # levels, then paired differences


def test_a_second_sweep_on_a_folder_being_written_is_refused_before_running(tmp_path, capsys, monkeypatch):
    import os
    import subprocess

    import vpp.sweeps
    from vpp.outdir import lock_path

    def must_not_run(*a, **kw):
        raise AssertionError("ran although the folder is claimed")

    monkeypatch.setattr(vpp.sweeps, "_execute", must_not_run)
    out = tmp_path / "out"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(out).write_text(f"{sleeper.pid} {os.uname().nodename}\n")
        assert main(["sweep", str(spec_file(tmp_path, TINY)), "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"process {sleeper.pid}" in err and len(err.strip().splitlines()) == 1
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_killed_sweeps_claim_is_taken_over_and_an_interrupted_one_released(tmp_path, capsys, monkeypatch):
    import os
    import subprocess

    import vpp.sweeps
    from vpp.outdir import lock_path

    out = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(out).write_text(f"{dead.pid} {os.uname().nodename}\n")
    monkeypatch.setattr(vpp.sweeps, "_execute", lambda *a, **kw: None)
    assert main(["sweep", str(spec_file(tmp_path, TINY)), "--out", str(out), "--quiet"]) == 0
    assert not lock_path(out).exists()

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(vpp.sweeps, "_execute", interrupted)
    assert main(["sweep", str(spec_file(tmp_path, TINY)), "--out", str(out), "--quiet"]) == 130
    assert not lock_path(out).exists()
