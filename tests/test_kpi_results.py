"""KPIs on a hand-made two-step run, and the saved run folder round trip."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL

import vpp
from vpp.kpi import compute_kpis, relative_kpis
from vpp.results import Results

TOL = 1e-9


def hand_results(settlement="vpp", start="2024-07-22") -> Results:
    """Two one-hour steps, one node each for PV (a) and load + battery (b).

    step 0: PV available 100, produces 80 (20 curtailed); load -60; battery -10 (charging)
            node a exports 80, node b imports 70 -> VPP net export 10
    step 1: PV available 50, produces 50; load -90; battery +20 (discharging)
            node a exports 50, node b imports 70 -> VPP net import 20
    """
    idx = pd.date_range(start, periods=2, freq="h", tz="Asia/Shanghai")
    cols = pd.MultiIndex.from_tuples([("pv", "p_kw"), ("pv", "p_available_kw"), ("load", "p_kw"),
                                      ("bat", "p_kw"), ("bat", "e_kwh")], names=["fleet", "quantity"])
    fleets = pd.DataFrame([[80, 100, -60, -10, 59.5], [50, 50, -90, 20, 38.4]], index=idx, columns=cols, dtype=float)
    quantities = ["grid_import_kw", "grid_export_kw", "import_violation_kw", "export_violation_kw", "curtailed_kw"]
    ncols = pd.MultiIndex.from_product([["a", "b"], quantities], names=["node", "quantity"])
    nodes = pd.DataFrame([[0, 80, 0, 0, 20, 70, 0, 0, 0, 0], [0, 50, 0, 0, 0, 70, 0, 0, 0, 0]], index=idx,
                         columns=ncols, dtype=float)
    exo = pd.DataFrame({"price_import_cny_per_kwh": [1.0, 2.0], "price_export_cny_per_kwh": [0.4, 0.4],
                        "co2_kg_per_kwh": [0.5, 0.6]}, index=idx)
    info = pd.DataFrame({"type": ["pv", "building", "battery"], "node": ["a", "b", "b"],
                         "role": ["source", "load", "storage"], "green": [True, False, False],
                         "curtailable": [True, False, False], "count": [1, 1, 1],
                         "capacity_kwh": [np.nan, np.nan, 100.0], "e_init_kwh": [np.nan, np.nan, 50.0]},
                        index=pd.Index(["pv", "load", "bat"], name="fleet"))
    node_info = pd.DataFrame({"import_limit_kw": [100.0, 100.0], "export_limit_kw": [100.0, 100.0]},
                             index=pd.Index(["a", "b"], name="node"))
    dispatch = pd.DataFrame({"status": ["optimal"], "fallback": [False], "build_time_s": [0.5], "solve_time_s": [0.25],
                             "objective_cny": [1.0], "n_variables": [1], "n_constraints": [1]},
                            index=pd.Index(idx[:1], name="time"))
    events = pd.DataFrame(columns=["kind", "detail"], index=pd.DatetimeIndex([], tz="Asia/Shanghai", name="time"))
    return Results("hand", "test", "", fleets, nodes, exo, dispatch, events, info, node_info,
                   settlement=settlement, demand_charge_cny_per_kw_month=3.0 * 744 / 2)   # 3 CNY/kW for 2 h of July


def test_kpis_by_hand_with_vpp_settlement():
    k = compute_kpis(hand_results("vpp"))
    # green available 150, generated 130, curtailed 20
    assert k["green_available_kwh"] == pytest.approx(150, abs=TOL)
    assert k["curtailment_rate"] == pytest.approx(20 / 150, abs=TOL)
    # VPP net export 10 in step 0 (green exported 10), net import 20 in step 1
    assert k["green_local_kwh"] == pytest.approx(120, abs=TOL)
    assert k["green_local_consumption_rate"] == pytest.approx(120 / 150, abs=TOL)
    assert k["self_sufficiency"] == pytest.approx(120 / 150, abs=TOL)    # load 60 + 90
    assert k["grid_import_kwh"] == pytest.approx(20, abs=TOL)
    assert k["grid_export_kwh"] == pytest.approx(10, abs=TOL)
    assert k["energy_cost_cny"] == pytest.approx(20 * 2.0, abs=TOL)
    assert k["export_revenue_cny"] == pytest.approx(10 * 0.4, abs=TOL)
    assert k["demand_charge_cny"] == pytest.approx(3.0 * 20, abs=TOL)
    assert k["total_cost_cny"] == pytest.approx(40 - 4 + 60, abs=TOL)
    assert k["co2_kg"] == pytest.approx(20 * 0.6, abs=TOL)
    assert k["peak_import_kw"] == pytest.approx(20, abs=TOL)
    assert k["peak_valley_difference_kw"] == pytest.approx(30, abs=TOL)
    assert k["ramp_max_kw_per_h"] == pytest.approx(30, abs=TOL)
    assert k["battery_cycles"] == pytest.approx(20 / 100, abs=TOL)
    assert k["storage_energy_change_kwh"] == pytest.approx(38.4 - 50, abs=TOL)
    assert k["solve_time_s"] == pytest.approx(0.75, abs=TOL)


def test_ramp_limit_violation_by_hand():
    """Net import -10 then +20 kW over one-hour steps: a 30 kW/h ramp.  Under a 12 kW/h
    limit 18 kW of it is beyond the limit (18 kWh over the hour, 18 kW/h at most);
    without a limit nothing is reported."""
    r = hand_results("vpp")
    assert compute_kpis(r)["ramp_limit_violation_kwh"] == 0.0
    r.ramp_limit_kw_per_h = 12.0
    k = compute_kpis(r)
    assert k["ramp_limit_violation_kwh"] == pytest.approx(18.0, abs=TOL)
    assert k["ramp_limit_violation_max_kw_per_h"] == pytest.approx(18.0, abs=TOL)
    r.ramp_limit_kw_per_h = 30.0
    assert compute_kpis(r)["ramp_limit_violation_kwh"] == pytest.approx(0.0, abs=TOL)


def test_a_ramp_limit_that_cannot_be_held_is_reported():
    """A 1 kW/h ramp limit on the small district cannot be held: the run reports the
    violation as a KPI and the optimizer's ramp slack per window."""
    from conftest import scenario

    res = vpp.run(scenario({"time": {"end": "2024-07-23T00:00:00"}, "grid": {"ramp_limit_kw_per_h": 1.0}}),
                  strategy="source_load_interaction")
    assert res.kpis.loc["ramp_limit_violation_max_kw_per_h", "value"] > 1_000.0
    assert (res.dispatch["slack_ramp_kwh"] > 0).all()


def test_the_demand_charge_is_billed_on_each_calendar_months_peak():
    """The two hours straddle 31 July and 1 August: under VPP settlement July's
    peak import is 0 and August's 20 kW, each billed for 1 h of its 744 h; the
    node settlement bills node b's 70 kW in each month."""
    rate = 3.0 * 744 / 2
    assert compute_kpis(hand_results("vpp", "2024-07-31 23:00"))["demand_charge_cny"] == pytest.approx(
        rate * 20 / 744, abs=TOL)
    assert compute_kpis(hand_results("node", "2024-07-31 23:00"))["demand_charge_cny"] == pytest.approx(
        rate * (70 + 70) / 744, abs=TOL)


def test_cost_series_by_hand_sums_to_the_cost_kpis():
    """Step 0: net export 10 kW (revenue 4), no import; step 1: import 20 kW at 2 CNY/kWh
    (40 CNY, 12 kg) raises the month's billed peak from 0 to 20 kW: the demand
    charge (3 CNY/kW over the 2 h) accrues there, 60 CNY."""
    from vpp.kpi import cost_series

    r = hand_results("vpp")
    c = cost_series(r)
    np.testing.assert_allclose(c["energy_cny"], [0.0, 40.0], atol=TOL)
    np.testing.assert_allclose(c["export_revenue_cny"], [4.0, 0.0], atol=TOL)
    np.testing.assert_allclose(c["demand_charge_cny"], [0.0, 60.0], atol=TOL)
    np.testing.assert_allclose(c["total_cny"], [-4.0, 100.0], atol=TOL)
    np.testing.assert_allclose(c["co2_kg"], [0.0, 12.0], atol=TOL)
    k = compute_kpis(r)
    assert c["total_cny"].sum() == pytest.approx(k["total_cost_cny"], abs=TOL)
    # node settlement: node b imports 70 kW in step 0 (its peak so far), the same in step 1
    n = cost_series(hand_results("node"))
    np.testing.assert_allclose(n["demand_charge_cny"], [3.0 * 70, 0.0], atol=TOL)
    # across a month boundary each month's peak accrues in its own month, pro rata
    m = cost_series(hand_results("node", "2024-07-31 23:00"))
    rate = 3.0 * 744 / 2
    np.testing.assert_allclose(m["demand_charge_cny"], [rate * 70 / 744, rate * 70 / 744], atol=TOL)


def test_demand_response_money_lands_at_each_calls_last_step():
    from vpp.kpi import cost_series

    r = hand_results("vpp")
    end = r.index[1] + pd.Timedelta(hours=1)
    r.tables["dr_events"] = pd.DataFrame({"event": ["a", "b"], "end": [r.index[1], end],
                                          "payment_cny": [5.0, 7.0], "penalty_cny": [1.0, 0.0]})
    c = cost_series(r)
    np.testing.assert_allclose(c["dr_net_cny"], [1.0 - 5.0, -7.0], atol=TOL)


def test_calendar_months_cover_each_month_by_its_own_length():
    from vpp.timeline import calendar_months

    idx = pd.date_range("2024-02-15", "2024-04-01", freq="h", tz="Asia/Shanghai", inclusive="left")
    month, share = calendar_months(idx, 1.0)
    assert list(share) == pytest.approx([15 / 29, 1.0])                        # 2024 is a leap year
    assert month[0] == 0 and month[-1] == 1


def test_the_dispatcher_sees_a_new_months_peak_start_at_zero():
    """At 00:00 on 1 August the window's peak so far is 0 and its demand charge
    August's share; the window before sees July's peak and July's share."""
    from conftest import scenario

    from vpp.optimizer import STRATEGIES
    from vpp.testing import RecordingStrategy

    sc = scenario({"time": {"start": "2024-07-31T00:00:00", "end": "2024-08-01T12:00:00"}})
    rec = RecordingStrategy(STRATEGIES["source_follows_load"]())
    vpp.run(sc, strategy=rec)
    by_start = {p.grid.k0: p for p, _ in rec.calls}
    july, august = by_start[max(k for k in by_start if k < 96)], by_start[96]
    monthly = sc.tariff.demand_charge_cny_per_kw_month
    assert july.peak_import_so_far_kw.max() > 0 and august.peak_import_so_far_kw.max() == 0.0
    assert july.demand_charge_cny_per_kw == pytest.approx(monthly * 24 / 744)
    assert august.demand_charge_cny_per_kw == pytest.approx(monthly * 12 / 744)


def test_kpis_by_hand_with_node_settlement():
    k = compute_kpis(hand_results("node"))
    # each node billed alone: imports 70 + 70, exports 80 + 50
    assert k["grid_import_kwh"] == pytest.approx(140, abs=TOL)
    assert k["grid_export_kwh"] == pytest.approx(130, abs=TOL)
    assert k["energy_cost_cny"] == pytest.approx(70 * 1 + 70 * 2, abs=TOL)
    assert k["green_local_kwh"] == pytest.approx(0, abs=TOL)        # all green leaves through node a
    assert k["demand_charge_cny"] == pytest.approx(3.0 * 70, abs=TOL)


def test_relative_kpis():
    a, b = compute_kpis(hand_results("vpp")), compute_kpis(hand_results("node"))
    rel = relative_kpis(a, b)
    assert rel.loc["grid_import_kwh", "delta"] == pytest.approx(20 - 140)
    assert rel.loc["grid_import_kwh", "delta_pct"] == pytest.approx(100 * (20 - 140) / 140)
    assert rel.loc["grid_import_kwh", "unit"] == "kWh"


def test_saved_run_loads_back_identically(tmp_path):
    res = vpp.run(SMALL, strategy="source_load_interaction")
    res.save(tmp_path / "run", csv=True)
    back = Results.load(tmp_path / "run")
    for name in ("fleets", "nodes", "exogenous", "dispatch"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(res, name), check_freq=False)
    pd.testing.assert_frame_equal(back.tables["ev_sessions"], res.tables["ev_sessions"])
    pd.testing.assert_series_equal(compute_kpis(back), compute_kpis(res))
    assert back.kpis.loc["green_local_consumption_rate", "value"] == pytest.approx(
        res.kpis.loc["green_local_consumption_rate", "value"])


def test_process_service_kpis_by_hand():
    r = hand_results()
    r.tables["industry_batches"] = pd.DataFrame({"due": [True, True, False], "unserved_kwh": [0.0, 12.5, np.nan]})
    r.tables["datacentre_jobs"] = pd.DataFrame({"on_time": pd.array([True, False, True, None], dtype="boolean")})
    k = compute_kpis(r)
    assert k["process_energy_not_served_kwh"] == pytest.approx(12.5)
    assert k["jobs_on_time_frac"] == pytest.approx(2 / 3)


def test_comparison_columns_by_hand():
    from vpp.api import _comparison_columns

    t = pd.DataFrame({"total_cost_cny": [100.0, 60.0, 80.0, 50.0],
                      "ev_energy_not_served_kwh": [1.0, 0.0, 2.0, 0.0],
                      "process_energy_not_served_kwh": [0.5, 0.0, 0.0, 0.0],
                      "load_unserved_kwh": [0.25, 0.0, 0.0, 0.0]},
                     index=["source_follows_load", "source_load_interaction", "rule_based",
                            "source_load_interaction:perfect"])
    c = _comparison_columns(t)
    assert c.loc["rule_based", "optimality_gap_frac"] == pytest.approx((80 - 60) / 60)
    assert c.loc["rule_based", "flexibility_captured_frac"] == pytest.approx((100 - 80) / (100 - 60))
    assert c.loc["source_follows_load", "unserved_energy_kwh"] == pytest.approx(1.75)
    assert c.loc["source_load_interaction", "value_of_perfect_information_cny"] == pytest.approx(10.0)
    assert np.isnan(c.loc["rule_based", "value_of_perfect_information_cny"])


def test_results_repr_is_one_short_line_with_the_headline_by_hand():
    """repr(results) was 24 kB of DataFrames; now one line: 120/150 = 80 % used locally,
    40 - 4 + 60 = 96 CNY."""
    r = hand_results()
    text = repr(r)
    assert "\n" not in text and len(text) < 400
    assert "hand / test" in text and "2 steps of 60 min" in text
    assert "green_local_consumption_rate 80.0 %" in text and "total_cost_cny 96 CNY" in text
    page = r._repr_html_()
    assert page.count("<tr>") == 1 + 8 and "80.0 %" in page        # header and the headline KPIs


def test_comparison_and_sweep_summaries():
    from types import SimpleNamespace

    from vpp.summary import comparison_repr, format_kpi, sweep_html, sweep_repr
    from vpp.sweeps import SweepResult

    table = pd.DataFrame({"green_local_consumption_rate": [0.9, 0.95], "total_cost_cny": [2.5e7, 2.4e7]},
                         index=pd.Index(["source_follows_load", "virtual_battery"], name="strategy"))
    cmp = SimpleNamespace(table=table, results={"source_follows_load": hand_results()})
    assert comparison_repr(cmp).startswith("<Comparison of 2 strategies (source_follows_load, virtual_battery) on hand")
    sweep = SweepResult(table.reset_index().assign(seed=[1, 2], status=["ok", "failed"]), Path("out"), ["seed"],
                        computed=1, skipped=1)
    assert repr(sweep) == sweep_repr(sweep)
    assert "2 runs (1 computed, 1 found done, 1 failed)" in repr(sweep)
    assert sweep_html(sweep).count("<tr") == 3
    assert format_kpi("co2_kg", 367_196_980.0) == "367,197 t"
    assert format_kpi("total_cost_cny", 5.193e8) == "519 M CNY"
    assert format_kpi("peak_import_kw", 80.0) == "80 kW"


def test_saved_meta_records_python_and_dependency_versions(tmp_path):
    import json
    import platform

    hand_results().save(tmp_path / "run")
    versions = json.loads((tmp_path / "run" / "meta.json").read_text())["versions"]
    assert versions["python"] == platform.python_version()
    assert versions["numpy"] == np.__version__ and versions["pandas"] == pd.__version__
    from importlib.metadata import version

    import highspy  # noqa: F401
    assert versions["highspy"] == version("highspy") and "pyomo" in versions and "simpy" in versions


def test_the_baseline_run_is_reused_for_the_same_scenario_and_draws(monkeypatch):
    """vpp.run then vpp.compare on the same scenario simulate the baseline once; a
    different seed is a new run; the reused run's KPIs are the first run's."""
    from conftest import scenario

    from vpp import api

    calls = []
    real = api._run_one

    def counting(prep, strategy, *args, **kwargs):
        calls.append(strategy.name)
        return real(prep, strategy, *args, **kwargs)

    monkeypatch.setattr(api, "_run_one", counting)
    sc = scenario({"time": {"end": "2024-07-22T12:00:00"}})
    first = vpp.run(sc, strategy="rule_based")
    cmp = vpp.compare(sc, ("source_follows_load", "rule_based"))
    assert calls.count("source_follows_load") == 1 and calls.count("rule_based") == 2
    pd.testing.assert_series_equal(cmp.results["source_follows_load"].kpis["value"], first.baseline.kpis["value"]
                                   if first.baseline.kpis is not None else compute_kpis(first.baseline),
                                   check_names=False)
    assert cmp.results["source_follows_load"] is not first.baseline            # each caller its own copy
    vpp.run(scenario({"time": {"end": "2024-07-22T12:00:00"}, "seed": 5}), strategy="rule_based")
    assert calls.count("source_follows_load") == 2                             # other draws: simulated


def test_a_changed_file_makes_a_new_baseline_key(tmp_path):
    import shutil

    from vpp import api

    src = Path(vpp.__file__).parent.parent / "scenarios"
    shutil.copytree(src, tmp_path / "s")
    path = tmp_path / "s" / "ev_charging.toml"
    sc = api.load(path)
    prep = api._prepare(sc, path)
    exo = api.build_exogenous(sc)
    before = api._baseline_key(prep, exo, None)
    assert api._baseline_key(prep, exo, None) == before
    csv = tmp_path / "s" / "data" / "example_ev_sessions.csv"
    csv.write_text(csv.read_text() + "\n")
    assert api._baseline_key(prep, exo, None) != before
    history = pd.Series([1.0, 2.0])
    assert api._baseline_key(prep, exo, history) != api._baseline_key(prep, exo, None)
