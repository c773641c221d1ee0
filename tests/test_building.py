"""Building RC model against its analytic step response and an ODE solver; comfort and limits."""

import numpy as np
import pytest
from _exo_helpers import make_context, make_exogenous
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from vpp.assets.building import BuildingFleet, BuildingParams, rc_step
from vpp.flex import HorizonGrid

T_TOL = 1e-9        # degC, exact discretisation vs closed form
ODE_TOL = 1e-5      # degC, vs a numerical ODE solution


def test_step_response_matches_the_analytic_solution():
    # C dT/dt = UA (T_out - T) + Q - COP P: constant inputs give
    # T(t) = T_eq + (T0 - T_eq) exp(-t UA / C), T_eq = T_out + (Q - COP P) / UA.
    ua, c, t_out, q, cop, p, t0 = 80.0, 1000.0, 34.0, 500.0, 3.5, 300.0, 24.0
    t_eq = t_out + (q - cop * p) / ua
    temp, dt = t0, 0.25
    for k in range(1, 97):
        temp = rc_step(temp, t_out, q, p, -cop, ua, c, dt)
        assert temp == pytest.approx(t_eq + (t0 - t_eq) * np.exp(-k * dt * ua / c), abs=T_TOL)


def test_time_varying_inputs_match_an_ode_solver():
    ua, c, cop = 60.0, 700.0, 3.0
    t_out = lambda t: 30 + 5 * np.sin(2 * np.pi * t / 24)  # noqa: E731
    dt = 0.25
    steps = 48
    power = np.linspace(0, 400, steps)
    gain = np.linspace(800, 200, steps)
    temp = 25.0
    for k in range(steps):
        # zero-order hold of T_out over the step: use the step mean, like the engine
        sol = solve_ivp(lambda t, y, k=k: [(ua * (t_out(t) - y[0]) + gain[k] - cop * power[k]) / c],
                        (k * dt, (k + 1) * dt), [temp], rtol=1e-10, atol=1e-12)
        mean_out = np.mean(t_out(np.linspace(k * dt, (k + 1) * dt, 2001)))
        ours = rc_step(temp, mean_out, gain[k], power[k], -cop, ua, c, dt)
        # the ODE with a varying T_out differs from the held mean only by a tiny amount
        assert ours == pytest.approx(sol.y[0, -1], abs=5e-3)
        temp = sol.y[0, -1]
    # and with T_out held constant the two agree to solver precision
    sol = solve_ivp(lambda t, y: [(ua * (31.0 - y[0]) + 400.0 - cop * 100.0) / c], (0, 3.0), [25.0],
                    rtol=1e-12, atol=1e-12)
    assert rc_step(25.0, 31.0, 400.0, 100.0, -cop, ua, c, 3.0) == pytest.approx(sol.y[0, -1], abs=ODE_TOL)


def office(steps=96, start="2024-07-15 00:00", temp_air_c=33.0, ghi=600.0, **kw):
    exo = make_exogenous(steps, start=start, temp_air_c=temp_air_c, ghi_w_m2=ghi)
    params = BuildingParams(building_type="office", floor_area_m2=40_000, base_load_noise_frac=0.0, **kw)
    return BuildingFleet(make_context(exo, 1), params)


def test_uncontrolled_building_holds_the_cooling_setpoint_when_occupied():
    # The thermostat reaches 26 degC whenever its capacity allows (the morning
    # pull-down from the 30 degC setback can take more than its start-up hour).
    b = office()
    held = 0
    for k in range(96):
        b.step(k, None)
        if b._calendar.conditioned[k]:
            if b.p_hvac_kw[0] < b.p_max_kw[0] - 1e-9:
                assert b.temp_c[0] == pytest.approx(26.0, abs=1e-6)
                held += 1
            else:
                assert b.temp_c[0] > 26.0
    assert held > 30


def test_setpoint_requests_never_break_the_comfort_band_or_the_hvac_rating():
    b = office()
    rng = np.random.default_rng(1)
    for k in range(96):
        request = rng.choice([0.0, -1e9, 1e9, -rng.uniform(0, 2000)])
        p = b.step(k, np.array([request]))
        assert -(b.p_max_kw[0] + b.p_base_kw[0]) - 1e-9 <= p[0] <= -b.p_base_kw[0] + 1e-9
        if b._calendar.occupied[k]:
            assert 24.0 - 1e-6 <= b.temp_c[0] <= 26.0 + 1e-6


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=4, max_size=12),
       st.floats(20.0, 38.0))
def test_any_setpoint_keeps_power_within_rating(requests, t_out):
    b = office(steps=len(requests), temp_air_c=t_out)
    for k, r in enumerate(requests):
        b.step(k, np.array([r]))
        assert 0.0 <= b.p_hvac_kw[0] <= b.p_max_kw[0] + 1e-9
        assert np.isfinite(b.temp_c[0])


def test_thermal_form_predicts_the_physics_with_a_perfect_forecast():
    b = office(steps=16, start="2024-07-15 06:00")
    g = HorizonGrid(0, np.ones(8, dtype=int), 0.25)
    forecast = b.exo.window(0, g.n_steps)
    thermal, fixed = b.flexibility(g, forecast)
    schedule = np.array([800, 800, 600, 0, 0, 200, 400, 100.0])
    temp = thermal.temp_init_c[0]
    for t in range(8):
        temp = thermal.a[0, t] * temp + thermal.b_k_per_kw[0, t] * schedule[t] + thermal.d_k[0, t]
        p = b.step(t, np.array([-schedule[t]]))
        assert b.p_hvac_kw[0] == pytest.approx(schedule[t])
        assert b.temp_c[0] == pytest.approx(temp, abs=1e-9)
        assert -p[0] - schedule[t] == pytest.approx(-fixed.p_kw[t], rel=1e-12)


def test_shoulder_months_have_no_hvac():
    b = office(start="2024-04-15 00:00", temp_air_c=30.0)
    b.step(40, None)
    assert b.p_hvac_kw[0] == 0.0
