"""Cost, CO2 and green-flow figures on the hand-made two-step run of test_kpi_results
(every expected number worked out by hand in the docstrings)."""

import numpy as np
import pandas as pd
import pytest
from test_kpi_results import hand_results

from vpp.dashboards.flows import co2_figure, cost_figure, green_flows_figure, green_flows_kwh, money_unit

TOL = 1e-9


def by_name(fig):
    return {t.name: t for t in fig.data}


def test_cost_figure_by_hand():
    """Energy 40 CNY (step 1), export revenue 4 (step 0), demand charge 60 (step 1's
    20 kW peak at 3 CNY/kW): total 96 CNY, the running total -4 then 96."""
    fig = cost_figure(hand_results("vpp"))
    t = by_name(fig)
    np.testing.assert_allclose(t["total"].y, [-4.0, 96.0], atol=TOL)
    np.testing.assert_allclose(t["export revenue"].y, [-4.0, -4.0], atol=TOL)
    w = t["breakdown"]
    assert list(w.x) == ["energy", "export revenue", "demand charge", "total"]
    np.testing.assert_allclose(w.y, [40.0, -4.0, 60.0, 96.0], atol=TOL)
    assert "demand response (penalties - payments)" not in t          # zero throughout: left out
    # the running sums are drawn at the end of each step
    assert pd.Timestamp(t["total"].x[0]) == hand_results().index[0] + pd.Timedelta(hours=1)


def test_cost_figure_shows_demand_response_money():
    r = hand_results("vpp")
    r.tables["dr_events"] = pd.DataFrame({"event": ["a"], "end": [r.index[1] + pd.Timedelta(hours=1)],
                                          "payment_cny": [30.0], "penalty_cny": [0.0]})
    w = by_name(cost_figure(r))["breakdown"]
    assert list(w.x)[-2:] == ["demand response (penalties - payments)", "total"]
    np.testing.assert_allclose(w.y[-2:], [-30.0, 66.0], atol=TOL)


def test_money_unit_follows_the_largest_amount():
    assert money_unit(999.0).label == "CNY"
    assert money_unit(-25_000.0).label == "k CNY"
    assert money_unit(3.2e8).factor == pytest.approx(1e-6)
    assert money_unit(float("nan")).label == "CNY"


def test_co2_figure_by_hand():
    """Step 1 imports 20 kW at 0.6 kg/kWh over 1 h: 12 kg, 0.012 t/h; step 0 exports."""
    fig = co2_figure(hand_results("vpp"))
    t = by_name(fig)
    np.testing.assert_allclose(t["CO2 of imports"].y[:2], [0.0, 0.012], atol=TOL)
    np.testing.assert_allclose(t["carbon intensity"].y[:2], [0.5, 0.6], atol=TOL)
    assert "0.600 kg per imported kWh" in fig.layout.title.text


def test_co2_figure_of_a_long_run_is_drawn_per_day():
    """Three weeks of 1-h steps importing 20 kW at 0.5 kg/kWh: 0.24 t a day."""
    r = hand_results("vpp")
    idx = pd.date_range("2024-07-01", periods=21 * 24, freq="h", tz="Asia/Shanghai")
    r.exogenous = pd.DataFrame({"price_import_cny_per_kwh": 1.0, "price_export_cny_per_kwh": 0.4,
                                "co2_kg_per_kwh": 0.5}, index=idx)
    r.fleets = pd.DataFrame({("load", "p_kw"): -20.0}, index=idx)
    r.fleets.columns.names = ["fleet", "quantity"]
    r.fleet_info = r.fleet_info.loc[["load"]]
    nodes = pd.DataFrame(0.0, index=idx, columns=r.nodes.columns)
    nodes[("b", "grid_import_kw")] = 20.0
    r.nodes = nodes
    t = by_name(co2_figure(r))
    assert len(t["CO2 of imports"].x) == 21
    np.testing.assert_allclose(t["CO2 of imports"].y, 0.24, atol=TOL)
    np.testing.assert_allclose(t["carbon intensity"].y, 0.5, atol=TOL)


def _with_wind(r):
    """hand_results plus 20 kW of uncurtailable wind at node a in step 0 (node a exports 100 kW)."""
    r.fleets[("wind", "p_kw")] = [20.0, 0.0]
    r.nodes[("a", "grid_export_kw")] = [100.0, 50.0]
    r.fleet_info.loc["wind"] = {"type": "wind", "node": "a", "role": "source", "green": True,
                                "curtailable": False, "count": 1, "capacity_kwh": np.nan, "e_init_kwh": np.nan}
    return r


def test_green_flows_by_hand():
    """Step 0: PV 80 (20 curtailed), the VPP exports 10 (green first), the battery charges 10
    from the 70 used locally: stored 10, exported 10, loads 60.  Step 1: PV 50, the battery
    discharges: loads 50."""
    f = green_flows_kwh(hand_results("vpp"))
    assert list(f.index) == ["pv"]
    np.testing.assert_allclose(f.loc["pv"].to_numpy(), [110.0, 10.0, 10.0, 20.0], atol=TOL)


def test_green_flows_share_the_exported_and_stored_power_by_production():
    """With wind: step 0 produces PV 80 + wind 20; the VPP exports 30, split 24 / 6; the
    battery stores 10 of the 70 used locally, split 8 / 2; loads get PV 48, wind 12."""
    f = green_flows_kwh(_with_wind(hand_results("vpp")))
    np.testing.assert_allclose(f.loc["pv"].to_numpy(), [48.0 + 50.0, 8.0, 24.0, 20.0], atol=TOL)
    np.testing.assert_allclose(f.loc["wind"].to_numpy(), [12.0, 2.0, 6.0, 0.0], atol=TOL)
    fig = green_flows_figure(_with_wind(hand_results("vpp")))
    sankey = fig.data[0]
    assert sum(sankey.link.value) == pytest.approx(150.0 + 20.0)                # every available kWh
    assert "used locally" in fig.layout.title.text


def test_green_flows_without_green_power_is_an_empty_figure():
    r = hand_results("vpp")
    r.fleet_info["green"] = False
    fig = green_flows_figure(r)
    assert not fig.data
    assert "no green generation" in fig.layout.annotations[0].text
