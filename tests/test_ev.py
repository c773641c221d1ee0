"""Tests of the EV charging fleet (vpp.assets.ev).

References are hand computations (written out in comments), the configured
distributions (scipy for a capped log-normal mean) and the form's own
constraints checked independently of the fleet's code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError
from scipy import stats

from vpp.assets import FleetContext, fleet_type
from vpp.assets.ev import EVFleet, EVParams, charge_power_kw
from vpp.exogenous.series import Exogenous
from vpp.flex import HorizonGrid, StorageLike
from vpp.timeline import Timeline

TZ = "Asia/Shanghai"
MONDAY = "2024-06-03"
STEP_S = 900
DT_H = 0.25

ABS_KW = 1e-9  # power comparisons of exact arithmetic [kW]
ABS_KWH = 1e-9  # energy comparisons of exact arithmetic [kWh]
FORM_KWH = 1e-7  # energy along a schedule built block by block [kWh]
SUM_KWH = 1e-6  # energy summed over a session's steps [kWh]
SUM_REL = 1e-9  # run totals summed in different orders [-]


# -- helpers ------------------------------------------------------------------


def _timeline(days: int, pad_steps: int = 96) -> Timeline:
    start = pd.Timestamp(MONDAY, tz=TZ)
    return Timeline(start, start + pd.Timedelta(days=days), STEP_S, pad_steps)


def _exogenous(tl: Timeline) -> Exogenous:
    """Constant weather and prices: the EV fleet uses none of them."""
    n = tl.n_total
    z = np.zeros(n)
    return Exogenous(
        index=tl.padded_index,
        step_h=tl.dt_h,
        latitude_deg=30.9,
        longitude_deg=121.93,
        altitude_m=4.0,
        solar_zenith_deg=np.full(n, 90.0),
        solar_apparent_zenith_deg=np.full(n, 90.0),
        solar_azimuth_deg=z,
        dni_extra_w_m2=np.full(n, 1361.0),
        ghi_clear_w_m2=z,
        ghi_w_m2=z,
        dni_w_m2=z,
        dhi_w_m2=z,
        temp_air_c=np.full(n, 25.0),
        pressure_pa=np.full(n, 101325.0),
        wind_speed_m_s={},
        wind_ref_height_m={},
        price_import_cny_per_kwh=np.full(n, 0.7),
        price_export_cny_per_kwh=np.full(n, 0.4),
        co2_kg_per_kwh=np.full(n, 0.58),
    )


def _fleet(params: dict, count: int, days: int = 1, seed: int = 0) -> EVFleet:
    tl = _timeline(days)
    ctx = FleetContext("ev", "n1", count, np.random.default_rng(seed), tl, _exogenous(tl))
    return EVFleet(ctx, EVParams(**params))


def _run(fleet: EVFleet, setpoint, k_from: int = 0, k_to: int | None = None):
    """Engine-like loop: events then physics.  *setpoint(k)* -> array or None.

    Returns realised power [kW] (steps x N) and the state after each step.
    """
    k_to = fleet.timeline.n_steps if k_to is None else k_to
    events = set(fleet.event_steps().tolist())
    p, states = [], []
    for k in range(k_from, k_to):
        if k in events:
            fleet.apply_events(k)
        p.append(fleet.step(k, setpoint(k)))
        states.append(fleet.state())
    return np.array(p), states


def _mixture(*components):
    return [{"weight": w, "mean_h": m, "std_h": s} for w, m, s in components]


# One known session per charger: 50 arrivals/day (P(none) = e^-50) all at
# 08:00 sharp, 3 h dwell, so the first car of the day takes the charger and
# the rest balk.  The day-before car left at 11:00 the day before.
# Arrival step a = 8 h / 0.25 h = 32, departure d = 44.
ONE_SESSION = dict(
    station_type="workplace",
    charger_kw=7.0,
    efficiency=0.9,
    sessions_per_day_weekday=50.0,
    sessions_per_day_weekend=50.0,
    arrival_weekday=_mixture((1.0, 8.0, 0.0)),
    arrival_weekend=_mixture((1.0, 8.0, 0.0)),
    dwell_h=3.0,
    energy_kwh=10.0,
    battery_kwh=100.0,
)
A, D = 32, 44
E_FULL_STEP = 0.9 * 7.0 * 0.25  # 1.575 kWh into the car per step at 7 kW
BUSY_RATE_REL = 0.1  # 3 chargers x 7 days x 50 arrivals: Poisson sd 3 %


# -- parameters and registry --------------------------------------------------


def test_registered_with_contract_attributes():
    cls = fleet_type("ev")
    assert cls is EVFleet
    assert (cls.role, cls.green, cls.curtailable) == ("load", False, False)
    assert cls.Params is EVParams
    assert cls.state_columns == (
        "ev_connected",
        "ev_energy_delivered_kwh",
        "ev_energy_unserved_kwh",
    )


@pytest.mark.parametrize(
    "station, charger_kw, efficiency",
    [("residential", 7.0, 0.95), ("workplace", 7.0, 0.95), ("public_fast", 120.0, 0.93)],
)
def test_station_defaults(station, charger_kw, efficiency):
    p = EVParams(station_type=station)
    assert p.charger_kw == pytest.approx(charger_kw)
    assert p.efficiency == pytest.approx(efficiency)
    assert p.unserved_cost_cny_per_kwh == pytest.approx(5.0)


def test_overrides_keep_other_station_defaults():
    p = EVParams(station_type="public_fast", charger_kw=60.0)
    assert p.charger_kw == pytest.approx(60.0)
    assert p.efficiency == pytest.approx(0.93)
    assert EVParams().station_type == "residential"


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"efficiency": 1.2}, "efficiency"),
        ({"charger_kw": {"dist": "normal", "mean": 7, "std": 1}}, "charger_kw"),
        ({"arrival_weekday": [{"weight": 1, "mean_h": 25, "std_h": 1}]}, "arrival_weekday"),
        ({"sessions_per_day_weekday": -1}, "sessions_per_day_weekday"),
        ({"station_type": "highway"}, "station_type"),
        ({"chargers_kw": 7}, "chargers_kw"),
    ],
)
def test_bad_params_rejected(bad, field):
    with pytest.raises(ValidationError) as err:
        EVParams(**bad)
    assert field in {str(loc[0]) for loc in (e["loc"] for e in err.value.errors())}


# -- the pure physics function ------------------------------------------------


def test_charge_power_by_hand():
    # P = 7 kW, eta = 0.9, dt = 0.25 h: 1.575 kWh per full step.
    kw = dict(charger_kw=np.array([7.0]), efficiency=np.array([0.9]), dt_h=DT_H)
    # plenty of time: the request is honoured
    assert charge_power_kw(np.array([3.0]), np.array([10.0]), np.array([12]), **kw)[
        0
    ] == pytest.approx(3.0)
    # 10 kWh, 7 steps left: 10 - 6 * 1.575 = 0.55 kWh must go in now = 0.55 / 0.225 kW
    assert charge_power_kw(np.array([0.0]), np.array([10.0]), np.array([7]), **kw)[
        0
    ] == pytest.approx(0.55 / 0.225)
    # nearly full: at most 0.1 kWh / 0.225 h-efficiency
    assert charge_power_kw(np.array([50.0]), np.array([0.1]), np.array([12]), **kw)[
        0
    ] == pytest.approx(0.1 / 0.225)
    # empty charger (nothing requested): nothing, whatever is asked
    assert charge_power_kw(np.array([np.inf]), np.array([0.0]), np.array([0]), **kw)[
        0
    ] == pytest.approx(0.0)
    # a discharge request never discharges; NaN reads as no request
    assert charge_power_kw(
        np.array([-5.0, np.nan]),
        np.array([10.0, 10.0]),
        np.array([12, 12]),
        np.array([7.0, 7.0]),
        np.array([0.9, 0.9]),
        DT_H,
    ) == pytest.approx([0.0, 0.0])


# -- hand-computed bookkeeping -----------------------------------------------


def test_single_session_events_and_table():
    f = _fleet(ONE_SESSION, count=2)
    np.testing.assert_array_equal(f.event_steps(), [A, D])
    df = f.tables()["ev_sessions"]
    assert len(df) == 2
    t0 = pd.Timestamp(MONDAY, tz=TZ)
    assert (df["arrival"] == t0 + pd.Timedelta(hours=8)).all()
    assert (df["departure"] == t0 + pd.Timedelta(hours=11)).all()
    assert str(df["arrival"].dt.tz) == TZ
    assert f.info()["p_rated_kw"] == pytest.approx(14.0)
    assert f.info()["ev_balked_arrivals"] == f.info()["ev_arrivals"] - 2


def test_zero_setpoint_laxity_override():
    # Charger 0 is asked for nothing: the override starts at step 37, where
    # 10 kWh - 6 full steps (9.45 kWh) = 0.55 kWh must go in: 0.55/0.225 kW;
    # then 7 kW for steps 38..43.  Delivered 10 kWh, grid energy 10/0.9 kWh.
    # Charger 1 is asked for 3.5 kW (0.7875 kWh/step): at step 42 it holds
    # 7.875 kWh and 2.125 - 1.575 = 0.55 kWh must go in (< 3.5 kW), at step 43
    # it holds 8.6625 kWh and the last 1.3375 kWh needs 1.3375/0.225 kW.
    f = _fleet(ONE_SESSION, count=2)
    p, states = _run(f, lambda k: np.array([0.0, -3.5]))
    want = np.zeros((96, 2))
    want[37, 0] = -0.55 / 0.225
    want[38:44, 0] = -7.0
    want[32:43, 1] = -3.5
    want[43, 1] = -1.3375 / 0.225
    np.testing.assert_allclose(p, want, atol=ABS_KW)
    np.testing.assert_allclose(-p.sum(axis=0) * DT_H, [10 / 0.9, 10 / 0.9], atol=ABS_KWH)
    df = f.tables()["ev_sessions"].sort_values("charger")
    np.testing.assert_allclose(df["delivered_kwh"], [10.0, 10.0], atol=ABS_KWH)
    np.testing.assert_allclose(df["unserved_kwh"], [0.0, 0.0], atol=ABS_KWH)
    assert df["departed"].all()
    assert states[37]["ev_energy_delivered_kwh"] == pytest.approx(0.55 + 0.7875)
    assert states[31]["ev_connected"] == 0 and states[32]["ev_connected"] == 2
    assert states[43]["ev_connected"] == 2 and states[44]["ev_connected"] == 0


def test_baseline_charges_at_full_power_from_arrival():
    # 6 full steps (9.45 kWh) from step 32, then 0.55 kWh at step 38.
    f = _fleet(ONE_SESSION, count=1)
    p, _ = _run(f, lambda k: None)
    want = np.zeros(96)
    want[32:38] = -7.0
    want[38] = -0.55 / 0.225
    np.testing.assert_allclose(p[:, 0], want, atol=ABS_KW)


def test_unreachable_request_is_partly_unserved():
    # 30 kWh in 12 steps of at most 1.575 kWh: 18.9 kWh delivered, 11.1 unserved,
    # reported by state() after the step at whose start the car left (44).
    f = _fleet({**ONE_SESSION, "energy_kwh": 30.0}, count=1)
    p, states = _run(f, lambda k: np.array([0.0]))
    want = np.zeros(96)
    want[A:D] = -7.0
    np.testing.assert_allclose(p[:, 0], want, atol=ABS_KW)
    row = f.tables()["ev_sessions"].iloc[0]
    assert row["delivered_kwh"] == pytest.approx(12 * E_FULL_STEP, abs=ABS_KWH)
    assert row["unserved_kwh"] == pytest.approx(30.0 - 12 * E_FULL_STEP, abs=ABS_KWH)
    unserved = [s["ev_energy_unserved_kwh"] for s in states]
    assert unserved[D] == pytest.approx(30.0 - 18.9, abs=ABS_KWH)
    assert sum(unserved) == pytest.approx(30.0 - 18.9, abs=ABS_KWH)


def test_session_still_plugged_at_end():
    # 20 h dwell from 08:00: Monday's car is still plugged at midnight, its
    # unserved energy unknown.  Sunday's car (08:00 to Monday 04:00, step 16)
    # is carried in, fully charged by 64 steps of uncontrolled charging.
    f = _fleet({**ONE_SESSION, "dwell_h": 20.0}, count=1)
    _run(f, lambda k: None)
    df = f.tables()["ev_sessions"].sort_values("arrival")
    assert list(df["carried_in"]) == [True, False]
    assert list(df["departed"]) == [True, False]
    np.testing.assert_allclose(df["requested_kwh"], [0.0, 10.0], atol=ABS_KWH)
    np.testing.assert_allclose(df["delivered_kwh"], [0.0, 10.0], atol=ABS_KWH)
    assert df["unserved_kwh"].iloc[0] == pytest.approx(0.0, abs=ABS_KWH)
    assert np.isnan(df["unserved_kwh"].iloc[1])
    np.testing.assert_array_equal(
        f.event_steps(), [0, 16, A]
    )  # Monday's departure is after the end


def test_balking_and_carry_in_by_hand():
    # Arrivals at 08:00 every day, 30 h dwell, 200 kWh requested, 7 kW, eta 0.9.
    # The car of Sunday (day before the start) 08:00 stays until Monday 14:00:
    # carried in, with 200 - 64 steps x 1.575 = 99.2 kWh still requested.  It
    # blocks Monday 08:00; Tuesday's car stays till Wednesday 14:00, and so on:
    # sessions from Sun (carried in), Tue, Thu, Sat; Mon, Wed, Fri, Sun balk.
    params = {**ONE_SESSION, "dwell_h": 30.0, "energy_kwh": 200.0, "battery_kwh": 200.0}
    n = 3
    f = _fleet(params, count=n, days=7)
    df = f.tables()["ev_sessions"]
    t0 = pd.Timestamp(MONDAY, tz=TZ)
    want_arrivals = [t0 + pd.Timedelta(days=d, hours=8) for d in (-1, 1, 3, 5)]
    for c in range(n):
        rows = df[df["charger"] == c].sort_values("arrival")
        assert list(rows["arrival"]) == want_arrivals
        assert list(rows["departure"]) == [t + pd.Timedelta(hours=30) for t in want_arrivals]
        assert list(rows["carried_in"]) == [True, False, False, False]
        np.testing.assert_allclose(
            rows["requested_kwh"], [200 - 64 * E_FULL_STEP, 200, 200, 200], atol=ABS_KWH
        )
    info = f.info()
    assert info["ev_balked_arrivals"] == info["ev_arrivals"] - 3 * n
    assert info["ev_arrivals"] == pytest.approx(7 * 50 * n, rel=BUSY_RATE_REL)


# -- invariants for any setpoint ---------------------------------------------

_SETPOINT = st.one_of(
    st.floats(-500, 500, allow_nan=False),
    st.sampled_from([np.inf, -np.inf, np.nan, 0.0, -120.0]),
)
BUSY_FAST = dict(
    station_type="public_fast",
    sessions_per_day_weekday=8.0,
    sessions_per_day_weekend=8.0,
    dwell_h={"dist": "lognormal", "mean": 1.0, "std": 0.8, "low": 0.1, "high": 6.0},
    energy_kwh={"dist": "lognormal", "mean": 40.0, "std": 25.0, "low": 1.0},
    charger_kw={"dist": "uniform", "low": 50.0, "high": 150.0},
)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    pattern=arrays(np.float64, (12, 6), elements=_SETPOINT),
    station=st.sampled_from(["fast", "residential"]),
)
def test_limits_hold_for_any_setpoint(seed, pattern, station):
    params = (
        BUSY_FAST
        if station == "fast"
        else {"station_type": "residential", "sessions_per_day_weekday": 2.0}
    )
    f = _fleet(params, count=6, days=1, seed=seed)
    p, _ = _run(f, lambda k: pattern[k % 12])
    df = f.tables()["ev_sessions"]
    start = np.maximum(
        ((df["arrival"] - f.timeline.start) / pd.Timedelta(seconds=STEP_S)).to_numpy(), 0
    )
    stop = ((df["departure"] - f.timeline.start) / pd.Timedelta(seconds=STEP_S)).to_numpy()
    rows = list(zip(df["charger"], start.astype(int), stop.astype(int), strict=True))
    plugged = np.zeros_like(p, dtype=bool)
    for c, a, d in rows:
        plugged[a:d, c] = True
    assert (p <= 0).all(), "never discharges"
    assert (-p <= f.charger_kw + ABS_KW).all(), "never exceeds the charger rating"
    assert (np.abs(p[~plugged]) <= ABS_KW).all(), "never charges an empty charger"
    over = df["delivered_kwh"] - df["requested_kwh"]
    assert (over <= ABS_KWH).all(), "never delivers more than asked"
    # energy bookkeeping per session: delivered = eta x grid energy while plugged
    for (c, a, d), got in zip(rows, df["delivered_kwh"], strict=True):
        assert got == pytest.approx(-f.efficiency[c] * p[a:d, c].sum() * DT_H, abs=SUM_KWH)
    # the laxity override: a request reachable at full power is always met
    done = df["departed"].to_numpy()
    c = df["charger"].to_numpy()[done]
    reach = f.efficiency[c] * f.charger_kw[c] * DT_H * (stop[done] - start[done])
    want = np.minimum(df["requested_kwh"].to_numpy()[done], reach)
    assert (df["delivered_kwh"].to_numpy()[done] >= want - SUM_KWH).all()


# -- flexibility ---------------------------------------------------------------


def test_form_by_hand():
    # One car, arrival 32, departure 44, 10 kWh.  3.5 kW for steps 32, 33 puts
    # 2 x 0.7875 = 1.575 kWh in.  Horizon from k0 = 34: four 1-step blocks
    # (34..37), then 4-step blocks 38-41, 42-45, 46-49 (16 steps, end 50).
    f = _fleet(ONE_SESSION, count=1)
    _run(f, lambda k: np.array([-3.5]), 0, 34)
    (form,) = f.flexibility(
        HorizonGrid.build(34, DT_H, 4, 16, 4), _exogenous(f.timeline).window(34, 16)
    )
    assert isinstance(form, StorageLike)
    np.testing.assert_allclose(form.p_charge_max_kw[0], [7, 7, 7, 7, 7, 3.5, 0], atol=ABS_KW)
    np.testing.assert_allclose(form.p_discharge_max_kw, 0.0)
    np.testing.assert_allclose(form.e_init_kwh, [1.575], atol=ABS_KWH)
    np.testing.assert_allclose(form.e_max_kwh[0], 10.0, atol=ABS_KWH)
    # e_min = max(1.575, 10 - 1.575 (44 - t)) at block ends t = 35, 36, 37, 38, 42, 44, 44
    # (the full-power path 1.575 (1 + t - 34) is never lower here); at t = 38
    # 10 - 6 x 1.575 = 0.55 is below what the car already holds.
    want_min = [1.575, 1.575, 1.575, 1.575, 10 - 1.575 * 2, 10.0, 10.0]
    np.testing.assert_allclose(form.e_min_kwh[0], want_min, atol=ABS_KWH)
    np.testing.assert_allclose(form.e_target_kwh, [10.0], atol=ABS_KWH)
    np.testing.assert_allclose(form.eta_charge, [0.9])
    np.testing.assert_allclose(form.shortfall_cost_cny_per_kwh, [5.0])
    # a horizon ending at step 42, before departure: target = 10 - 2 x 1.575
    (short,) = f.flexibility(
        HorizonGrid.build(34, DT_H, 4, 8, 4), _exogenous(f.timeline).window(34, 8)
    )
    np.testing.assert_allclose(short.e_target_kwh, [10 - 2 * 1.575], atol=ABS_KWH)


def test_form_of_empty_chargers_is_zero():
    f = _fleet(ONE_SESSION, count=3)
    (form,) = f.flexibility(
        HorizonGrid.build(0, DT_H, 4, 24, 4), _exogenous(f.timeline).window(0, 24)
    )
    assert form.n_assets == 3
    for name in ("p_charge_max_kw", "p_discharge_max_kw", "e_min_kwh", "e_max_kwh"):
        np.testing.assert_allclose(getattr(form, name), 0.0)
    np.testing.assert_allclose(form.e_init_kwh, 0.0)
    np.testing.assert_allclose(form.e_target_kwh, 0.0)


def _energy_path(form: StorageLike, dt_h: np.ndarray, pc: np.ndarray) -> np.ndarray:
    return form.e_init_kwh[:, None] + np.cumsum(form.eta_charge[:, None] * pc * dt_h, axis=1)


def _assert_inside(form: StorageLike, dt_h: np.ndarray, pc: np.ndarray):
    """The form's constraints, written out independently of the fleet."""
    e = _energy_path(form, dt_h, pc)
    assert (pc >= -FORM_KWH).all() and (pc <= form.p_charge_max_kw + FORM_KWH).all()
    assert (e >= form.e_min_kwh - FORM_KWH).all() and (e <= form.e_max_kwh + FORM_KWH).all()


def _schedules(form: StorageLike, dt_h: np.ndarray):
    """ASAP (as much as the form allows, each block) and ALAP (along e_min)."""
    n, h = form.p_charge_max_kw.shape
    eta = form.eta_charge
    asap, alap = np.zeros((n, h)), np.zeros((n, h))
    e_asap, e_alap = form.e_init_kwh.copy(), form.e_init_kwh.copy()
    for b in range(h):
        asap[:, b] = np.minimum(
            form.p_charge_max_kw[:, b],
            np.maximum(form.e_max_kwh[:, b] - e_asap, 0) / (eta * dt_h[b]),
        )
        alap[:, b] = np.maximum(form.e_min_kwh[:, b] - e_alap, 0) / (eta * dt_h[b])
        e_asap += eta * asap[:, b] * dt_h[b]
        e_alap += eta * alap[:, b] * dt_h[b]
    return asap, alap


@pytest.mark.parametrize("mix", ["asap", "alap", "random"])
def test_schedule_inside_form_is_delivered_exactly(mix):
    charger_kw = 7.0
    f = _fleet(
        {"station_type": "workplace", "charger_kw": charger_kw, "efficiency": 0.92},
        count=300,
        days=2,
        seed=3,
    )
    k0 = 40  # 10:00 on Monday: most cars plugged, partly charged at 2 kW
    _run(f, lambda k: np.full(300, -2.0), 0, k0)
    grid = HorizonGrid.build(k0, DT_H, 4, 96, 4)
    (form,) = f.flexibility(grid, _exogenous(f.timeline).window(k0, 96))
    dt_h = grid.dt_h
    asap, alap = _schedules(form, dt_h)
    lam = {"asap": 1.0, "alap": 0.0, "random": np.random.default_rng(0).uniform(size=(300, 1))}[mix]
    pc = lam * asap + (1 - lam) * alap
    _assert_inside(form, dt_h, pc)
    assert (form.e_init_kwh > 0).sum() > 100  # the test exercises partly charged cars

    # per step: a block's mean power goes into its steps before departure
    spb = grid.steps_per_block
    n_before = np.rint(form.p_charge_max_kw / charger_kw * spb).astype(int)
    per_step = np.zeros((300, grid.n_steps))
    live = np.zeros((300, grid.n_steps), dtype=bool)  # steps before the current car leaves
    for b in range(grid.n_blocks):
        for j in range(spb[b]):
            on = j < n_before[:, b]
            live[:, grid.starts[b] + j] = on
            per_step[on, grid.starts[b] + j] = pc[on, b] * spb[b] / n_before[on, b]
    p, _ = _run(f, lambda k: -per_step[:, k - k0], k0, k0 + grid.n_steps)
    np.testing.assert_allclose(-p.T[live], per_step[live], atol=FORM_KWH)
    # energy of each session at the end of the horizon (or at departure)
    df = f.tables()["ev_sessions"]
    e_end = _energy_path(form, dt_h, pc)[:, -1]
    plugged0 = form.e_max_kwh[:, 0] > 0
    k0_time = f.timeline.time_of(k0)
    for c in np.flatnonzero(plugged0):
        row = df[(df["charger"] == c) & (df["arrival"] <= k0_time) & (df["departure"] > k0_time)]
        assert len(row) == 1
        assert row["delivered_kwh"].iloc[0] == pytest.approx(e_end[c], abs=FORM_KWH)


# -- session statistics --------------------------------------------------------

N_STATS = 5000
STATS = dict(
    station_type="public_fast",
    sessions_per_day_weekday=0.5,
    sessions_per_day_weekend=0.0,
    arrival_weekday=_mixture((0.6, 10.0, 1.5), (0.4, 15.0, 1.0)),
    arrival_weekend=_mixture((1.0, 13.0, 2.0)),
    dwell_h={"dist": "lognormal", "mean": 1.5, "std": 0.6},
    energy_kwh={"dist": "lognormal", "mean": 20.0, "std": 10.0},
    battery_kwh=40.0,
)
# Tolerances: several standard errors of the sample statistic, plus the
# rounding to 15-min steps (zero mean, adds (0.25 h)^2/6 to the dwell variance).
RATE_REL = 0.04  # arrivals: 12,500 expected, Poisson sd 0.9 %
DWELL_ABS_H = 0.05  # sd 0.6 h / sqrt(~12,000) = 0.006 h
ENERGY_REL = 0.02  # sd ~10 kWh / sqrt(~12,000) = 0.09 kWh (0.5 %)
HOUR_ABS_H = 0.1  # sd ~2.7 h / sqrt(~12,000) = 0.025 h
SHARE_ABS = 0.02  # binomial sd sqrt(0.25 / 12,000) = 0.005


@pytest.fixture(scope="module")
def weekday_fleet():
    return _fleet(STATS, count=N_STATS, days=7, seed=11)


def _new_sessions(f: EVFleet) -> pd.DataFrame:
    df = f.tables()["ev_sessions"]
    return df[~df["carried_in"]]


def test_arrival_rate_and_day_type(weekday_fleet):
    # 5 weekdays x 0.5 arrivals/day x 5,000 chargers; no weekend arrivals
    assert weekday_fleet.info()["ev_arrivals"] == pytest.approx(5 * 0.5 * N_STATS, rel=RATE_REL)
    df = _new_sessions(weekday_fleet)
    assert (df["arrival"].dt.day_of_week < 5).all()
    weekend_only = _fleet(
        {**STATS, "sessions_per_day_weekday": 0.0, "sessions_per_day_weekend": 0.3},
        count=N_STATS,
        days=7,
        seed=12,
    )
    assert weekend_only.info()["ev_arrivals"] == pytest.approx(2 * 0.3 * N_STATS, rel=RATE_REL)
    assert (_new_sessions(weekend_only)["arrival"].dt.day_of_week >= 5).all()


def test_no_two_cars_on_one_charger(weekday_fleet):
    df = weekday_fleet.tables()["ev_sessions"].sort_values(["charger", "arrival"])
    same = df["charger"].to_numpy()[1:] == df["charger"].to_numpy()[:-1]
    gap = df["arrival"].iloc[1:].reset_index(drop=True) - df["departure"].iloc[:-1].reset_index(
        drop=True
    )
    assert (gap[same] >= pd.Timedelta(0)).all()
    assert same.sum() > 500  # chargers with several sessions exist
    info = weekday_fleet.info()
    assert len(_new_sessions(weekday_fleet)) + info["ev_balked_arrivals"] == info["ev_arrivals"]


def test_dwell_and_energy_follow_their_distributions(weekday_fleet):
    df = _new_sessions(weekday_fleet)
    dwell = (df["departure"] - df["arrival"]) / pd.Timedelta(hours=1)
    assert dwell.mean() == pytest.approx(1.5, abs=DWELL_ABS_H)
    assert dwell.std() == pytest.approx(np.sqrt(0.6**2 + 0.25**2 / 6), abs=DWELL_ABS_H)
    # requested energy: E[min(X, 40)] for the log-normal with mean 20, sd 10
    s2 = np.log1p((10 / 20) ** 2)
    law = stats.lognorm(s=np.sqrt(s2), scale=20 * np.exp(-s2 / 2))
    want = law.expect(lambda x: np.minimum(x, 40.0))
    assert df["requested_kwh"].mean() == pytest.approx(want, rel=ENERGY_REL)
    assert df["requested_kwh"].max() <= 40.0 + ABS_KWH


def test_arrival_hours_follow_the_mixture():
    # 1-step dwell: a car only balks at a same-step collision, which drops an
    # arrival with the same time as the kept one and cannot shift the mean.
    f = _fleet(
        {**STATS, "dwell_h": 0.05, "sessions_per_day_weekend": 1.0}, count=N_STATS, days=7, seed=13
    )
    df = _new_sessions(f)
    hours = df["arrival"].dt.hour + df["arrival"].dt.minute / 60
    weekend = df["arrival"].dt.day_of_week >= 5
    assert hours[~weekend].mean() == pytest.approx(0.6 * 10.0 + 0.4 * 15.0, abs=HOUR_ABS_H)
    assert hours[weekend].mean() == pytest.approx(13.0, abs=HOUR_ABS_H)
    # weekday share before 12:30 on the step grid = continuous arrivals before
    # 12:22:30 (they round down): 0.6 P(N(10, 1.5) < t) + 0.4 P(N(15, 1) < t)
    t = 12.375
    want = 0.6 * stats.norm.cdf(t, 10, 1.5) + 0.4 * stats.norm.cdf(t, 15, 1.0)
    assert (hours[~weekend] < 12.5).mean() == pytest.approx(want, abs=SHARE_ABS)


# -- determinism -----------------------------------------------------------------


def test_same_seed_same_sessions_different_seed_different():
    a = _fleet({"station_type": "residential"}, count=200, days=3, seed=5).tables()["ev_sessions"]
    b = _fleet({"station_type": "residential"}, count=200, days=3, seed=5).tables()["ev_sessions"]
    c = _fleet({"station_type": "residential"}, count=200, days=3, seed=6).tables()["ev_sessions"]
    pd.testing.assert_frame_equal(a, b)
    assert len(a) != len(c) or not a[["charger", "arrival"]].equals(c[["charger", "arrival"]])


@pytest.mark.parametrize("station", ["residential", "workplace", "public_fast"])
def test_default_stations_run_and_balance(station):
    # Energy into cars = eta x grid energy, summed over the run and the table.
    f = _fleet({"station_type": station}, count=100, days=2, seed=1)
    p, states = _run(f, lambda k: None)
    df = f.tables()["ev_sessions"]
    delivered = sum(s["ev_energy_delivered_kwh"] for s in states)
    assert delivered == pytest.approx(df["delivered_kwh"].sum(), rel=SUM_REL)
    eta = f.efficiency[0]
    assert delivered == pytest.approx(-eta * p.sum() * DT_H, rel=SUM_REL)
    assert len(df) > 0
