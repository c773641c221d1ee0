"""Absurd sizes are refused before anything is allocated (vpp.sizing), in one line."""

from __future__ import annotations

import time

import pytest
from conftest import SMALL, scenario

import vpp
from vpp.assets.battery import BatteryParams
from vpp.assets.wind import WindParams
from vpp.errors import ScenarioError
from vpp.scenario import read_scenario_dict, scenario_from_dict
from vpp.sizing import check_memory, fleet_memory_lower_bound

CITY = SMALL.parent / "shanghai_city.toml"


def _with(**changes):
    d = read_scenario_dict(SMALL)
    for name, count in changes.items():
        next(f for f in d["fleets"] if f["name"] == name)["count"] = count
    return scenario_from_dict(d, str(SMALL), SMALL.parent)


def test_the_lower_bound_by_hand():
    """BatteryParams draws four parameters per asset (p_max_kw, e_max_kwh, eta_charge,
    eta_discharge): 4 float64 arrays; recording each asset adds one value per step."""
    assert fleet_memory_lower_bound(1000, BatteryParams, 100, per_asset=False) == 8 * 1000 * 4
    assert fleet_memory_lower_bound(1000, BatteryParams, 100, per_asset=True) == 8 * 1000 * (4 + 100)


def test_a_billion_assets_are_refused_before_allocating():
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"fleets\[\d\]\.count: 1,000,000,000 assets need at least [\d.]+ GB") as e:
        vpp.validate(_with(home_chargers=10**9))
    assert time.perf_counter() - t0 < 30 and "\n" not in str(e.value) and "available" in str(e.value)


def test_a_timeline_of_centuries_is_refused_at_time_end():
    sc = scenario({"time": {"start": "2024-07-22T00:00:00", "end": "2900-07-22T00:00:00", "step_min": 1}})
    with pytest.raises(ScenarioError, match=r"time\.end: [\d,]+ steps .* need at least"):
        vpp.validate(sc)


def test_the_bound_refuses_only_what_cannot_fit():
    """The city week ran in 1.0 GB (README): its bound must let it run in 1 GB; 1 MB refuses it."""
    from vpp.assets import FLEET_TYPES

    city = vpp.load(CITY)
    models = [FLEET_TYPES[f.type].Params for f in city.fleets]
    check_memory(city, models, "city", available=10**9)
    with pytest.raises(ScenarioError, match="available"):
        check_memory(city, models, "city", available=10**6)


def test_a_wind_repair_time_under_15_minutes_is_refused():
    with pytest.raises(ValueError, match="greater than or equal to 0.25"):
        WindParams(outage_mttr_h=1e-6, availability_frac=0.97)
    WindParams(outage_mttr_h=0.25, availability_frac=0.97)
