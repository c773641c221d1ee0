"""Random outages of assets ([outages.NAME], vpp.outages): drawn at the asked rate, felt by the
physics, seen by the strategy through telemetry, refused for types without a model."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import scenario

import vpp
from vpp.errors import ScenarioError
from vpp.outages import OutageDraw


def _day(outages: dict, **more):
    return scenario({"time": {"start": "2024-07-22T00:00:00", "end": "2024-07-23T00:00:00"},
                     "outages": outages, **more})


def test_assets_are_down_for_the_share_of_time_asked():
    """Alternating renewal: long-run share down = MTTR / (MTBF + MTTR) = 10 / 40."""
    draw = OutageDraw(200, mtbf_steps=30.0 / 0.25, mttr_steps=10.0 / 0.25, n_steps=4000,
                      rng=np.random.default_rng(1))
    share = np.mean([draw.down(k).mean() for k in range(0, 4000, 7)])
    assert share == pytest.approx(0.25, abs=0.02)


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


@pytest.mark.parametrize("fleet, words", [
    ("cooling", "fleet type 'tcl' has no outage model yet (battery, building, ev, pv have)"),
    ("wind", "wind fleets draw their own turbine outages"),
    ("nope", "unknown fleet 'nope'"),
])
def test_outages_of_a_fleet_without_a_model_are_refused(fleet, words):
    acs = {"name": "cooling", "type": "tcl", "node": "city", "count": 10}
    with pytest.raises(ScenarioError, match="outages") as e:
        vpp.validate(_day({fleet: {"mtbf_h": 100, "mttr_h": 5}}, fleets=[acs]))
    assert words in str(e.value)


def test_a_charger_out_of_order_charges_nothing_and_its_cars_leave_short():
    r = vpp.run(_day({"home_chargers": {"mtbf_h": 6, "mttr_h": 12}}, output={"per_asset": ["home_chargers"]}),
                strategy="virtual_battery")
    down = _zero_while_down(r, "home_chargers")
    plain = vpp.run(_day({}), strategy="virtual_battery").kpis
    assert down.any() and plain.loc["ev_energy_not_served_kwh", "value"] == 0
    assert r.kpis.loc["ev_energy_not_served_kwh", "value"] > 0
