"""Random outages of assets ([outages.NAME], vpp.outages): drawn at the asked rate, felt by the
physics, seen by the strategy through telemetry, refused for types without a model."""

from __future__ import annotations

import numpy as np
import pytest
from _exo_helpers import make_context, make_exogenous
from conftest import ROOT, scenario
from hypothesis import given, settings
from hypothesis import strategies as st

import vpp
from vpp.assets import FLEET_TYPES
from vpp.assets.battery import BatteryFleet
from vpp.assets.tcl import TCLFleet, TCLParams
from vpp.errors import ScenarioError
from vpp.flex import FixedProfile, HorizonGrid, StorageLike
from vpp.kpi import NOISE_ABS
from vpp.outages import OutageDraw, _alternating_periods, _one_by_one

DAY = {"time": {"start": "2024-07-22T00:00:00", "end": "2024-07-23T00:00:00"}}


def _day(outages: dict, base: str = "small_district", **more):
    return scenario({**DAY, "outages": outages, **more}, base=ROOT / "scenarios" / f"{base}.toml")


def test_assets_are_down_for_the_share_of_time_asked():
    """Alternating renewal: long-run share down = MTTR / (MTBF + MTTR) = 10 / 40."""
    draw = OutageDraw(200, mtbf_steps=30.0 / 0.25, mttr_steps=10.0 / 0.25, n_steps=4000,
                      rng=np.random.default_rng(1))
    share = np.mean([draw.down(k).mean() for k in range(0, 4000, 7)])
    assert share == pytest.approx(0.25, abs=0.02)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), mtbf=st.floats(0.05, 300), mttr=st.floats(1, 50), horizon=st.integers(1, 4000),
       share_up=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_drawing_periods_in_blocks_is_drawing_them_one_by_one(n, mtbf, mttr, horizon, share_up, seed):
    """The same periods, bit for bit, and the stream left in the same state."""
    up_first = np.random.default_rng(seed).random(n) < share_up
    one, blocks = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)
    want = _one_by_one(up_first, mtbf, mttr, horizon, one)
    got = _alternating_periods(up_first, mtbf, mttr, horizon, blocks, few=0)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)
    assert one.random() == blocks.random()


def _down_steps(r, fleet: str, asset: int) -> np.ndarray:
    t = r.tables["outages"].query("fleet == @fleet and asset == @asset")
    idx = r.index
    down = np.zeros(len(idx), dtype=bool)
    for start, end in zip(t["start"], t["end"], strict=True):
        down |= (idx >= start) & (idx < end)
    return down


def _zero_while_down(r, fleet: str) -> np.ndarray:
    """Assert each recorded asset of *fleet* has zero power at every step it is down; return
    the down mask, steps x assets."""
    p = r.assets[fleet]
    down = np.column_stack([_down_steps(r, fleet, i) for i in range(p.shape[1])])
    assert (p.to_numpy()[down] == 0).all()
    return down


def test_a_battery_does_nothing_while_down():
    r = vpp.run(_day({"battery": {"mtbf_h": 4, "mttr_h": 2}}, output={"per_asset": ["battery"]}),
                strategy="virtual_battery")
    down = _zero_while_down(r, "battery")
    assert down.any() and (r.assets["battery"].abs().to_numpy() > 1).any()    # outages happened; it ran otherwise


def test_a_pv_system_makes_nothing_while_down():
    r = vpp.run(_day({"pv": {"mtbf_h": 10, "mttr_h": 5}}, output={"per_asset": ["pv"]}), strategy="rule_based")
    down = _zero_while_down(r, "pv")
    assert (down & (r.index.hour == 12)[:, None]).any()


def test_a_building_without_its_hvac_gets_hot_in_july():
    plain = vpp.run(_day({}), strategy="source_follows_load").kpis
    broken = vpp.run(_day({"offices": {"mtbf_h": 4, "mttr_h": 20}}), strategy="source_follows_load").kpis
    assert plain.loc["comfort_violation_kh", "value"] == 0
    assert broken.loc["comfort_violation_kh", "value"] > 1
    assert broken.loc["outage_asset_h", "value"] > 0


def test_the_strategy_sees_an_outage_at_the_next_dispatch_and_later_with_late_telemetry():
    """The battery's forms offer no power for an asset down at the end of the previous step
    (no telemetry delay); with a delay of an hour, they still offer it for an hour."""
    from vpp.optimizer import STRATEGIES
    from vpp.testing import RecordingStrategy

    def offered(delay_min: float):
        rec = RecordingStrategy(STRATEGIES["rule_based"](STRATEGIES["rule_based"].Options()))
        r = vpp.run(_day({"battery": {"mtbf_h": 4, "mttr_h": 2}}, comms={"telemetry_delay_min": delay_min}),
                    strategy=rec)
        out = {}
        for problem, _ in rec.calls:
            form = next(f for f in problem.forms if f.fleet == "battery")
            out[problem.grid.k0] = form.p_charge_max_kw[:, 0] > 0
        return r, out

    r, fresh = offered(0.0)
    checked = 0
    for k, offers in fresh.items():
        if k == 0:
            continue
        for i in range(len(offers)):
            assert offers[i] == (not _down_steps(r, "battery", i)[k - 1])
            checked += 1
    _, late = offered(60.0)
    assert checked > 0 and any(fresh[k].tolist() != late[k].tolist() for k in fresh)


def test_no_outages_is_the_run_without_them():
    a = vpp.run(_day({}), strategy="rule_based")
    b = vpp.run(scenario({"time": {"start": "2024-07-22T00:00:00", "end": "2024-07-23T00:00:00"}}),
                strategy="rule_based")
    assert a.nodes.equals(b.nodes)


class ForeverBattery(BatteryFleet):
    """A researcher's fleet type without an outage model."""

    type_name = "forever"
    outage_ratings = ()


@pytest.mark.parametrize("fleet, words", [
    ("store", "fleet type 'forever' has no outage model yet (battery, building, datacentre, ev, industry, pv, "
              "tcl have)"),
    ("wind", "wind fleets draw their own turbine outages"),
    ("nope", "unknown fleet 'nope'"),
])
def test_outages_of_a_fleet_without_a_model_are_refused(fleet, words, monkeypatch):
    monkeypatch.setitem(FLEET_TYPES, "forever", ForeverBattery)
    store = {"name": "store", "type": "forever", "node": "city", "count": 2,
             "params": {"p_max_kw": 100.0, "e_max_kwh": 200.0}}
    with pytest.raises(ScenarioError, match="outages") as e:
        vpp.validate(_day({fleet: {"mtbf_h": 100, "mttr_h": 5}}, fleets=[store]))
    assert words in str(e.value)


def test_a_charger_out_of_order_charges_nothing_and_its_cars_leave_short():
    r = vpp.run(_day({"home_chargers": {"mtbf_h": 6, "mttr_h": 12}}, output={"per_asset": ["home_chargers"]}),
                strategy="virtual_battery")
    down = _zero_while_down(r, "home_chargers")
    plain = vpp.run(_day({}), strategy="virtual_battery").kpis
    assert down.any() and plain.loc["ev_energy_not_served_kwh", "value"] == 0
    assert r.kpis.loc["ev_energy_not_served_kwh", "value"] > 0


# -- air conditioners: a population without supply ------------------------------------
HOMOGENEOUS = dict(r_k_per_kw=2.0, c_kwh_per_k=10.0, p_rated_kw=5.6, cop=2.5, setpoint_c=25.0,
                   deadband_k=0.5, gain_kw=1.0)
DRIFT_TOL_K = 1e-9        # the room's exact exponential solution
EXCESS_RTOL = 0.002       # degree-hours by the trapezoid rule over 15-minute steps vs the integral (observed 0.015 %)


def test_an_ac_population_without_supply_warms_as_the_room_model_says():
    """A homogeneous room off from theta0 follows theta_e + (theta0 - theta_e) exp(-t / RC), with
    theta_e = T_out + R q; its degree-hours above the band are that curve's integral, computed
    here on a 1-second grid.  The population with supply stays in its band."""
    exo = make_exogenous(64, temp_air_c=32.0)
    f = TCLFleet(make_context(exo, 2, seed=0), TCLParams(units_per_population=50, **HOMOGENEOUS))
    theta0 = f.temp_c.copy()
    f.set_outage(np.array([True, False]))
    hours, excess = 8.0, 0.0
    for k in range(32):
        p = f.step(k, None)
        assert p[0] == 0 and p[1] < 0
        excess += f.state()["band_excess_kh"]
    theta_e, tau = 32.0 + 2.0 * 1.0, 2.0 * 10.0
    np.testing.assert_allclose(f.temp_c[0], theta_e + (theta0[0] - theta_e) * np.exp(-hours / tau),
                               atol=DRIFT_TOL_K)
    assert (np.abs(f.temp_c[1] - 25.0) <= 0.25 + 1e-9).all()
    t = np.linspace(0.0, hours, int(hours * 3600) + 1)
    curve = theta_e + (theta0[0][:, None] - theta_e) * np.exp(-t[None, :] / tau)
    want = np.trapezoid(np.maximum(curve - 25.25, 0.0), t, axis=1).sum()
    assert want > 100 and excess == pytest.approx(want, rel=EXCESS_RTOL)
    # forms: nothing offered, no baseline, for the population that is down
    g = HorizonGrid(32, np.ones(4, dtype=int), 0.25)
    forms = f.flexibility(g, f.exo.window(32, 4))
    (store,) = [x for x in forms if isinstance(x, StorageLike)]
    (fixed,) = [x for x in forms if isinstance(x, FixedProfile)]
    assert not store.p_charge_max_kw[0].any() and not store.p_discharge_max_kw[0].any()
    assert store.p_charge_max_kw[1].all()
    np.testing.assert_allclose(fixed.p_kw, -f.baseline_kw(32.0)[1])
    # supply back: the hot rooms force their compressors on, back into the band in 2.2 h
    f.set_outage(np.array([False, False]))
    for k in range(32, 48):
        f.step(k, None)
    assert f.state()["units_out_of_band"] == 0


# -- industrial sites and data centres ------------------------------------------------
def test_a_site_that_is_down_draws_nothing_and_its_lost_production_is_counted():
    """All sites curtailable and uncontrolled: a site's power is its base load, so the
    production lost is the plain run's power at the steps the site was down."""
    params = {"fleets": [{"name": "industry", "type": "industry", "node": "park", "count": 20,
                          "params": {"curtailable_site_share": 1.0}}], "output": {"per_asset": ["industry"]}}
    r = vpp.run(_day({"industry": {"mtbf_h": 12, "mttr_h": 8}}, "industry", **params),
                strategy="source_follows_load")
    plain = vpp.run(_day({}, "industry", **params), strategy="source_follows_load")
    down = _zero_while_down(r, "industry")
    lost_kwh = -plain.assets["industry"].to_numpy()[down].sum() * 0.25
    assert down.any() and r.kpis.loc["production_lost_kwh", "value"] == pytest.approx(lost_kwh, rel=1e-12)
    assert plain.kpis.loc["production_lost_kwh", "value"] == 0


def test_batches_of_a_site_that_is_down_miss_their_latest_finish():
    r = vpp.run(_day({"industry": {"mtbf_h": 12, "mttr_h": 8}}, "industry"), strategy="virtual_battery")
    plain = vpp.run(_day({}, "industry"), strategy="virtual_battery")
    assert plain.kpis.loc["process_energy_not_served_kwh", "value"] < NOISE_ABS
    assert r.kpis.loc["process_energy_not_served_kwh", "value"] > 100


def test_a_data_centre_runs_no_batch_work_while_its_cluster_is_down():
    """One site offers batch work: its batch IT power is zero at every step it is down, and
    jobs miss deadlines they meet without outages; interactive work goes on."""
    r = vpp.run(_day({"dc_batch": {"mtbf_h": 6, "mttr_h": 6}}, "data_centre"), strategy="rule_based")
    plain = vpp.run(_day({}, "data_centre"), strategy="rule_based")
    down = _down_steps(r, "dc_batch", 0)
    batch = r.fleets[("dc_batch", "p_it_batch_kw")].to_numpy()
    it = r.fleets[("dc_batch", "p_it_kw")].to_numpy()
    assert down.any() and (batch[down] == 0).all() and (it[down] > 0).all()
    assert (plain.fleets[("dc_batch", "p_it_batch_kw")].to_numpy()[down] > 0).any()
    assert r.kpis.loc["jobs_on_time_frac", "value"] < plain.kpis.loc["jobs_on_time_frac", "value"] == 1
