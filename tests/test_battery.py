"""Battery physics: hand-computed energy bookkeeping, limits, and form consistency."""

import numpy as np
import pytest
from _exo_helpers import make_context, make_exogenous
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.assets.battery import BatteryFleet, BatteryParams
from vpp.flex import HorizonGrid

E_TOL = 1e-9   # kWh, relative bookkeeping tolerance is 1e-9 of the capacity


def fleet(n=1, steps=8, **kw):
    params = BatteryParams(**{"p_max_kw": 100.0, "e_max_kwh": 200.0, **kw})
    exo = make_exogenous(steps, step_min=15)
    return BatteryFleet(make_context(exo, n), params)


def test_charge_and_discharge_by_hand():
    # 200 kWh, SOC 0.5 -> 100 kWh.  Charge 80 kW for 15 min at eta 0.9: +18 kWh.
    # Discharge 60 kW for 15 min at eta 0.8: -18.75 kWh.  No self-discharge.
    b = fleet(eta_charge=0.9, eta_discharge=0.8, self_discharge_per_h=0.0)
    assert b.step(0, np.array([-80.0]))[0] == pytest.approx(-80.0)
    assert b.e_kwh[0] == pytest.approx(118.0, abs=E_TOL)
    assert b.step(1, np.array([60.0]))[0] == pytest.approx(60.0)
    assert b.e_kwh[0] == pytest.approx(118.0 - 18.75, abs=E_TOL)


def test_self_discharge_is_exponential_decay():
    # sigma = 0.01 / h over 4 idle 15-minute steps: 100 * exp(-0.01) kWh.
    b = fleet(self_discharge_per_h=0.01)
    for k in range(4):
        b.step(k, np.array([0.0]))
    assert b.e_kwh[0] == pytest.approx(100.0 * np.exp(-0.01), abs=E_TOL)


def test_soc_window_clips_the_setpoint():
    # SOC max 0.9 -> 180 kWh; from 100 kWh at eta 1 a 15-min step can add at most
    # min(100 kW, 80 kWh / 0.25 h) = 100 kW; four steps then stop at 180 kWh.
    b = fleet(eta_charge=1.0, eta_discharge=1.0, self_discharge_per_h=0.0)
    p = [b.step(k, np.array([-1e6]))[0] for k in range(5)]
    np.testing.assert_allclose(p, [-100, -100, -100, -20, 0], atol=1e-9)
    assert b.e_kwh[0] == pytest.approx(180.0, abs=E_TOL)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=12),
       st.floats(0.5, 1.0), st.floats(0.5, 1.0), st.floats(0.0, 0.05))
def test_limits_hold_for_any_setpoint(setpoints, eta_c, eta_d, sigma):
    b = fleet(eta_charge=eta_c, eta_discharge=eta_d, self_discharge_per_h=sigma, steps=len(setpoints))
    for k, sp in enumerate(setpoints):
        e_before = b.e_kwh.copy()
        p = b.step(k, np.array([sp]))
        assert abs(p[0]) <= 100.0 + 1e-9
        # never discharged below the SOC window, never charged above it
        # (self-discharge alone may take a resting battery below soc_min)
        assert b.e_kwh[0] >= b.e_lo[0] - 1e-9 or p[0] <= 0.0
        assert b.e_kwh[0] <= b.e_hi[0] + 1e-9
        # bookkeeping: energy change equals the independent formula
        inflow = -p[0] * eta_c if p[0] < 0 else -p[0] / eta_d
        assert b.e_kwh[0] == pytest.approx(e_before[0] * np.exp(-sigma * 0.25) + inflow * 0.25, abs=1e-9)


def test_uncontrolled_battery_is_idle():
    b = fleet()
    assert b.step(0, None)[0] == 0.0


def test_a_schedule_inside_the_form_is_delivered():
    b = fleet(n=2, eta_charge=0.95, eta_discharge=0.9, self_discharge_per_h=0.001)
    g = HorizonGrid(0, np.ones(4, dtype=int), 0.25)
    form = b.flexibility(g, None)[0]
    schedule = np.array([[-100.0, -100.0, 50.0, 100.0], [100.0, 100.0, -40.0, 0.0]])
    for t in range(4):
        assert np.all(schedule[:, t] <= form.p_discharge_max_kw[:, t] + 1e-9)
        assert np.all(-schedule[:, t] <= form.p_charge_max_kw[:, t] + 1e-9)
        np.testing.assert_allclose(b.step(t, schedule[:, t]), schedule[:, t])


def test_the_terminal_target_binds_at_the_runs_end_not_after_post_run_self_discharge():
    """A window reaching 23 hours past the end of an 8-step run: the planned energy
    at the run's end is the target itself (100 kWh), not the target grown by the
    post-run blocks' self-discharge (100 exp(0.01 x 23) = 126 kWh), and it stays
    there to the horizon's end (no power and no loss after the run)."""
    from vpp.dispatch import DispatchProblem, NodeLimits
    from vpp.flex import FixedProfile
    from vpp.optimizer.model import DispatchModel, Weights

    b = fleet(self_discharge_per_h=0.01)
    g = HorizonGrid.build(k0=4, step_h=0.25, fine_steps=4, total_steps=96, coarse_steps=4)
    h = g.n_blocks
    pr = DispatchProblem(g, (NodeLimits(b.node, 1e4, 1e4),),
                         (*b.flexibility(g, None), FixedProfile("l", b.node, -np.ones(h))),
                         np.full(h, 0.3), np.zeros(h), np.zeros(h), np.zeros(1), 0.0, "vpp")
    dm = DispatchModel(pr, Weights(carbon_price_cny_per_t=0.0))
    assert dm.solve()[0] == "optimal"
    e = dm.storage.energy(dm.lp)[0]
    assert e[4] == pytest.approx(100.0, abs=1e-6)          # the run ends after 4 more steps
    assert e[-1] == pytest.approx(e[4], abs=1e-6)


def burning_surplus(exclusive: bool):
    """A plan for a 90 %-efficient battery beside 100 kW of PV that may not export,
    with a 0.05 CNY/kWh premium on green power used rather than curtailed: cycling
    the battery within a block would burn 19 % of what it charges as losses,
    'using' PV that must otherwise be curtailed.  Returns the fleet, its plan of
    net power (N, H) and planned energies (N, H + 1), and the plan's objective."""
    from vpp.dispatch import DispatchProblem, NodeLimits
    from vpp.flex import CurtailableSource
    from vpp.optimizer.model import DispatchModel, Weights

    b = fleet(steps=8, p_max_kw=50.0, e_max_kwh=100.0, eta_charge=0.9, eta_discharge=0.9,
              throughput_cost_cny_per_kwh=0.0, self_discharge_per_h=0.0)
    g = HorizonGrid(0, np.ones(8, dtype=int), 0.25)
    pv = CurtailableSource("pv", b.node, np.full((1, 8), 100.0))
    pr = DispatchProblem(g, (NodeLimits(b.node, 1e4, 0.0),), (*b.flexibility(g, None), pv), np.full(8, 0.3),
                         np.zeros(8), np.zeros(8), np.zeros(1), 0.0, "vpp")
    dm = DispatchModel(pr, Weights(carbon_price_cny_per_t=0.0, curtailment_penalty_cny_per_kwh=0.05))
    status, _ = dm.solve() if exclusive else dm.lp.solve()
    assert status == "optimal"
    return b, dm.setpoints(8)[b.name], dm.storage.energy(dm.lp), dm.lp.objective


def realised_energy(b, plan):
    out = [b.e_kwh.copy()]
    for k in range(plan.shape[1]):
        b.step(k, plan[:, k])
        out.append(b.e_kwh.copy())
    return np.column_stack(out)


def test_a_plan_that_would_burn_surplus_in_losses_is_realised_exactly():
    """Plan and physics agree: the plan charges and discharges no battery at once
    (which it would if allowed: its LP relaxation is cheaper), and stepping the
    battery with the plan's net power gives exactly the planned energies."""
    b, plan, e_plan, objective = burning_surplus(exclusive=True)
    _, _, _, relaxed = burning_surplus(exclusive=False)
    assert relaxed < objective - 1e-3                      # burning would have paid
    np.testing.assert_allclose(realised_energy(b, plan), e_plan, atol=1e-6)


def test_the_realisation_check_fails_on_a_plan_that_burns():
    """The check above can fail: the LP's own plan, charging and discharging at once,
    leaves the battery with energy it never planned."""
    b, plan, e_plan, _ = burning_surplus(exclusive=False)
    assert np.abs(realised_energy(b, plan) - e_plan).max() > 1.0
