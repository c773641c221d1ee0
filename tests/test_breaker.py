"""Hard node limits are a breaker: the import never passes the limit, the loads'
flexible draw is cut before their fixed draw, what is cut is reported, and each
fleet's state follows the power it actually drew.  A soft limit is only reported.

References are independent of the breaker: the same draws run with a soft limit
(identical until the first step that needs a cut), and quantities the physics
fixes whatever the breaker does (a building's base load)."""

from functools import cache

import numpy as np
import pytest
from conftest import SMALL
from hypothesis import given, settings
from hypothesis import strategies as st

import vpp
from vpp.assets import FLEET_TYPES, Fleet
from vpp.assets.building import BuildingFleet
from vpp.errors import ScenarioError
from vpp.scenario import read_scenario_dict, scenario_from_dict
from vpp.testing import EventDriver, FleetCase

LIMIT_KW = 4_000.0
DT_H = 0.25                 # the small district steps 15 minutes [h]
OFFICES = {"name": "offices", "type": "building", "node": "site", "count": 3,
           "params": {"building_type": "office", "floor_area_m2": 20_000}}
CARS = {"name": "cars", "type": "ev", "node": "site", "count": 40,
        "params": {"station_type": "workplace", "charger_kw": 11}}
PLANT = {"name": "plant", "type": "industry", "node": "site", "count": 2, "params": {"p_site_kw": 1_500}}


def _site(limit_kw: float, limits: str, fleets=(OFFICES, CARS, PLANT)):
    """One day of the small district's weather and tariff, with only *fleets* behind one node."""
    data = read_scenario_dict(SMALL)
    data["time"]["end"] = "2024-07-23T00:00:00"
    data["nodes"] = [{"name": "site", "import_limit_kw": limit_kw, "export_limit_kw": 0.0, "limits": limits}]
    data["fleets"] = list(fleets)
    return scenario_from_dict(data, "<test>", SMALL.parent)


@cache
def _run(limit_kw: float, limits: str, fleets=(OFFICES["name"], CARS["name"], PLANT["name"])):
    chosen = tuple(f for f in (OFFICES, CARS, PLANT) if f["name"] in fleets)
    return vpp.run(_site(limit_kw, limits, chosen), strategy="source_follows_load")


def _node(res, quantity):
    return res.nodes[("site", quantity)].to_numpy()


def _flexible_kw(res) -> np.ndarray:
    """The loads' flexible draw per step, from the fleets' own records: HVAC,
    EV charging, batch and make-up power. [kW]"""
    f = res.fleets
    return (f[("offices", "p_hvac_kw")] - f[("cars", "p_kw")] + f[("plant", "p_batch_kw")]
            + f[("plant", "p_rebound_kw")]).to_numpy()


def test_the_soft_run_needs_cuts():
    """The reference: with a soft limit, the loads import beyond it at some steps, reported."""
    soft = _run(LIMIT_KW, "soft")
    imp = _node(soft, "grid_import_kw")
    assert imp.max() > 1.2 * LIMIT_KW
    beyond = np.maximum(imp - LIMIT_KW, 0.0).sum() * DT_H
    assert soft.kpis.loc["import_violation_kwh", "value"] == pytest.approx(beyond)
    assert soft.kpis.loc["load_shed_kwh", "value"] == 0.0


@settings(max_examples=6, deadline=None)
@given(frac=st.floats(0.3, 0.95))
def test_a_hard_limit_holds_and_its_first_cut_is_the_excess(frac):
    soft_peak = _node(_run(LIMIT_KW, "soft"), "grid_import_kw").max()
    limit = round(frac * soft_peak, 3)
    soft, hard = _run(limit, "soft"), _run(limit, "hard")
    imp_soft, imp_hard = _node(soft, "grid_import_kw"), _node(hard, "grid_import_kw")
    assert imp_hard.max() <= limit * (1 + 1e-9)
    k = int(np.argmax(imp_soft > limit * (1 + 1e-9)))
    np.testing.assert_array_equal(imp_hard[:k], imp_soft[:k])       # the same draws until then
    excess = imp_soft[k] - limit
    shed, unserved = _node(hard, "shed_kw"), _node(hard, "unserved_kw")
    assert shed[:k].sum() == 0.0
    assert shed[k] == pytest.approx(excess, rel=1e-9)
    assert imp_hard[k] == pytest.approx(limit, rel=1e-9)
    flexible = _flexible_kw(soft)[k]
    assert unserved[k] == pytest.approx(max(excess - flexible, 0.0), rel=1e-9, abs=1e-9)   # flexible first
    kpi = hard.kpis["value"]
    assert kpi["import_violation_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert kpi["load_shed_kwh"] == pytest.approx(shed.sum() * DT_H)
    assert kpi["load_unserved_kwh"] == pytest.approx(unserved.sum() * DT_H)


def test_a_zero_limit_serves_nothing_and_the_base_load_is_unserved():
    """Offices alone behind a 0 kW breaker: nothing is imported, the HVAC never
    runs (the rooms warm), and the unserved energy is the base load the same
    buildings draw with a soft limit (the base load does not depend on the state)."""
    soft, hard = _run(0.0, "soft", ("offices",)), _run(0.0, "hard", ("offices",))
    assert _node(hard, "grid_import_kw").max() == pytest.approx(0.0, abs=1e-9)
    assert np.abs(hard.fleets[("offices", "p_hvac_kw")].to_numpy()).max() == pytest.approx(0.0, abs=1e-9)
    base_kwh = soft.fleets[("offices", "p_base_kw")].sum() * DT_H
    assert hard.kpis.loc["load_unserved_kwh", "value"] == pytest.approx(base_kwh, rel=1e-9)
    assert hard.kpis.loc["comfort_too_hot_kh", "value"] > soft.kpis.loc["comfort_too_hot_kh", "value"] + 10.0
    consumed = -soft.fleets[("offices", "p_kw")].iloc[0]
    assert _node(hard, "shed_kw")[0] == pytest.approx(consumed, rel=1e-9)


def test_the_cut_shows_in_the_comparison_of_unserved_energy():
    table = vpp.compare(_site(LIMIT_KW, "hard"), strategies=["rule_based"]).table
    for name in table.index:
        row = table.loc[name]
        assert row["unserved_energy_kwh"] == pytest.approx(
            row["ev_energy_not_served_kwh"] + row["process_energy_not_served_kwh"] + row["load_unserved_kwh"])


# -- each fleet's state follows the power it drew ------------------------------

def _stepped(cls, name, k, params=None):
    fleet = FleetCase(cls, params or {}, label=name).build()
    driver = EventDriver(fleet)
    for j in range(k + 1):
        driver.before(j)
        fleet.step(j, None)
    return fleet


def _assert_a_cut_warms_the_rooms(cls):
    """At 14:00 in July the offices cool; without their HVAC for a step they end it warmer."""
    k = 56
    fleet = _stepped(cls, "building", k)
    untouched = fleet.state()["temp_mean_c"]
    flexible, _ = fleet.draw_kw()
    assert flexible > 0
    fleet.trip(k, 1.0, 0.0)
    assert fleet.state()["p_hvac_kw"] == 0.0
    assert fleet.state()["temp_mean_c"] > untouched + 0.05


def test_a_building_cut_by_a_breaker_warms():
    _assert_a_cut_warms_the_rooms(BuildingFleet)


class PowerOnlyBuilding(BuildingFleet):
    """Reports the cut power but keeps the temperatures of the full step."""

    type_name = "broken_breaker_state"

    def trip(self, k, flexible_frac, fixed_frac):
        self.p_hvac_kw = self.p_hvac_kw * (1.0 - flexible_frac)
        self.last_p_kw = -(self.p_hvac_kw + self.p_base_kw * (1.0 - fixed_frac))
        return self.last_p_kw


def test_the_state_check_fails_on_a_building_that_only_reports_the_cut():
    with pytest.raises(AssertionError):
        _assert_a_cut_warms_the_rooms(PowerOnlyBuilding)


def test_cars_cut_by_a_breaker_get_less_energy():
    """A full cut at the first step cars charge: the step delivers nothing to
    them, and each plugged car holds the energy it started the step with."""
    fleet = FleetCase("ev", {"station_type": "workplace"}, n_assets=40).build()
    driver = EventDriver(fleet)
    for k in range(96):
        driver.before(k)
        before = fleet._e_kwh.copy()
        fleet.step(k, None)
        if fleet.draw_kw()[0] > 0:
            break
    assert fleet.state()["ev_energy_delivered_kwh"] > 0
    fleet.trip(k, 1.0, 0.0)
    assert fleet.state()["ev_energy_delivered_kwh"] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(fleet._e_kwh, before, atol=1e-9)
    assert fleet.last_p_kw.sum() == pytest.approx(0.0, abs=1e-9)


# -- what a breaker cannot cut is refused, and the engine checks every cut -----

class OpaqueBuilding(BuildingFleet):
    """A load type that does not say how a breaker may cut it."""

    type_name = "opaque_building"
    draw_kw = Fleet.draw_kw
    trip = Fleet.trip


class TimidBuilding(BuildingFleet):
    """Cuts half of what the breaker asks."""

    type_name = "timid_building"

    def trip(self, k, flexible_frac, fixed_frac):
        return super().trip(k, flexible_frac / 2, fixed_frac / 2)


def _with_type(monkeypatch, cls, limits):
    monkeypatch.setitem(FLEET_TYPES, cls.type_name, cls)
    return _site(LIMIT_KW / 4, limits, ({**OFFICES, "type": cls.type_name},))


def test_a_hard_limit_over_a_load_it_cannot_cut_is_refused(monkeypatch):
    with pytest.raises(ScenarioError, match=r"nodes\[0\]\.limits.*'offices' \(opaque_building\) cannot be shed"):
        vpp.validate(_with_type(monkeypatch, OpaqueBuilding, "hard"))
    vpp.validate(_with_type(monkeypatch, OpaqueBuilding, "soft"))


def test_the_engine_refuses_a_cut_that_leaves_the_limit_exceeded(monkeypatch):
    with pytest.raises(RuntimeError, match="still imports .* beyond its hard limit"):
        vpp.run(_with_type(monkeypatch, TimidBuilding, "hard"), strategy="source_follows_load")


def test_an_unknown_limit_kind_is_one_clear_error():
    with pytest.raises(ScenarioError, match=r"nodes\[0\]\.limits"):
        _site(LIMIT_KW, "medium")


def test_a_breaker_cuts_the_cars_with_the_most_laxity_first():
    """Cut the power of all but one charging car: the one left charging is the
    car with the least laxity, (departure - now) - remaining / max rate."""
    fleet = FleetCase("ev", {"station_type": "workplace"}, n_assets=40).build()
    driver = EventDriver(fleet)
    for k in range(96):
        driver.before(k)
        fleet.step(k, None)
        charging = np.flatnonzero(-fleet.last_p_kw > 1e-6)
        if charging.size >= 3:
            break
    p = -fleet.last_p_kw[charging]
    slack_h = ((fleet._dep_step[charging] - k - 1) * DT_H
               - (fleet._req_kwh[charging] - fleet._e_kwh[charging]) / (fleet.efficiency[charging]
                                                                         * fleet._p_max_kw[charging]))
    urgent = charging[np.argmin(slack_h)]
    total = p.sum()
    fleet.trip(k, (total - (-fleet.last_p_kw[urgent])) / total, 0.0)
    still = np.flatnonzero(-fleet.last_p_kw > 1e-9)
    assert still.tolist() == [urgent]
