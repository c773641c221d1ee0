"""Building thermal model against analytic solutions and an ODE solver; COP; comfort and limits."""

import numpy as np
import pytest
from _exo_helpers import make_context, make_exogenous
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from vpp.assets.building import COOLING, HEATING, BuildingFleet, BuildingParams
from vpp.assets.thermal import RC2, cop_cooling, cop_heating
from vpp.flex import HorizonGrid

T_TOL = 1e-8        # degC, exact discretisation vs closed form
ODE_TOL = 1e-6      # degC, vs a numerical ODE solution

# one network, 40,000 m2 with the fleet's default per-area values
AREA = 40_000.0
NET = RC2(g_ao_kw_per_k=np.array([1.5 * AREA / 1e3]), g_am_kw_per_k=np.array([22.75 * AREA / 1e3]),
          g_mo_kw_per_k=np.array([0.5 * AREA / 1e3]), c_air_kwh_per_k=np.array([20 * AREA / 3600]),
          c_mass_kwh_per_k=np.array([110 * AREA / 3600]))


def analytic_step_response(t_h, x0, t_out, q_air, q_mass, net=NET):
    """Closed form for constant inputs: x(t) = x_eq + sum_i c_i v_i exp(l_i t), with the
    eigenvalues from the quadratic formula and the equilibrium from Cramer's rule."""
    ca, cm = net.c_air_kwh_per_k[0], net.c_mass_kwh_per_k[0]
    gao, gam, gmo = net.g_ao_kw_per_k[0], net.g_am_kw_per_k[0], net.g_mo_kw_per_k[0]
    a11, a12, a21, a22 = -(gao + gam) / ca, gam / ca, gam / cm, -(gam + gmo) / cm
    f1, f2 = (gao * t_out + q_air) / ca, (gmo * t_out + q_mass) / cm
    det = a11 * a22 - a12 * a21
    x_eq = np.array([(-f1 * a22 + f2 * a12) / det, (-a11 * f2 + a21 * f1) / det])
    tr = a11 + a22
    disc = np.sqrt(tr ** 2 - 4 * det)
    lams = np.array([(tr + disc) / 2, (tr - disc) / 2])
    vecs = np.array([[a12, lam - a11] for lam in lams]).T          # columns: eigenvectors
    c = np.linalg.solve(vecs, np.asarray(x0) - x_eq)
    return x_eq + (vecs * (c * np.exp(lams * t_h))).sum(axis=1)


def test_step_response_matches_the_analytic_solution():
    phi, gamma = NET.discrete(0.25)
    u = np.array([34.0, 900.0, 300.0])                  # T_out, air gains, mass gains
    x = np.array([24.0, 25.0])
    for k in range(1, 200):
        x = phi[0] @ x + gamma[0] @ u
        np.testing.assert_allclose(x, analytic_step_response(0.25 * k, [24.0, 25.0], *u), atol=T_TOL)


def test_time_varying_inputs_match_an_ode_solver():
    a, b = NET.continuous()
    dt, steps = 0.25, 48
    q_air = np.linspace(1500, 200, steps)
    x = np.array([25.0, 26.0])
    for k in range(steps):
        u = np.array([30 + 4 * np.sin(k / 8), q_air[k], 0.3 * q_air[k]])
        phi, gamma = NET.discrete(dt)
        ours = phi[0] @ x + gamma[0] @ u
        sol = solve_ivp(lambda t, y, u=u: a[0] @ y + b[0] @ u, (0, dt), x, rtol=1e-11, atol=1e-12, method="Radau")
        np.testing.assert_allclose(ours, sol.y[:, -1], atol=ODE_TOL)
        x = ours


def test_steady_state_conductance():
    # in steady state with no gains, heat flows through g_ao and the series g_am, g_mo
    expected = (1.5 + 22.75 * 0.5 / (22.75 + 0.5)) * AREA / 1e3
    assert NET.ua_total_kw_per_k[0] == pytest.approx(expected, rel=1e-12)


def test_cop_models_by_hand():
    # cooling: COP scales with the inverse lift, lift = T_out + 8 K - 5 degC; at 35 degC it is the design 3.5
    assert cop_cooling(35.0, 3.5) == pytest.approx(3.5, rel=1e-12)
    assert cop_cooling(28.0, 3.5) == pytest.approx(3.5 * 38.0 / 31.0, rel=1e-12)
    assert cop_cooling(-40.0, 3.5) == pytest.approx(9.0)                  # capped
    # heating: COP ~ T_cond / lift, lift = 45 degC - (T_out - 5 K); at 7 degC it is the design 3.0
    assert cop_heating(7.0, 3.0) == pytest.approx(3.0, rel=1e-12)
    assert cop_heating(-5.0, 3.0) == pytest.approx(3.0 * 43.0 / 55.0, rel=1e-12)


def office(steps=96, start="2024-07-15 00:00", temp_air_c=33.0, ghi=600.0, **kw):
    exo = make_exogenous(steps, start=start, temp_air_c=temp_air_c, ghi_w_m2=ghi)
    params = BuildingParams(building_type="office", floor_area_m2=AREA, base_load_noise_frac=0.0, **kw)
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
        if b._calendar.occupied[k] and b.p_hvac_kw[0] < b.p_max_kw[0] - 1e-9:
            assert 24.0 - 1e-6 <= b.temp_c[0] <= 26.0 + 1e-6
        if not b._calendar.occupied[k]:
            assert b.temp_c[0] >= 24.0 - 1e-6          # pre-cooling stops at the band's floor


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=4, max_size=12),
       st.floats(20.0, 38.0))
def test_any_setpoint_keeps_power_within_rating(requests, t_out):
    b = office(steps=len(requests), temp_air_c=t_out)
    for k, r in enumerate(requests):
        b.step(k, np.array([r]))
        assert 0.0 <= b.p_hvac_kw[0] <= b.p_max_kw[0] + 1e-9
        assert np.isfinite(b.x_c).all()


def test_thermal_form_predicts_the_physics_with_a_perfect_forecast():
    b = office(steps=16, start="2024-07-15 06:00")
    g = HorizonGrid(0, np.ones(8, dtype=int), 0.25)
    thermal, fixed = b.flexibility(g, b.exo.window(0, g.n_steps))
    assert thermal.n_states == 2
    schedule = np.array([800, 800, 600, 0, 0, 200, 400, 100.0])
    x = thermal.temp_init_c[0]
    for t in range(8):
        x = thermal.a[0, t] @ x + thermal.b_k_per_kw[0, t] * schedule[t] + thermal.d_k[0, t]
        p = b.step(t, np.array([-schedule[t]]))
        assert b.p_hvac_kw[0] == pytest.approx(schedule[t])
        np.testing.assert_allclose(b.x_c[0], x, atol=1e-9)
        assert -p[0] - schedule[t] == pytest.approx(-fixed.p_kw[t], rel=1e-12)


def test_coarse_blocks_match_the_physics_for_constant_inputs():
    # a one-hour block with inputs constant over the hour equals four 15-minute steps
    b = office(steps=8, start="2024-07-15 02:00", ghi=0.0)
    g = HorizonGrid(0, np.array([4, 4]), 0.25)
    thermal, _ = b.flexibility(g, b.exo.window(0, g.n_steps))
    x = thermal.a[0, 0] @ thermal.temp_init_c[0] + thermal.d_k[0, 0]          # no HVAC
    for k in range(4):
        b.step(k, np.array([0.0]))
    np.testing.assert_allclose(b.x_c[0], x, atol=1e-9)


def test_a_hot_shoulder_month_is_cooled_by_need_and_not_by_the_calendar():
    """April at 30 degC: the changeover cools the occupied office to 26 degC (the top of
    the 20-26 degC band between the seasons); the calendar's mode leaves it off."""
    need = office(start="2024-04-15 00:00", temp_air_c=30.0)
    season = office(start="2024-04-15 00:00", temp_air_c=30.0, hvac_mode="season")
    for k in range(48):
        need.step(k, None)
        season.step(k, None)
    assert need.p_hvac_kw[0] > 0 and need.mode[0] == COOLING
    assert need.temp_c[0] == pytest.approx(26.0, abs=1e-6)
    assert season.p_hvac_kw[0] == 0.0 and season.temp_c[0] > 26.0


def test_a_summer_day_runs_the_same_whatever_the_mode_rule():
    """A July day between 23 and 33 degC needs no heating and no outdoor air cools the
    room to its band: the changeover and the calendar's mode run identically."""
    t_out = 28.0 + 5.0 * np.sin(2 * np.pi * (np.arange(96) / 96 - 0.375))
    need = office(temp_air_c=t_out)
    season = office(temp_air_c=t_out, hvac_mode="season")
    for k in range(96):
        sp = need.baseline_setpoint(k)
        np.testing.assert_array_equal(sp, season.baseline_setpoint(k))
        np.testing.assert_array_equal(need.step(k, sp), season.step(k, sp))
        np.testing.assert_array_equal(need.x_c, season.x_c)


def winter_office(steps=96, **kw):
    return office(steps=steps, start="2024-01-15 00:00", temp_air_c=8.0, ghi=400.0, base_load_peak_w_per_m2=60.0,
                  **kw)


def test_an_office_overheating_in_winter_is_cooled_inside_its_band():
    """60 W/m2 of office load at 8 degC outdoors overheats the rooms above the heating
    season's 20-22 degC band: with the changeover no occupied step ends outside it;
    held to the heating mode (the calendar's), the office runs too hot."""
    need, season = winter_office(), winter_office(hvac_mode="season")
    hot_need = hot_season = 0.0
    for k in range(96):
        need.step(k, None)
        season.step(k, None)
        hot_need += need.state()["comfort_too_hot_kh"]
        hot_season += season.state()["comfort_too_hot_kh"]
        if need._calendar.occupied[k]:
            assert 20.0 - 1e-6 <= need.temp_c[0] <= 22.0 + 1e-6
    assert hot_need == 0.0 and hot_season > 1.0
    assert (need.mode == COOLING).all()                      # it ended the day cooling


def test_the_economiser_cools_with_outdoor_air_when_it_is_cool_enough():
    """Cooling at 8 degC outdoors with the band's floor at 20 degC uses outdoor air (COP 12);
    at 18 degC (less than 3 K below 20) the chiller's COP; without economiser, the chiller's."""
    b = winter_office()
    cool = np.array([COOLING])
    assert b._heat_per_kw(cool, 8.0, 20.0)[0] == pytest.approx(-12.0)
    assert b._heat_per_kw(cool, 18.0, 20.0)[0] == pytest.approx(-cop_cooling(18.0, 3.5))
    assert winter_office(economiser_cop=0.0)._heat_per_kw(cool, 8.0, 20.0)[0] == pytest.approx(
        -cop_cooling(8.0, 3.5))
    assert b._heat_per_kw(np.array([HEATING]), 8.0, 20.0)[0] == pytest.approx(cop_heating(8.0, 3.0))


def test_the_thermal_form_follows_the_changeover_with_a_perfect_forecast():
    """A winter morning that starts heating and ends cooling: the form's modes are the
    physics' and its states the physics' at the thermostat's power."""
    b = winter_office(steps=40)
    for k in range(28):                                       # to 07:00, heating towards the morning
        b.step(k, None)
    g = HorizonGrid(28, np.ones(12, dtype=int), 0.25)
    thermal, _ = b.flexibility(g, b.exo.window(28, g.n_steps))
    x = thermal.temp_init_c[0]
    modes = []
    for t in range(12):
        b.step(28 + t, None)
        modes.append(int(b.mode[0]))
        x = thermal.a[0, t] @ x + thermal.b_k_per_kw[0, t] * b.p_hvac_kw[0] + thermal.d_k[0, t]
        np.testing.assert_allclose(b.x_c[0], x, atol=1e-9)
    assert HEATING in modes and COOLING in modes
    assert b.p_hvac_kw[0] <= thermal.p_max_kw[0, -1]


def test_daily_noise_is_the_same_whatever_is_asked_first():
    from vpp.assets.building import DailyAR1

    a = DailyAR1(np.random.default_rng(3), 4, 0.9, 0.05, 96)
    b = DailyAR1(np.random.default_rng(3), 4, 0.9, 0.05, 96)
    ahead = a.values(np.arange(100, 300))              # a forecast looking two days ahead
    stepwise = np.concatenate([b.values(np.array([k])) for k in range(0, 300)], axis=1)[:, 100:300]
    np.testing.assert_array_equal(ahead, stepwise)
    long = DailyAR1(np.random.default_rng(4), 2000, 0.9, 0.05, 96).values(np.arange(96 * 30))
    assert abs(long.std() - 0.05) < 0.005             # stationary standard deviation
