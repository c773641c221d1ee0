"""Dashboards: figures and HTML reports built from hand-made Results.

No simulator run: two days at 1-hour steps with a PV fleet and a battery at
node "north" and an office-building fleet at node "south", balanced by hand
(grid exchange closes each node), plus a baseline run of the same draws.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from plotly.offline import get_plotlyjs

from vpp.dashboards import (
    HEADLINE_KPIS,
    baseline_overlay_figure,
    building_temperature_figure,
    comparison_report,
    green_power_figure,
    grid_exchange_figure,
    headline,
    kpi_table,
    kpi_table_figure,
    power_unit,
    run_report,
    solve_time_figure,
    storage_figure,
    strategy_delta_figure,
    strategy_kpi_bars_figure,
    strategy_overlay_figure,
    strategy_panels_figure,
    supply_demand_figure,
)
from vpp.dashboards.report import _compact
from vpp.kpi import KPI_META
from vpp.results import Results

BALANCE_ATOL_KW = 1e-9  # stacked supply vs demand: sums of a handful of doubles
FLOW_ATOL_KW = 1e-9
TZ = "Asia/Shanghai"
SCENARIO_NAME = 'Lingang <week> & "friends"'
N_STEPS = 48
PV_PEAK_KW = 200.0
PV_CAP_KW = 170.0  # this strategy curtails PV above this
PV_CAP_BASELINE_KW = 120.0
SOUTH_IMPORT_LIMIT_KW = 110.0
BATTERY_KW = 30.0
BATTERY_KWH = 200.0

# Scenario text as the resolved scenario would hold it (building comfort parameters).
SCENARIO_TOML = """
name = "test"
[[fleets]]
name = "office"
type = "building"
node = "south"
[fleets.params]
cooling_setpoint_c = 26.0
heating_setpoint_c = 20.0
comfort_band_k = 2.0
cooling_months = [5, 6, 7, 8, 9, 10]
heating_months = [12, 1, 2, 3]
"""
COMFORT_JULY_C = (24.0, 26.0)  # cooling month: [setpoint - band, setpoint]


# -- hand-made runs -------------------------------------------------------------------
def _index(n=N_STEPS):
    return pd.date_range("2024-07-01", periods=n, freq="h", tz=TZ)


def _hours(idx):
    return idx.hour.to_numpy()


def _pv_available_kw(idx):
    h = _hours(idx)
    return PV_PEAK_KW * np.clip(np.sin(np.pi * (h - 6) / 12.0), 0.0, None)


def _office_kw(idx):
    """Office consumption, generator sign: 80 kW base, 120 kW while occupied (8-18 h)."""
    h = _hours(idx)
    return -(80.0 + 40.0 * ((h >= 8) & (h < 18)))


def _battery_kw(idx, active: bool):
    """Charge 10-13 h, discharge 18-21 h (generator sign)."""
    h = _hours(idx)
    if not active:
        return np.zeros(len(idx))
    return np.where((h >= 10) & (h < 13), -BATTERY_KW, np.where((h >= 18) & (h < 21), BATTERY_KW, 0.0))


def _nodes(nets: dict[str, np.ndarray], limits: dict[str, tuple[float, float]], idx, curtailed: dict):
    """Node frame from each node's net injection (generator sign) [kW]."""
    cols, data = [], []
    for node, net in nets.items():
        imp, exp = np.maximum(-net, 0.0), np.maximum(net, 0.0)
        imp_lim, exp_lim = limits[node]
        for q, v in (("grid_import_kw", imp), ("grid_export_kw", exp),
                     ("import_violation_kw", np.maximum(imp - imp_lim, 0.0)),
                     ("export_violation_kw", np.maximum(exp - exp_lim, 0.0)),
                     ("curtailed_kw", curtailed.get(node, np.zeros(len(idx))))):
            cols.append((node, q))
            data.append(v)
    return pd.DataFrame(np.column_stack(data), index=idx,
                        columns=pd.MultiIndex.from_tuples(cols, names=["node", "quantity"]))


def _fleet_frame(series: dict[tuple[str, str], np.ndarray], idx):
    return pd.DataFrame(np.column_stack(list(series.values())), index=idx,
                        columns=pd.MultiIndex.from_tuples(list(series), names=["fleet", "quantity"]))


def _exogenous(idx):
    h = _hours(idx)
    peak = ((h >= 8) & (h < 15)) | ((h >= 18) & (h < 21))
    valley = (h >= 22) | (h < 6)
    price = np.where(peak, 1.26, np.where(valley, 0.28, 0.70))
    return pd.DataFrame({"price_import_cny_per_kwh": price, "price_export_cny_per_kwh": np.full(len(idx), 0.3),
                         "co2_kg_per_kwh": np.full(len(idx), 0.5849),
                         "ghi_w_m2": 900.0 * np.clip(np.sin(np.pi * (h - 6) / 12.0), 0.0, None),
                         "temp_air_c": 30.0 + 4.0 * np.sin(np.pi * (h - 9) / 12.0)}, index=idx)


def make_run(strategy="source_load_interaction", *, storage=True, building=True, pv_cap_kw=PV_CAP_KW,
             n=N_STEPS, scenario_name=SCENARIO_NAME) -> Results:
    """A balanced run: fleets at two nodes, grid exchange closing each node."""
    idx = _index(n)
    avail = _pv_available_kw(idx)
    pv = np.minimum(avail, pv_cap_kw)
    office = _office_kw(idx)
    bess = _battery_kw(idx, storage and strategy != "source_follows_load")
    series = {("pv_roof", "p_kw"): pv, ("pv_roof", "p_available_kw"): avail}
    info = [{"fleet": "pv_roof", "type": "pv", "node": "north", "role": "source", "green": True,
             "curtailable": True, "count": 50, "p_rated_kw": PV_PEAK_KW}]
    north = pv.copy()
    if storage:
        e = 0.5 * BATTERY_KWH - np.cumsum(bess)  # lossless bookkeeping, 1-h steps
        series.update({("bess", "p_kw"): bess, ("bess", "e_kwh"): e, ("bess", "soc_frac"): e / BATTERY_KWH})
        info.append({"fleet": "bess", "type": "battery", "node": "north", "role": "storage", "green": False,
                     "curtailable": False, "count": 1, "p_rated_kw": BATTERY_KW, "capacity_kwh": BATTERY_KWH})
        north = north + bess
    occupied = office < -100.0
    temp = np.where(occupied, 25.0, 27.5)
    series[("office", "p_kw")] = office
    if building:
        series.update({("office", "temp_mean_c"): temp, ("office", "temp_max_c"): temp + 1.0,
                       ("office", "comfort_violation_kh"): np.where(occupied & (_hours(idx) == 17), 0.5, 0.0)})
    info.append({"fleet": "office", "type": "building" if building else "industrial", "node": "south",
                 "role": "load", "green": False, "curtailable": False, "count": 3, "p_rated_kw": 150.0})
    limits = {"north": (500.0, 100.0), "south": (SOUTH_IMPORT_LIMIT_KW, np.inf)}
    nodes = _nodes({"north": north, "south": office}, limits, idx, {"north": avail - pv})
    dispatch_idx = idx[::4]
    dispatch = pd.DataFrame({"status": "optimal", "fallback": np.arange(len(dispatch_idx)) == 3,
                             "build_time_s": 0.05, "solve_time_s": 0.1, "objective_cny": 1.0},
                            index=pd.DatetimeIndex(dispatch_idx, name="time"))
    events = pd.DataFrame({"kind": ["dr_call", "fault"], "detail": ["<script>alert(1)</script>", "pv trip"]},
                          index=pd.DatetimeIndex(idx[[1, n - 1]], name="time"))
    return Results(
        scenario_name=scenario_name, strategy=strategy, scenario_toml=SCENARIO_TOML,
        fleets=_fleet_frame(series, idx), nodes=nodes, exogenous=_exogenous(idx), dispatch=dispatch,
        events=events, fleet_info=pd.DataFrame(info).set_index("fleet"),
        node_info=pd.DataFrame({"import_limit_kw": [lim[0] for lim in limits.values()],
                                "export_limit_kw": [lim[1] for lim in limits.values()]},
                               index=pd.Index(list(limits), name="node")))


# Hand-set KPIs (values and baselines chosen, not computed) to check the words.
HAND_KPIS = {  # name: (value, baseline)
    "green_local_consumption_rate": (0.921, 0.853),
    "curtailment_rate": (0.032, 0.090),
    "self_sufficiency": (0.61, 0.55),
    "total_cost_cny": (1234.5, 1300.0),
    "co2_kg": (250.0, 280.0),
    "peak_import_kw": (130.0, 140.0),
    "ev_energy_not_served_kwh": (0.0, 0.0),
    "comfort_violation_kh": (1.5, 0.0),
    "battery_cycles": (0.4, 0.0),
}
HEADLINE_WORDS = (
    "green power used locally: 92.1 % (baseline 85.3 %, +6.8 points)",
    "green power curtailed: 3.2 % (baseline 9.0 %, -5.8 points)",
    "self-sufficiency: 61.0 % (baseline 55.0 %, +6.0 points)",
    "total cost: 1,234 CNY (baseline 1,300 CNY, -65.50 CNY, -5.0 %)",
)


def hand_kpis(scale=1.0) -> pd.DataFrame:
    rows = {}
    for name, (value, base) in HAND_KPIS.items():
        unit, better, description = KPI_META[name]
        delta = value - base
        rows[name] = {"value": value * scale, "baseline": base, "delta": value * scale - base,
                      "delta_pct": 100.0 * delta / base if base else np.nan,
                      "unit": unit, "better": better, "description": description}
    return pd.DataFrame.from_dict(rows, orient="index")


def run_with_baseline(**kw) -> Results:
    res = make_run(**kw)
    res.baseline = make_run("source_follows_load", pv_cap_kw=PV_CAP_BASELINE_KW,
                            **{k: v for k, v in kw.items() if k != "pv_cap_kw"})
    res.kpis = hand_kpis()
    return res


def names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data]


def by_name(fig: go.Figure) -> dict:
    return {t.name: t for t in fig.data}


def stack_sum(fig: go.Figure, group: str) -> np.ndarray:
    ys = [np.asarray(t.y, dtype=float) for t in fig.data if getattr(t, "stackgroup", None) == group]
    return np.sum(ys, axis=0)


# -- figures ---------------------------------------------------------------------------
def test_supply_demand_traces_and_balance():
    res = run_with_baseline()
    fig = supply_demand_figure(res)
    assert isinstance(fig, go.Figure)
    assert names(fig) == ["pv_roof", "bess discharge", "grid import", "office", "bess charge", "grid export",
                          "import price"]
    supply, demand = stack_sum(fig, "supply"), stack_sum(fig, "demand")
    assert len(supply) == N_STEPS + 1  # the last interval is closed by one extra point
    np.testing.assert_allclose(supply, -demand, rtol=0, atol=BALANCE_ATOL_KW)
    # Hand check at 12:00: PV 170 kW (capped), battery charging 30 kW -> north exports 140 kW;
    # the office draws 120 kW -> south imports 120 kW.  The VPP settles the net: 20 kW exported.
    noon = 12
    pv = by_name(fig)["pv_roof"].y[noon]
    assert pv == pytest.approx(PV_CAP_KW, abs=FLOW_ATOL_KW)
    imp = by_name(fig)["grid import"].y[noon]
    exp = by_name(fig)["grid export"].y[noon]
    assert imp == pytest.approx(0.0, abs=FLOW_ATOL_KW)
    assert exp == pytest.approx(-(PV_CAP_KW - BATTERY_KW - 120.0), abs=FLOW_ATOL_KW)
    assert "flowed between nodes" in fig.layout.title.text


def test_supply_demand_under_node_settlement_draws_each_nodes_exchange():
    res = run_with_baseline()
    res.settlement = "node"
    fig = supply_demand_figure(res)
    supply, demand = stack_sum(fig, "supply"), stack_sum(fig, "demand")
    np.testing.assert_allclose(supply, -demand, rtol=0, atol=BALANCE_ATOL_KW)
    # 12:00 by hand: south imports 120 kW, north exports 170 - 30 = 140 kW, each billed
    assert by_name(fig)["grid import"].y[12] == pytest.approx(120.0, abs=FLOW_ATOL_KW)
    assert by_name(fig)["grid export"].y[12] == pytest.approx(-(PV_CAP_KW - BATTERY_KW), abs=FLOW_ATOL_KW)
    assert "node by node" in fig.layout.title.text


def test_supply_demand_time_axis_is_tz_aware():
    fig = supply_demand_figure(make_run())
    x = pd.DatetimeIndex(fig.data[0].x)
    assert str(x.tz) == TZ
    assert x[-1] - x[-2] == pd.Timedelta(hours=1)
    assert TZ in fig.layout.xaxis.title.text


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, (6, 4), elements=st.floats(-500, 500, allow_nan=False)),
       st.lists(st.sampled_from(["source", "load", "storage"]), min_size=4, max_size=4))
def test_supply_equals_demand_for_any_balanced_run(p_kw, roles):
    """Property: whatever the fleets' signs, the two stacks mirror each other."""
    res = make_run(n=6, storage=False, building=False)
    idx = res.index
    fleets = [f"f{i}" for i in range(4)]
    series = {(f, "p_kw"): p_kw[:, i] for i, f in enumerate(fleets)}
    series.update({(f, "p_available_kw"): np.abs(p_kw[:, i]) + 1.0 for i, f in enumerate(fleets)
                   if roles[i] == "source"})
    node_of = ["north", "south", "north", "south"]
    nets = {n: sum(p_kw[:, i] for i in range(4) if node_of[i] == n) for n in ("north", "south")}
    res.fleets = _fleet_frame(series, idx)
    res.fleet_info = pd.DataFrame({"type": "x", "node": node_of, "role": roles,
                                   "green": [r == "source" for r in roles],
                                   "curtailable": [r == "source" for r in roles], "count": 1,
                                   "p_rated_kw": 500.0}, index=pd.Index(fleets, name="fleet"))
    res.nodes = _nodes(nets, {"north": (1e3, 1e3), "south": (1e3, 1e3)}, idx, {})
    fig = supply_demand_figure(res)
    np.testing.assert_allclose(stack_sum(fig, "supply"), -stack_sum(fig, "demand"), rtol=0,
                               atol=BALANCE_ATOL_KW)
    # and the green flows add up to what was available
    g = green_power_figure(res)
    np.testing.assert_allclose(stack_sum(g, "green"), by_name(g)["green available"].y,
                               rtol=0, atol=FLOW_ATOL_KW)


def test_green_power_flows_against_hand_values():
    res = run_with_baseline()
    fig = green_power_figure(res)
    assert {"used locally", "exported", "curtailed", "green available", "green energy"} <= set(names(fig))
    t = by_name(fig)
    idx = res.index
    avail = _pv_available_kw(idx)
    pv = np.minimum(avail, PV_CAP_KW)
    vpp_net = pv + _battery_kw(idx, True) + _office_kw(idx)  # settlement "vpp": nodes net out
    export = np.maximum(vpp_net, 0.0)
    local = pv - np.minimum(pv, export)
    np.testing.assert_allclose(t["used locally"].y[:-1], local, rtol=0, atol=FLOW_ATOL_KW)
    np.testing.assert_allclose(t["exported"].y[:-1], pv - local, rtol=0, atol=FLOW_ATOL_KW)
    np.testing.assert_allclose(t["curtailed"].y[:-1], avail - pv, rtol=0, atol=FLOW_ATOL_KW)
    totals = np.asarray(t["green energy"].values, dtype=float)
    np.testing.assert_allclose(totals, [local.sum(), (pv - local).sum(), (avail - pv).sum()], rtol=1e-12)
    share = 100.0 * local.sum() / avail.sum()
    assert f"{share:.1f} % used locally" in fig.layout.title.text


def test_grid_exchange_limits_and_violations():
    res = make_run()
    fig = grid_exchange_figure(res)
    got = set(names(fig))
    assert {"north net import", "north import limit", "north export limit", "south net import",
            "south import limit", "south limit violated", "north limit violated"} <= got
    assert "south export limit" not in got  # infinite limit: no line
    t = by_name(fig)
    assert t["south import limit"].y[0] == pytest.approx(SOUTH_IMPORT_LIMIT_KW)
    assert t["north export limit"].y[0] == pytest.approx(-100.0)
    occupied = (_hours(res.index) >= 8) & (_hours(res.index) < 18)  # office draws 120 > 110 kW
    assert pd.DatetimeIndex(t["south limit violated"].x).equals(res.index[occupied])


def test_baseline_overlay_and_without_baseline():
    res = run_with_baseline()
    fig = baseline_overlay_figure(res)
    assert names(fig) == ["source_load_interaction", "source_load_interaction",
                          "source_follows_load (baseline)", "source_follows_load (baseline)", "difference"]
    assert sum(bool(t.showlegend) for t in fig.data) == 2
    # the baseline curtails more, so it uses less green power locally at noon
    local = [t.y for t in fig.data if t.yaxis == "y2"]
    assert local[0][12] > local[1][12]
    (diff,) = [t.y for t in fig.data if t.yaxis == "y3"]
    np.testing.assert_allclose(diff, np.asarray(local[0]) - np.asarray(local[1]))
    alone = baseline_overlay_figure(make_run("source_follows_load"))
    assert isinstance(alone, go.Figure) and len(alone.data) == 0
    assert "baseline" in alone.layout.annotations[0].text


def test_kpi_table_headline_first():
    res = run_with_baseline()
    fig = kpi_table_figure(res)
    (table,) = fig.data
    assert isinstance(table, go.Table)
    kpi_col = list(table.cells.values[0])
    expected_head = [k for k in HEADLINE_KPIS if k in HAND_KPIS]
    assert kpi_col[: len(expected_head)] == expected_head
    assert kpi_col[-1] == "battery_cycles"
    row = kpi_col.index("green_local_consumption_rate")
    assert table.cells.values[1][row] == "92.1" and table.cells.values[5][row] == "%"
    assert table.cells.values[3][row] == "+6.8 pt"


def test_kpi_table_computes_kpis_when_missing():
    res = make_run()
    fig = kpi_table_figure(res)  # kpis None and no baseline: values only
    kpi_col = list(fig.data[0].cells.values[0])
    assert kpi_col[:3] == list(HEADLINE_KPIS[:3])
    assert set(fig.data[0].cells.values[2]) == {"\u2013"}  # no baseline values


def test_storage_building_and_solve_time_figures():
    res = make_run()
    s = storage_figure(res)
    assert names(s) == ["bess SoC", "bess power"]
    assert s.data[0].y[0] == pytest.approx(50.0)  # idle first step, starts half full
    assert s.data[0].x[0] == res.index[0] + pd.Timedelta(hours=1)  # a state is drawn at its step's end
    b = building_temperature_figure(res)
    assert {"office comfort band", "office mean indoor", "office hottest indoor", "office discomfort",
            "outdoor air"} <= set(names(b))
    band = [t for t in b.data if t.legendgroup == "office band"]
    assert band[0].y[0] == pytest.approx(COMFORT_JULY_C[0]) and band[1].y[0] == pytest.approx(COMFORT_JULY_C[1])
    d = solve_time_figure(res)
    assert names(d) == ["model build", "solve", "fallback"]
    assert len(d.data[2].x) == 1


def test_figures_without_storage_buildings_or_dispatch():
    res = make_run("source_follows_load", storage=False, building=False)
    res.dispatch = res.dispatch.iloc[:0]
    assert isinstance(storage_figure(res), go.Figure) and len(storage_figure(res).data) == 0
    assert len(building_temperature_figure(res).data) == 0
    assert len(solve_time_figure(res).data) == 0
    fig = supply_demand_figure(res)
    assert "bess charge" not in names(fig)
    np.testing.assert_allclose(stack_sum(fig, "supply"), -stack_sum(fig, "demand"), atol=BALANCE_ATOL_KW)


def test_megawatt_scale_switch():
    small = make_run()
    assert power_unit(small).power == "kW"
    big = make_run()
    big.fleets = big.fleets * 1000.0
    big.nodes = big.nodes * 1000.0
    assert power_unit(big).power == "MW"
    fig = supply_demand_figure(big)
    pv = by_name(fig)["pv_roof"].y[12]
    assert pv == pytest.approx(PV_CAP_KW)  # 170 MW shown as 170
    assert "[MW]" in fig.layout.yaxis.title.text


# -- reports ----------------------------------------------------------------------------
PLOTLY_BANNER = get_plotlyjs()[:120]
SCRIPT_SRC = re.compile(r"<script[^>]*\ssrc\s*=", re.IGNORECASE)


def _offline_single_plotly(page: str) -> None:
    assert page.count(PLOTLY_BANNER) == 1
    assert page.count("<script type=\"text/javascript\">/**") == 1
    assert not SCRIPT_SRC.search(page)
    assert "cdn.plot.ly" not in page.replace(get_plotlyjs(), "")


def test_run_report_is_one_offline_page_with_headline():
    res = run_with_baseline()
    page = run_report(res)
    assert isinstance(page, str) and page.startswith("<!DOCTYPE html>")
    _offline_single_plotly(page)
    assert html.escape(SCENARIO_NAME) in page and SCENARIO_NAME not in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    for words in HEADLINE_WORDS:
        assert html.escape(words) in page
    assert "EV energy not served" not in page.split("<h2>KPIs")[0]  # zero in both runs: not a headline
    # green, green flows, overlay, balance, cost, CO2, grid, storage, building, dispatch
    assert page.count('class="plotly-graph-div"') == 10


def test_run_report_of_the_baseline_without_storage_or_buildings():
    res = make_run("source_follows_load", storage=False, building=False)
    page = run_report(res)  # kpis computed here, no baseline
    _offline_single_plotly(page)
    assert "This run is the baseline" in page
    assert "<h2>Storage" not in page and "<h2>Buildings" not in page
    assert "(baseline " not in page
    assert page.count('class="plotly-graph-div"') == 7  # green, green flows, balance, cost, CO2, grid, dispatch


def test_comparison_report_and_figures():
    base = make_run("source_follows_load", pv_cap_kw=PV_CAP_BASELINE_KW)
    best = make_run()
    table = pd.DataFrame({k: [b, v] for k, (v, b) in HAND_KPIS.items()},
                         index=pd.Index(["source_follows_load", "source_load_interaction"], name="strategy"))
    cmp = SimpleNamespace(table=table, results={"source_follows_load": base, "source_load_interaction": best})
    bars = strategy_kpi_bars_figure(cmp)
    n_kpis = len([k for k in HEADLINE_KPIS if k in HAND_KPIS])
    assert names(bars) == ["source_follows_load", "source_load_interaction"] * n_kpis
    assert [t.name for t in bars.data if t.showlegend] == ["source_follows_load", "source_load_interaction"]
    np.testing.assert_allclose([bars.data[0].y[0], bars.data[1].y[0]], [85.3, 92.1])  # in %
    over = strategy_overlay_figure(cmp)
    assert names(over) == ["source_follows_load"] * 2 + ["source_load_interaction"] * 2
    page = comparison_report(cmp)
    _offline_single_plotly(page)
    assert html.escape(SCENARIO_NAME) in page and SCENARIO_NAME not in page
    assert "<b>source_load_interaction</b>" in page
    assert page.count('class="plotly-graph-div"') == 2
    assert '<td class="best">92.1</td>' in page


def _comparison(extra=None):
    base = make_run("source_follows_load", pv_cap_kw=PV_CAP_BASELINE_KW)
    table = pd.DataFrame({k: [b, v] for k, (v, b) in HAND_KPIS.items()},
                         index=pd.Index(["source_follows_load", "source_load_interaction"], name="strategy"))
    for name, values in (extra or {}).items():
        table[name] = values
    return SimpleNamespace(table=table, results={"source_follows_load": base, "source_load_interaction": make_run()})


def test_differences_to_the_baseline_as_diverging_bars_by_hand():
    """From HAND_KPIS: local use +6.8 pt (better), curtailment -5.8 pt (better), cost
    -65.5 CNY (better), CO2 -30 kg = -0.03 t (better), comfort +1.5 K h (worse); EV
    energy 0 against 0: no panel, named in the title as the same."""
    fig = strategy_delta_figure(_comparison())
    bars = {t.name: t for t in fig.data}
    assert list(bars["green power used locally"].y) == ["source_load_interaction"]
    assert bars["green power used locally"].x[0] == pytest.approx(6.8)
    assert bars["green power curtailed"].x[0] == pytest.approx(-5.8)
    assert bars["total cost"].x[0] == pytest.approx(-65.5)
    assert bars["CO\u2082 of imports"].x[0] == pytest.approx(-0.03)             # kg -> t
    green, orange, grey = "#009E73", "#D55E00", "#999999"
    assert bars["total cost"].marker.color[0] == green
    assert bars["comfort violation"].marker.color[0] == orange
    assert "EV energy not served" not in bars
    assert "the same as the baseline for every strategy: EV energy not served" in fig.layout.title.text
    assert grey not in [c for t in fig.data for c in t.marker.color]
    assert "[t" in " ".join(a.text for a in fig.layout.annotations)


def test_a_difference_within_noise_is_none_and_a_real_one_is_drawn():
    fig = strategy_delta_figure(_comparison({"ev_energy_not_served_kwh": [0.0, 1.46e-13]}))
    assert "EV energy not served" not in {t.name for t in fig.data}
    assert "EV energy not served" in fig.layout.title.text
    bars = {t.name: t for t in strategy_delta_figure(_comparison({"ev_energy_not_served_kwh": [0.0, 0.5]})).data}
    assert bars["EV energy not served"].x[0] == pytest.approx(0.5)
    assert bars["EV energy not served"].marker.color[0] == "#D55E00"          # more not served: worse


def test_strategy_panels_are_small_multiples_against_the_baseline():
    fig = strategy_panels_figure(_comparison())
    assert names(fig) == ["baseline", "source_load_interaction"] * 2     # one row: two panels
    assert [t.name for t in fig.data if t.showlegend] == ["baseline", "source_load_interaction"]
    assert fig.data[0].line.dash == "dash"


def test_comparison_table_leaves_out_empty_columns():
    page = comparison_report(_comparison({"value_of_perfect_information_cny": [np.nan, np.nan]}))
    assert "value of perfect information" not in page.lower()


REPORT_DATA_BUDGET_BYTES = 150_000  # two days, 3 fleets: about 50 kB of data and layout


def test_report_size_is_plotly_plus_data():
    """A report is plotly.js (~4.8 MB) plus the figures' data and layout."""
    page = run_report(run_with_baseline())
    data_bytes = len(page.encode("utf-8")) - len(get_plotlyjs().encode("utf-8"))
    assert data_bytes < REPORT_DATA_BUDGET_BYTES
    # regular time axes are stored as start + step: a mid-period time appears only in
    # irregular traces (limit-violation and discomfort markers, the event log)
    assert page.count("2024-07-02T03:00:00") == 0


def test_compacted_time_axis_draws_the_same_points():
    fig = supply_demand_figure(make_run())
    compact = _compact(fig)
    assert fig.data[0].x is not None  # the caller's figure is untouched
    for full, short in zip(fig.data, compact.data, strict=True):
        x = pd.DatetimeIndex(full.x)
        assert short.x is None
        rebuilt = pd.Timestamp(short.x0) + pd.to_timedelta(np.arange(len(x)) * short.dx, unit="ms")
        assert pd.DatetimeIndex(rebuilt).equals(x)
        np.testing.assert_array_equal(short.y, full.y)


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _sweep_table():
    rows = [(x, seed, strategy, 0.8 + 0.02 * x + 0.01 * seed + (0.05 if strategy == "virtual_battery" else 0.0),
             1e6 - 1e4 * x) for x in (1, 2, 4) for seed in (1, 2) for strategy in ("source_follows_load",
                                                                                  "virtual_battery")]
    t = pd.DataFrame(rows, columns=["renewables", "seed", "strategy", "green_local_consumption_rate",
                                    "total_cost_cny"])
    t["status"] = "ok"
    return t


def _report_pages():
    from vpp.dashboards import sweep_report

    cmp = _comparison()
    return {"run": run_report(run_with_baseline()), "baseline run": run_report(make_run("source_follows_load")),
            "comparison": comparison_report(cmp), "sweep": sweep_report(_sweep_table(), ["renewables"])}


REPORT_PAGE_BUDGET_BYTES = 5_400_000   # plotly.js (~4.8 MB) and the data of these small runs


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium/Chrome on this machine")
@pytest.mark.parametrize("kind", ["run", "baseline run", "comparison", "sweep"])
def test_every_report_kind_renders_every_figure_without_javascript_errors(tmp_path, kind):
    """Headless Chromium opens the page offline: no uncaught error or console.error,
    and every figure drew something (a trace, a Sankey or a table)."""
    page = _report_pages()[kind]
    assert len(page.encode("utf-8")) < REPORT_PAGE_BUDGET_BYTES
    # Record uncaught errors and console.error calls into the DOM so that --dump-dom shows them.
    probe = ("<script>(function(){var n=0;function rec(m){document.documentElement.setAttribute("
             "'data-js-error-'+(n++),String(m));}window.addEventListener('error',function(e){rec(e.message);});"
             "var ce=console.error;console.error=function(){rec([].join.call(arguments,' '));"
             "ce.apply(console,arguments);};})();</script>")
    path = tmp_path / "report.html"
    path.write_text(page.replace("<head>", "<head>" + probe, 1), encoding="utf-8")
    # offline flags: a closed network refuses Chromium's background connections
    flags = ["--headless", "--disable-gpu", "--no-sandbox", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    out = subprocess.run([_browser(), *flags, "--dump-dom", path.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "data-js-error-0=" not in out.stdout, out.stdout[:2000]
    figures = out.stdout.split('class="plotly-graph-div')[1:]
    assert len(figures) == page.count('class="plotly-graph-div"') >= 1
    for k, fig in enumerate(figures):
        drawn = any(mark in fig for mark in ('class="trace', 'class="sankey', 'class="table"'))
        empty_note = "annotation-text" in fig and 'class="trace' not in fig     # a figure that says it has no data
        assert drawn or empty_note, f"{kind}: figure {k} drew nothing"


def test_slack_figure_shows_the_slacks_a_plan_used():
    from vpp.dashboards import slack_figure

    res = make_run()
    assert "no slack" in slack_figure(res).layout.annotations[0].text
    d = res.dispatch.copy()
    d["slack_import_kwh"] = np.linspace(0.0, 5.0, len(d))
    d["slack_discomfort_kh"] = 0.0
    res.dispatch = d
    fig = slack_figure(res)
    assert [t.name for t in fig.data] == ["import", "discomfort"]
    assert "used: import" in fig.layout.title.text
    # each slack on its own axis, titled with its unit
    assert [t.yaxis for t in fig.data] == ["y", "y2"]
    assert (fig.layout.yaxis.title.text, fig.layout.yaxis2.title.text) == ("[kWh]", "[K h]")


def test_each_building_fleets_comfort_band_takes_its_colour():
    from vpp.dashboards._style import _fleet_colors, _rgba

    res = make_run()
    res.fleets[("office", "comfort_lo_c")] = 22.0
    res.fleets[("office", "comfort_hi_c")] = 26.0
    fig = building_temperature_figure(res)
    band = next(t for t in fig.data if t.name == "office comfort band")
    assert band.fillcolor == _rgba(_fleet_colors(res.fleet_info)["office"], 0.15)


def test_shadow_price_figure_plots_each_node_and_the_vpp():
    from vpp.dashboards import shadow_price_figure

    res = make_run()
    assert "no shadow prices" in shadow_price_figure(res).layout.annotations[0].text
    d = res.dispatch.copy()
    d["shadow_price_cny_per_kwh_node_city"] = np.linspace(0.3, 1.3, len(d))
    d["shadow_price_cny_per_kwh_vpp"] = 0.5
    res.dispatch = d
    fig = shadow_price_figure(res)
    assert [t.name for t in fig.data] == ["node city", "VPP account"]
    np.testing.assert_allclose(fig.data[0].y, d["shadow_price_cny_per_kwh_node_city"])
    assert "Shadow price of energy" in run_report(res)


def test_kpi_table_reads_solver_noise_as_no_change_and_no_percentage_of_nothing():
    """1.46e-13 kWh between two runs that did the same is no change (not coloured, delta 0);
    5 kWh against a baseline of 1e-10 kWh is a change, but its percentage means nothing."""
    from vpp.kpi import compute_kpis, relative_kpis

    res = make_run()
    own = compute_kpis(res)
    base = own.copy()
    base["ev_energy_not_served_kwh"] = own["ev_energy_not_served_kwh"] + 1.46e-13
    own["process_energy_not_served_kwh"], base["process_energy_not_served_kwh"] = 5.0, 1e-10
    res.kpis = relative_kpis(own, base)
    t = kpi_table(res)
    assert t.loc["ev_energy_not_served_kwh", "judgement"] == 0
    assert t.loc["ev_energy_not_served_kwh", "delta"] == "0"
    assert t.loc["process_energy_not_served_kwh", "judgement"] == -1
    assert t.loc["process_energy_not_served_kwh", "delta_pct"] == "\u2013"
    words = dict(headline(res))
    assert not any("e-13" in w for w in words)


def test_kpi_table_gives_no_percentage_of_a_base_twenty_times_smaller_and_hides_unused_features():
    """-871 kWh against a baseline of -9.58 kWh is a change of 8,994 %: the two numbers say more.
    A run without a market or DR calls has no market or DR rows."""
    from vpp.kpi import compute_kpis, relative_kpis

    res = make_run()
    own = compute_kpis(res)
    base = own.copy()
    own["storage_energy_change_kwh"], base["storage_energy_change_kwh"] = -871.0, -9.58
    own["total_cost_cny"], base["total_cost_cny"] = -10_273.0, -1_318.0      # 7.8x: still a percentage
    res.kpis = relative_kpis(own, base)
    t = kpi_table(res)
    assert t.loc["storage_energy_change_kwh", "delta_pct"] == "\u2013"
    assert t.loc["total_cost_cny", "delta_pct"] == "-679.4 %"
    assert not any(n.startswith(("market_", "dr_")) for n in t.index)
    own["market_day_ahead_cny"] = 5.0
    res.kpis = relative_kpis(own, base)
    assert "market_day_ahead_cny" in kpi_table(res).index


def test_slack_noise_is_drawn_as_none():
    from vpp.dashboards import slack_figure

    res = make_run()
    d = res.dispatch.copy()
    d["slack_export_kwh"] = 8e-7
    res.dispatch = d
    fig = slack_figure(res)
    assert max(fig.data[0].y) == 0.0 and "none used" in fig.layout.title.text
