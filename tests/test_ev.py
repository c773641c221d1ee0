"""Tests of the EV charging fleet (vpp.assets.ev).

References are hand computations (written out in comments), scipy's ODE
solver for the taper, scipy for a capped log-normal mean, and the form's own
constraints checked independently of the fleet's code.  The queue runs as in
the engine: :func:`vpp.queueing.start_queue` in a SimPy environment with the
fleet stepped in the clock phase (:class:`Harness`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError
from scipy import stats
from scipy.integrate import solve_ivp

import vpp
from vpp.assets import FleetContext, fleet_type
from vpp.assets.ev import (
    EVFleet,
    EVParams,
    allocate_station_kw,
    energy_window_kwh,
    read_sessions_csv,
    soc_after_max_charge,
    soc_before_max_charge,
)
from vpp.assets.ev_sessions import _car_is_back
from vpp.assets.ev_station import STATION_POLICIES
from vpp.errors import ScenarioError
from vpp.exogenous.series import Exogenous
from vpp.flex import HorizonGrid, SharedLimit, StorageLike
from vpp.queueing import start_queue
from vpp.sim import CLOCK, DISPATCH, at_step
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
ODE_SOC = 1e-8  # closed-form taper against scipy's ODE solver (rtol 1e-11) [-]
SOC_TOL = 1e-9  # state-of-charge bounds [-]


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


class Harness:
    """The engine's order at each step: queue events, then dispatch, then the clock."""

    def __init__(self, fleet: EVFleet):
        self.fleet, self.env, self.k = fleet, simpy.Environment(), 0
        tl = fleet.timeline
        start_queue(self.env, fleet, fleet.arrival_requests(), tl.step_s, tl.n_steps)
        self.p, self.states = [], []

    def run(self, k_to: int, setpoint, on_dispatch=None):
        """Steps ``k .. k_to - 1``; *setpoint(k)* -> array or None; *on_dispatch(k)* before each."""
        step_s = self.fleet.timeline.step_s

        def clock(k_from):
            for k in range(k_from, k_to):
                if on_dispatch is not None:
                    yield at_step(self.env, k, step_s, DISPATCH)
                    on_dispatch(k)
                yield at_step(self.env, k, step_s, CLOCK)
                self.p.append(self.fleet.step(k, setpoint(k)))
                self.states.append(self.fleet.state())

        self.env.process(clock(self.k))
        self.env.run(until=k_to * step_s)
        self.k = k_to
        return np.array(self.p), self.states


def _run(fleet: EVFleet, setpoint, k_to: int | None = None):
    """Run from the start; returns realised power [kW] (steps x N) and the states."""
    return Harness(fleet).run(fleet.timeline.n_steps if k_to is None else k_to, setpoint)


def _t(hhmm: str, day: str = MONDAY) -> str:
    return f"{day}T{hhmm}+08:00"


def _csv(tmp_path, rows, header="arrival,departure,energy_kwh,max_power_kw,station", name="s.csv"):
    path = tmp_path / name
    lines = ["# sessions written by the test", header] + [",".join(str(c) for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _mixture(*components):
    return [{"weight": w, "mean_h": m, "std_h": s} for w, m, s in components]


def _steps(series: pd.Series) -> np.ndarray:
    return ((series - pd.Timestamp(MONDAY, tz=TZ)) / pd.Timedelta(seconds=STEP_S)).to_numpy()


# One known session per charger: 50 arrivals/day (P(none) = e^-50) all at
# 08:00 sharp, 3 h dwell, one charger per station and no patience, so the
# first car of the day takes the charger and the rest balk.  Arrival step
# a = 8 h / 0.25 h = 32, departure d = 44.  A 100 kWh battery at 0 % never
# reaches the taper here (the knee s_x = 0.8 + (1 - 0.063/1.5) / 4.75 > 1).
ONE_SESSION = dict(
    station_type="workplace",
    charger_kw=7.0,
    efficiency=0.9,
    chargers_per_station=1,
    patience_min=0.0,
    sessions_per_day_weekday=50.0,
    sessions_per_day_weekend=50.0,
    arrival_weekday=_mixture((1.0, 8.0, 0.0)),
    arrival_weekend=_mixture((1.0, 8.0, 0.0)),
    dwell_h=3.0,
    energy_kwh=10.0,
    battery_kwh=100.0,
    arrival_soc_frac=0.0,
)
A, D = 32, 44
E_FULL_STEP = 0.9 * 7.0 * 0.25  # 1.575 kWh into the car per step at 7 kW
BUSY_RATE_REL = 0.1  # 3 chargers x 7 days x 50 arrivals: Poisson sd 3 %

# Sessions replayed from a file: 7 kW chargers at efficiency 0.9, a 100 kWh
# battery at 0 % (drawn values fixed), patience set per test.
REPLAY = dict(
    station_type="workplace",
    charger_kw=7.0,
    efficiency=0.9,
    chargers_per_station=1,
    battery_kwh=100.0,
    arrival_soc_frac=0.0,
    sessions_csv_shift_days=0,
)


def _replay(tmp_path, rows, count=1, header="arrival,departure,energy_kwh,max_power_kw,station", **params):
    path = _csv(tmp_path, rows, header)
    return _fleet({**REPLAY, **params, "sessions_csv": str(path)}, count=count)


# -- parameters and registry --------------------------------------------------


def test_registered_with_contract_attributes():
    cls = fleet_type("ev")
    assert cls is EVFleet
    assert (cls.role, cls.green, cls.curtailable) == ("load", False, False)
    assert cls.Params is EVParams
    assert cls.state_columns == (
        "ev_connected",
        "ev_waiting",
        "ev_energy_delivered_kwh",
        "ev_energy_unserved_kwh",
    )


@pytest.mark.parametrize(
    "station, charger_kw, efficiency, per_station",
    [
        ("residential", 7.0, 0.95, 1),
        ("workplace", 7.0, 0.95, 10),
        ("public_fast", 120.0, 0.93, 8),
    ],
)
def test_station_defaults(station, charger_kw, efficiency, per_station):
    p = EVParams(station_type=station)
    assert p.charger_kw == pytest.approx(charger_kw)
    assert p.efficiency == pytest.approx(efficiency)
    assert p.chargers_per_station == per_station
    assert math.isinf(p.station_limit_kw) and not p.v2g
    assert (p.taper_soc_frac, p.taper_end_frac) == pytest.approx((0.8, 0.05))
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
        ({"sessions_per_day_weekend": 1.5}, "sessions_per_day_weekend"),   # household: a probability
        ({"arrival_process": "batch"}, "arrival_process"),
        ({"station_type": "highway"}, "station_type"),
        ({"chargers_kw": 7}, "chargers_kw"),
        ({"chargers_per_station": 0}, "chargers_per_station"),
        ({"station_limit_kw": 0}, "station_limit_kw"),
        ({"station_policy": "lifo"}, "station_policy"),
        ({"arrival_soc_frac": 1.5}, "arrival_soc_frac"),
        ({"taper_soc_frac": 1.0}, "taper_soc_frac"),
        ({"taper_end_frac": 0.0}, "taper_end_frac"),
        ({"patience_min": -5}, "patience_min"),
        ({"sessions_csv": "no/such/file.csv"}, "sessions_csv"),
    ],
)
def test_bad_params_rejected(bad, field):
    with pytest.raises(ValidationError) as err:
        EVParams(**bad)
    assert field in {str(loc[0]) for loc in (e["loc"] for e in err.value.errors())}


# -- the taper ------------------------------------------------------------------

TAPER = (0.8, 0.05)  # knee at 80 %, 5 % of the battery's rate left at 100 %; slope a = 4.75


def _ode_soc(s0, tau, k, c, knee, end):
    """Reference: integrate ds/dt = min(k, c f(s)) with scipy, stopping at full."""
    a = (1 - end) / (1 - knee)

    def rate(_, s):
        f = 1.0 if s[0] <= knee else 1.0 - a * (s[0] - knee)
        return [min(k, c * f)]

    full = lambda _, s: s[0] - 1.0  # noqa: E731
    full.terminal = True
    sol = solve_ivp(rate, (0.0, tau), [s0], events=full, rtol=1e-11, atol=1e-13, max_step=tau / 50)
    return min(sol.y[0, -1], 1.0)


def test_taper_by_hand():
    # Battery-limited (k = 2 > c = 1), from 60 %: 0.2 h at rate 1 to the knee,
    # then f decays as exp(-4.75 t): after 0.5 h, s = 0.8 + (1 - e^(-4.75 x 0.3)) / 4.75.
    want = 0.8 + (1 - math.exp(-4.75 * 0.3)) / 4.75
    assert soc_after_max_charge(0.6, 0.5, 2.0, 1.0, *TAPER) == pytest.approx(want, abs=ABS_KWH)
    # below the knee it is linear: 0.2 + 0.5 x 0.5
    assert soc_after_max_charge(0.2, 0.5, 0.5, 2.0, *TAPER) == pytest.approx(0.45, abs=ABS_KWH)
    # full after ln(1 / 0.05) / 4.75 h in the taper; capped at 1 afterwards
    t_full = math.log(20.0) / 4.75
    assert soc_after_max_charge(0.8, t_full + 1.0, 2.0, 1.0, *TAPER) == pytest.approx(1.0)
    assert soc_after_max_charge(0.8, 0.9 * t_full, 2.0, 1.0, *TAPER) < 1.0
    # no taper (end fraction 1): linear to full
    assert soc_after_max_charge(0.5, 1.0, 0.3, 1.0, 0.8, 1.0) == pytest.approx(0.8)
    assert soc_after_max_charge(0.5, 2.0, 0.3, 1.0, 0.8, 1.0) == pytest.approx(1.0)
    # the inverse, by hand: 0.2 h of taper back from s1 = 0.8 + (1 - e^-0.95) / 4.75
    s1 = 0.8 + (1 - math.exp(-0.95)) / 4.75
    assert soc_before_max_charge(s1, 0.2, 2.0, 1.0, *TAPER) == pytest.approx(0.8, abs=ABS_KWH)
    assert soc_before_max_charge(s1, 0.5, 2.0, 1.0, *TAPER) == pytest.approx(0.5, abs=ABS_KWH)


@settings(max_examples=60, deadline=None)
@given(
    s0=st.floats(0.0, 0.999),
    tau=st.one_of(st.just(0.0), st.floats(0.01, 3.0)),
    k=st.floats(0.05, 5.0),
    c=st.floats(0.1, 3.0),
    knee=st.floats(0.3, 0.95),
    end=st.floats(0.01, 1.0),
)
def test_taper_matches_the_ode_and_inverts(s0, tau, k, c, knee, end):
    s1 = float(soc_after_max_charge(s0, tau, k, c, knee, end))
    if tau > 0:
        assert s1 == pytest.approx(_ode_soc(s0, tau, k, c, knee, end), abs=ODE_SOC)
    if s1 < 1.0 - 1e-9:  # once full, the start is not identifiable
        assert float(soc_before_max_charge(s1, tau, k, c, knee, end)) == pytest.approx(s0, abs=1e-9)


# -- the per-step window and the station allocation ----------------------------


def _window(e, req, steps_left, **kw):
    """No taper in reach: 100 kWh battery from 0 %, 7 kW at eta 0.9 (k = 0.063/h)."""
    base = dict(k_max_per_h=0.063, k_share_per_h=0.063, c_rate_per_h=1.5)
    return energy_window_kwh(
        np.array([e]),
        np.array([req]),
        np.array([0.0]),
        np.array([100.0]),
        np.array([steps_left]),
        DT_H,
        **{**base, **kw},
    )


def test_energy_window_by_hand():
    # 1.575 kWh per full step.  Plenty of time: [0, 1.575].
    lo, hi, must, urgent = _window(0.0, 10.0, 12)
    assert (lo[0], hi[0], must[0], urgent[0]) == pytest.approx((0.0, 1.575, 0.0, False))
    # 10 kWh, 7 steps left: 10 - 6 x 1.575 = 0.55 kWh must go in now
    lo, hi, must, _ = _window(0.0, 10.0, 7)
    assert (lo[0], must[0]) == pytest.approx((0.55, 0.55))
    # nearly done: at most the 0.1 kWh still requested
    assert _window(9.9, 10.0, 12)[1][0] == pytest.approx(0.1)
    # out of reach at the share (3.5 kW: 0.7875 kWh/step; 3 steps from 8 kWh
    # short of 10): the override takes the share's full step, the car is urgent
    lo, hi, must, urgent = _window(8.0, 10.0, 2, k_share_per_h=0.0315)
    assert (lo[0], hi[0], must[0], bool(urgent[0])) == pytest.approx((0.7875, 1.575, 0.7875, True))
    # V2G: 3 kWh out allowed, floor -2 kWh, 12 steps: need 10 - 11 x 1.575 < -2, so down to -2
    lo, *_ = _window(0.0, 10.0, 12, discharge_max_kwh=3.0, floor_kwh=-2.0)
    assert lo[0] == pytest.approx(-2.0)
    lo, *_ = _window(5.0, 10.0, 12, discharge_max_kwh=3.0, floor_kwh=-2.0)
    assert lo[0] == pytest.approx(-3.0)


def test_station_allocation_by_hand():
    station, limit = np.array([0, 0, 1]), np.array([10.0, np.inf])
    # station 0: overrides [3, 0] first, the 7 kW left pro rata to extras [5, 6]
    p = allocate_station_kw(np.array([8.0, 6.0, 50.0]), np.array([3.0, 0.0, 0.0]), station, limit)
    np.testing.assert_allclose(p, [3 + 5 * 7 / 11, 6 * 7 / 11, 50.0], atol=ABS_KW)
    # overrides alone over the limit: they share it pro rata, extras get nothing
    p = allocate_station_kw(np.array([8.0, 12.0, 0.0]), np.array([8.0, 8.0, 0.0]), station, limit)
    np.testing.assert_allclose(p, [5.0, 5.0, 0.0], atol=ABS_KW)
    # discharge beyond the limit scales pro rata: [-8, -6] x 10 / 14
    p = allocate_station_kw(np.array([-8.0, -6.0, -3.0]), np.zeros(3), station, limit)
    np.testing.assert_allclose(p, [-80 / 14, -60 / 14, -3.0], atol=ABS_KW)
    # urgent cars take the room left: [2, 3] leave 5 kW for a 6 kW wish
    p = allocate_station_kw(np.array([2.0, 3.0, 0.0]), np.zeros(3), station, limit, np.array([6.0, 0.0, 9.0]))
    np.testing.assert_allclose(p, [7.0, 3.0, 9.0], atol=ABS_KW)


# -- sessions through the engine's queue: hand-computed cases -----------------


def test_one_session_per_charger_and_balking():
    f = _fleet(ONE_SESSION, count=2)
    req = f.arrival_requests()
    assert (req.arrival_step == A).all() and (req.max_wait_steps == 0).all()
    _run(f, lambda k: None)
    df = f.tables()["ev_sessions"]
    t0 = pd.Timestamp(MONDAY, tz=TZ)
    served = df[~df["balked"]]
    assert sorted(served["charger"]) == [0, 1]
    assert (served["plugged_in"] == t0 + pd.Timedelta(hours=8)).all()
    assert (served["departure"] == t0 + pd.Timedelta(hours=11)).all()
    assert str(df["arrival"].dt.tz) == TZ
    balked = df[df["balked"]]
    assert (balked["charger"] == -1).all() and balked["plugged_in"].isna().all()
    assert (balked["departure"] == t0 + pd.Timedelta(hours=8)).all() and (balked["waited_steps"] == 0).all()
    np.testing.assert_allclose(balked["unserved_kwh"], 10.0)
    assert df["departed"].all()
    info = f.info()
    assert info["p_rated_kw"] == pytest.approx(14.0) and info["ev_stations"] == 2
    assert info["ev_balked_arrivals"] == info["ev_arrivals"] - 2 == len(balked)


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
    df = f.tables()["ev_sessions"]
    served = df[~df["balked"]].sort_values("charger")
    np.testing.assert_allclose(served["delivered_kwh"], [10.0, 10.0], atol=ABS_KWH)
    np.testing.assert_allclose(served["unserved_kwh"], [0.0, 0.0], atol=ABS_KWH)
    np.testing.assert_allclose(served["soc_frac"], [0.1, 0.1], atol=ABS_KWH)
    assert states[37]["ev_energy_delivered_kwh"] == pytest.approx(0.55 + 0.7875)
    assert states[31]["ev_connected"] == 0 and states[32]["ev_connected"] == 2
    assert states[43]["ev_connected"] == 2 and states[44]["ev_connected"] == 0
    # the cars that balked at 08:00 count as unserved in that step
    assert states[32]["ev_energy_unserved_kwh"] == pytest.approx(10.0 * df["balked"].sum())


def test_baseline_charges_at_full_power_from_plug_in():
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
    df = f.tables()["ev_sessions"]
    row = df[~df["balked"]].iloc[0]
    assert row["delivered_kwh"] == pytest.approx(12 * E_FULL_STEP, abs=ABS_KWH)
    assert row["unserved_kwh"] == pytest.approx(30.0 - 12 * E_FULL_STEP, abs=ABS_KWH)
    unserved = [s["ev_energy_unserved_kwh"] for s in states]
    assert unserved[D] == pytest.approx(30.0 - 18.9, abs=ABS_KWH)
    assert sum(unserved) == pytest.approx(df["unserved_kwh"].sum(), abs=SUM_KWH)


def test_second_car_waits_then_plugs(tmp_path):
    # One charger, patience 90 min = 6 steps.  A: 08:00-10:00 (steps 32-40),
    # B arrives 09:00 (36) with a 1 h dwell, waits 4 steps, plugs at 40 when A
    # leaves and stays its dwell from plug-in: until 11:00 (44), not 10:00.
    # Each asks 5 kWh: 3 full steps (4.725 kWh) and 0.275 kWh (1.2222 kW).
    rows = [(_t("08:00"), _t("10:00"), 5, 7, "s"), (_t("09:00"), _t("10:00"), 5, 7, "s")]
    f = _replay(tmp_path, rows, patience_min=90.0)
    p, states = _run(f, lambda k: None)
    want = np.zeros(96)
    want[[32, 33, 34, 40, 41, 42]] = -7.0
    want[[35, 43]] = -0.275 / 0.225
    np.testing.assert_allclose(p[:, 0], want, atol=ABS_KW)
    df = f.tables()["ev_sessions"].sort_values("arrival")
    t0 = pd.Timestamp(MONDAY, tz=TZ)
    np.testing.assert_array_equal(_steps(df["arrival"]), [32, 36])
    np.testing.assert_array_equal(_steps(df["plugged_in"]), [32, 40])
    np.testing.assert_array_equal(_steps(df["departure"]), [40, 44])
    assert list(df["waited_steps"]) == [0, 4] and list(df["charger"]) == [0, 0]
    assert not df["balked"].any() and df["departed"].all()
    assert df["departure"].iloc[1] == t0 + pd.Timedelta(hours=11)
    np.testing.assert_allclose(df["unserved_kwh"], 0.0, atol=ABS_KWH)
    waiting = [s["ev_waiting"] for s in states]
    assert waiting[35] == 0 and waiting[36:40] == [1, 1, 1, 1] and waiting[40] == 0


def test_patience_runs_out(tmp_path):
    # Patience 30 min = 2 steps: B arrives at 36 and leaves unserved at 38.
    rows = [(_t("08:00"), _t("10:00"), 5, 7, "s"), (_t("09:00"), _t("10:00"), 5, 7, "s")]
    f = _replay(tmp_path, rows, patience_min=30.0)
    _, states = _run(f, lambda k: None)
    b = f.tables()["ev_sessions"].sort_values("arrival").iloc[1]
    assert b["balked"] and b["departed"] and b["charger"] == -1 and pd.isna(b["plugged_in"])
    assert b["waited_steps"] == 2 and _steps(pd.Series([b["departure"]]))[0] == 38
    assert b["unserved_kwh"] == pytest.approx(5.0) and b["delivered_kwh"] == pytest.approx(0.0)
    assert states[38]["ev_energy_unserved_kwh"] == pytest.approx(5.0)
    assert [s["ev_waiting"] for s in states[35:39]] == [0, 1, 1, 0]
    assert f.info()["ev_balked_arrivals"] == 1


def test_a_station_pools_its_chargers(tmp_path):
    # Two chargers in one station, three cars at 08:00, no patience: the
    # first two take chargers 0 and 1 (lowest free first), the third balks;
    # a fourth at 09:00 takes charger 1, freed at 09:00 by the second car.
    rows = [
        (_t("08:00"), _t("12:00"), 5, 7, "s"),
        (_t("08:00"), _t("09:00"), 5, 7, "s"),
        (_t("08:00"), _t("12:00"), 5, 7, "s"),
        (_t("09:00"), _t("10:00"), 5, 7, "s"),
    ]
    f = _replay(tmp_path, rows, count=2, chargers_per_station=2, patience_min=0.0)
    _run(f, lambda k: None)
    df = f.tables()["ev_sessions"]
    assert list(df["charger"]) == [0, 1, -1, 1]
    assert list(df["balked"]) == [False, False, True, False]
    assert (df["station"] == 0).all()


def test_cars_carried_in_and_waiting_at_the_start(tmp_path):
    # One charger.  A: Sunday 20:00 to Monday 02:00 (step 8), 30 kWh: it has
    # charged 16 steps x 1.575 = 25.2 kWh by midnight, 4.8 kWh are left:
    # 3 full steps and 0.075 kWh (0.075 / 0.225 kW).  B: Sunday 23:45 with
    # 3 h patience (12 steps, 11 left at the start) waits, plugs at 8 when A
    # leaves (waited 9 steps), 2 kWh at full power for 2 steps (1.575 + 0.425).
    sunday = "2024-06-02"
    rows = [(_t("20:00", sunday), _t("02:00"), 30, 7, "s"), (_t("23:45", sunday), _t("01:45"), 2, 7, "s")]
    f = _replay(tmp_path, rows, patience_min=180.0)
    req = f.arrival_requests()
    np.testing.assert_array_equal(req.arrival_step, [0, 0])
    np.testing.assert_array_equal(req.max_wait_steps, [0, 11])
    p, _ = _run(f, lambda k: None)
    want = np.zeros(96)
    want[0:3] = -7.0
    want[3] = -0.075 / 0.225
    want[8] = -7.0
    want[9] = -0.425 / 0.225
    np.testing.assert_allclose(p[:, 0], want, atol=ABS_KW)
    df = f.tables()["ev_sessions"]
    assert list(df["carried_in"]) == [True, True]
    np.testing.assert_array_equal(_steps(df["plugged_in"]), [-16, 8])
    np.testing.assert_array_equal(_steps(df["departure"]), [8, 16])
    assert list(df["waited_steps"]) == [0, 9]
    np.testing.assert_allclose(df["requested_kwh"], [30 - 25.2, 2.0], atol=ABS_KWH)
    np.testing.assert_allclose(df["delivered_kwh"], [30 - 25.2, 2.0], atol=ABS_KWH)


def test_day_before_cars_carried_in_by_hand():
    # Arrivals at 08:00 every day, 30 h dwell, 200 kWh requested, 7 kW, eta 0.9.
    # The car of Sunday (day before the start) 08:00 stays until Monday 14:00:
    # carried in, with 200 - 64 steps x 1.575 = 99.2 kWh still requested.  It
    # blocks Monday 08:00; Tuesday's car stays till Wednesday 14:00, and so on:
    # sessions from Sun (carried in), Tue, Thu, Sat; Mon, Wed, Fri, Sun balk.
    params = {**ONE_SESSION, "dwell_h": 30.0, "energy_kwh": 200.0, "battery_kwh": 200.0}
    n = 3
    f = _fleet(params, count=n, days=7)
    _run(f, lambda k: None)
    df = f.tables()["ev_sessions"]
    served = df[~df["balked"]]
    t0 = pd.Timestamp(MONDAY, tz=TZ)
    want_arrivals = [t0 + pd.Timedelta(days=d, hours=8) for d in (-1, 1, 3, 5)]
    for c in range(n):
        rows = served[served["charger"] == c].sort_values("arrival")
        assert list(rows["arrival"]) == want_arrivals
        assert list(rows["departure"]) == [t + pd.Timedelta(hours=30) for t in want_arrivals]
        assert list(rows["carried_in"]) == [True, False, False, False]
        np.testing.assert_allclose(rows["requested_kwh"], [200 - 64 * E_FULL_STEP, 200, 200, 200], atol=ABS_KWH)
    info = f.info()
    assert info["ev_balked_arrivals"] == info["ev_arrivals"] - 3 * n
    assert info["ev_arrivals"] == pytest.approx(7 * 50 * n, rel=BUSY_RATE_REL)


# -- taper, station limit and V2G through the fleet: by hand -------------------


def test_taper_bookkeeping_by_hand(tmp_path):
    # A 40 kWh car at 50 % on a 200 kW charger (eta 0.9; the battery limits):
    # C-rate 1/h, knee 0.5, f(1) = 0.5: slope a = 1, so from the knee
    # f = e^-t and s = 0.5 + (1 - e^-t); full at t = ln 2.  Per 15-min step:
    # 40 (1 - e^-0.25), 40 e^-0.25 (1 - e^-0.25), then the rest to full,
    # 40 (e^-0.5 - 0.5).  Grid power = energy / (0.9 x 0.25).
    rows = [(_t("08:00"), _t("12:00"), 20, 200, "s", 40, 0.5)]
    header = "arrival,departure,energy_kwh,max_power_kw,station,battery_kwh,arrival_soc_frac"
    params = dict(charger_kw=200.0, battery_c_rate_per_h=1.0, taper_soc_frac=0.5, taper_end_frac=0.5)
    f = _replay(tmp_path, rows, header=header, **params)
    p, _ = _run(f, lambda k: None)
    e = [40 * (1 - math.exp(-0.25)), 40 * math.exp(-0.25) * (1 - math.exp(-0.25)), 40 * (math.exp(-0.5) - 0.5)]
    assert sum(e) == pytest.approx(20.0)
    want = np.zeros(96)
    want[32:35] = -np.array(e) / (0.9 * 0.25)
    np.testing.assert_allclose(p[:, 0], want, atol=1e-9)
    row = f.tables()["ev_sessions"].iloc[0]
    assert row["soc_frac"] == pytest.approx(1.0) and row["delivered_kwh"] == pytest.approx(20.0)


def test_taper_form_by_hand(tmp_path):
    # The same car seen at 08:00: the form's bounds are the taper's steps,
    # e_max its energy path (capped at the 20 kWh requested).
    rows = [(_t("08:00"), _t("12:00"), 20, 200, "s", 40, 0.5)]
    header = "arrival,departure,energy_kwh,max_power_kw,station,battery_kwh,arrival_soc_frac"
    params = dict(charger_kw=200.0, battery_c_rate_per_h=1.0, taper_soc_frac=0.5, taper_end_frac=0.5)
    f = _replay(tmp_path, rows, header=header, **params)
    forms = {}
    grid = HorizonGrid.build(32, DT_H, 8, 8, 4)
    Harness(f).run(33, lambda k: None, lambda k: forms.setdefault(k, f.flexibility(grid, None)))
    (form,) = forms[32]
    # full (20 kWh, 100 %) after ln 2 h: capped from the third step on
    e = np.minimum(40 * (1 - np.exp(-0.25 * np.arange(9))), 20.0)
    q = np.diff(e)  # the steps' energies [kWh]
    np.testing.assert_allclose(form.p_charge_max_kw[0], q / (0.9 * 0.25), atol=1e-9)
    np.testing.assert_allclose(form.e_max_kwh[0], e[1:], atol=1e-9)
    # the 2 h horizon ends two hours before departure, when nothing is needed yet
    np.testing.assert_allclose(form.e_target_kwh, [0.0])
    np.testing.assert_allclose(form.p_discharge_max_kw, 0.0)


STATION = dict(chargers_per_station=2, station_limit_kw=10.0, patience_min=0.0)


def test_station_limit_by_hand(tmp_path):
    # Two 7 kW chargers (eta 0.9) share a 10 kW connection: shares 5 kW each.
    # A: 08:00-08:15, 10 kWh, out of reach: its override is its share's step
    # (5 kW) and it is urgent.  B: 08:00-16:00, 5 kWh, no override yet.
    # Uncontrolled (both ask 7 kW): A 5 + 2 x 5/9, B 7 x 5/9 (the 5 kW left
    # pro rata to the extras [2, 7]).
    rows = [(_t("08:00"), _t("08:15"), 10, 7, "s"), (_t("08:00"), _t("16:00"), 5, 7, "s")]
    f = _replay(tmp_path, rows, count=2, **STATION)
    p, _ = _run(f, lambda k: None, 33)
    np.testing.assert_allclose(p[32], [-(5 + 10 / 9), -35 / 9], atol=ABS_KW)
    # Dispatched: A 5 kW (its form bound), B nothing: A gets the room left, 7 kW.
    g = _replay(tmp_path, rows, count=2, **STATION)
    forms = {}
    grid = HorizonGrid.build(32, DT_H, 4, 8, 4)
    p, _ = Harness(g).run(33, lambda k: np.array([-5.0, 0.0]), lambda k: forms.setdefault(k, g.flexibility(grid, None)))
    np.testing.assert_allclose(p[32], [-7.0, 0.0], atol=ABS_KW)
    # The form: each charger its own 7 kW, the station's 10 kW as a shared
    # limit.  A is out of reach even at 7 kW: its override draws its 5 kW share
    # whatever it is asked, so that is its lower bound in block 0.  B's lower
    # bound is its share's path, so the lower bounds fit the 10 kW together.
    form, limit = forms[32]
    np.testing.assert_allclose(form.p_charge_max_kw, [[7, 0, 0, 0, 0], [7, 7, 7, 7, 7]], atol=ABS_KW)
    np.testing.assert_allclose(form.p_charge_min_kw, [[5, 0, 0, 0, 0], [0, 0, 0, 0, 0]], atol=ABS_KW)
    assert isinstance(limit, SharedLimit) and limit.group.tolist() == [0, 0]
    np.testing.assert_allclose(limit.charge_limit_kw, [[10, 10, 10, 10, 10]], atol=ABS_KW)
    np.testing.assert_allclose(form.e_min_kwh[1], 0.0, atol=ABS_KWH)


# Three cars plug in at 08:00 (arrivals 08:00, 08:02, 08:04) into three 7 kW
# chargers (eta 0.9, 100 kWh batteries at 0 %) on a 10 kW connection (shares
# 10/3 kW, 3 kW battery side), uncontrolled:
#   car  leaves  energy  car limit  laxity at 08:00 = hours left - energy / (0.9 x limit)
#   A    20:00   30 kWh  7 kW       12 - 30 / 6.3   = 7.24 h
#   B    12:00    5 kWh  7 kW        4 -  5 / 6.3   = 3.21 h
#   C    16:00   22 kWh  3.5 kW      8 - 22 / 3.15  = 1.02 h
# Each is within reach at its share (A 3 x 11.75 h > 30; B 3 x 3.75 > 5; C
# 3 x 7.75 > 22), so nobody has an override and requests [7, 7, 3.5] share 10 kW:
POLICY_ROWS = [(_t("08:00"), _t("20:00"), 30, 7, "s"), (_t("08:02"), _t("12:00"), 5, 7, "s"),
               (_t("08:04"), _t("16:00"), 22, 3.5, "s")]
POLICY_BY_HAND = {
    "fcfs": [7.0, 3.0, 0.0],            # A, B, C
    "edf": [0.0, 7.0, 3.0],             # B, C, A
    "llf": [0.0, 6.5, 3.5],             # C, B, A
    "round_robin": [10 / 3] * 3,        # equal shares; none asks less than 10/3
    "proportional": [4.0, 4.0, 2.0],    # 10 / 17.5 of each
}


@pytest.mark.parametrize("policy", sorted(POLICY_BY_HAND))
def test_station_policy_by_hand(tmp_path, policy):
    f = _replay(tmp_path, POLICY_ROWS, count=3, chargers_per_station=3, station_limit_kw=10.0, patience_min=0.0,
                station_policy=policy)
    p, _ = _run(f, lambda k: None, 33)
    np.testing.assert_allclose(-p[32], POLICY_BY_HAND[policy], atol=ABS_KW)


def test_v2g_discharges_down_to_what_departure_needs(tmp_path):
    # 50 kWh car at 60 %, 5 kWh requested, 08:00-10:00 (8 steps); 12 kW
    # charger at eta 0.9 (2.7 kWh/step), V2G 10 kW at 0.9 (2.7778 kWh out per
    # step), floor (0.4 - 0.6) x 50 = -10 kWh.  Asked to discharge all the time:
    # need at the end of step j (n steps left): 5 - 2.7 (n - 1).
    #   j=0: need -13.9, floor -10: -2.7778 (10 kW)   j=1: -5.5556 (10 kW)
    #   j=2: need -8.5: -8.3333 (10 kW)               j=3: need -5.8: charge 2.5333
    #   j=4..7: charge 2.7 each: -3.1, -0.4, 2.3, 5.0.
    rows = [(_t("08:00"), _t("10:00"), 5, 12, "s", 50, 0.6)]
    header = "arrival,departure,energy_kwh,max_power_kw,station,battery_kwh,arrival_soc_frac"
    v2g = dict(charger_kw=12.0, v2g=True, v2g_kw=10.0, v2g_efficiency=0.9, v2g_min_soc_frac=0.4)
    f = _replay(tmp_path, rows, header=header, **v2g)
    forms = {}
    grid = HorizonGrid.build(32, DT_H, 12, 12, 4)
    p, _ = Harness(f).run(96, lambda k: np.array([100.0]), lambda k: forms.setdefault(k, f.flexibility(grid, None)))
    want = np.zeros(96)
    want[32:35] = 10.0
    want[35] = -2.5333333333333 / 0.225
    want[36:40] = -12.0
    np.testing.assert_allclose(p[:, 0], want, atol=1e-9)
    row = f.tables()["ev_sessions"].iloc[0]
    assert row["delivered_kwh"] == pytest.approx(5.0) and row["unserved_kwh"] == pytest.approx(0.0, abs=ABS_KWH)
    assert row["discharged_kwh"] == pytest.approx(3 * 2.5 / 0.9)
    # its form at 08:00: discharge up to 10 kW, e_min the latest path above the floor
    (form,) = forms[32]
    latest = 5 - 2.7 * (8 - np.arange(1, 9))
    np.testing.assert_allclose(form.p_discharge_max_kw[0, :8], 10.0)
    np.testing.assert_allclose(form.p_discharge_max_kw[0, 8:], 0.0)
    np.testing.assert_allclose(form.e_min_kwh[0, :8], np.maximum(-10.0, latest), atol=1e-9)
    np.testing.assert_allclose(form.e_max_kwh[0, :8], np.minimum(5.0, 2.7 * np.arange(1, 9)), atol=1e-9)
    np.testing.assert_allclose(form.eta_discharge, [0.9])


def test_v2g_keeps_the_minimum_state_of_charge(tmp_path):
    # As above with 1 kWh requested and a 50 % floor (-5 kWh): 10 kW once,
    # then 2.2222 kWh (8 kW) to the floor, idle until the need rises above it
    # (3 steps left: 1 - 5.4 = -4.4), then 0.6, 2.7, 2.7 kWh: 1 kWh at 10:00.
    rows = [(_t("08:00"), _t("10:00"), 1, 12, "s", 50, 0.6)]
    header = "arrival,departure,energy_kwh,max_power_kw,station,battery_kwh,arrival_soc_frac"
    v2g = dict(charger_kw=12.0, v2g=True, v2g_kw=10.0, v2g_efficiency=0.9, v2g_min_soc_frac=0.5)
    f = _replay(tmp_path, rows, header=header, **v2g)
    p, _ = _run(f, lambda k: np.array([100.0]))
    want = np.zeros(96)
    want[32], want[33] = 10.0, 8.0
    want[37], want[38], want[39] = -0.6 / 0.225, -12.0, -12.0
    np.testing.assert_allclose(p[:, 0], want, atol=1e-9)
    row = f.tables()["ev_sessions"].iloc[0]
    assert row["delivered_kwh"] == pytest.approx(1.0)


# -- replayed sessions -----------------------------------------------------------


@pytest.mark.parametrize("shift", [-49, "auto"])
def test_the_example_file_replays(shift):
    # The file runs from Sunday 2024-07-21 to Thursday 2024-07-25; moved 49
    # days (7 weeks) back, its Monday 2024-07-22 falls on the run's Monday
    # 2024-06-03.  "auto" finds the same whole-week shift (the most arrivals in
    # the one simulated day).
    params = {"station_type": "workplace", "chargers_per_station": 4, "sessions_csv_shift_days": shift}
    f = _fleet({**params, "sessions_csv": "data/example_ev_sessions.csv"}, count=12)
    raw = read_sessions_csv(f.params.sessions_csv, TZ)
    assert len(raw.arrival) > 50 and set(raw.station) == {"garage_a", "garage_b", "lot_c"}
    on_monday = (raw.arrival >= pd.Timestamp("2024-07-22", tz=TZ)) & (raw.arrival < pd.Timestamp("2024-07-23", tz=TZ))
    start = pd.Timestamp("2024-07-22", tz=TZ)
    want_steps = np.rint((raw.arrival[on_monday] - start) / pd.Timedelta(seconds=STEP_S)).astype(int)
    _run(f, lambda k: None)
    df = f.tables()["ev_sessions"]
    mapped = df[~df["carried_in"]]
    np.testing.assert_array_equal(np.sort(_steps(mapped["arrival"])), np.sort(want_steps))
    np.testing.assert_allclose(np.sort(mapped["requested_kwh"]), np.sort(raw.energy_kwh[on_monday]))
    labels = sorted(set(raw.station))
    want_station = [labels.index(x) for x in raw.station[on_monday]]
    assert sorted(mapped["station"]) == sorted(want_station)


def test_a_replayed_session_keeps_its_times_and_limit(tmp_path):
    # 3.3 kW car on a 7 kW charger: 3.3 kW for 3 steps (3 x 0.7425 kWh) and
    # the rest of 2.5 kWh (0.2725 kWh) in the fourth.
    rows = [(_t("10:07"), _t("13:00"), 2.5, 3.3, "garage")]
    f = _replay(tmp_path, rows)
    p, _ = _run(f, lambda k: None)
    want = np.zeros(96)
    want[40:43] = -3.3
    want[43] = -(2.5 - 3 * 0.7425) / 0.225
    np.testing.assert_allclose(p[:, 0], want, atol=ABS_KW)


BAD_ROWS = [
    # (rows, header, expected "<column> row N" and a word of the reason)
    ([(_t("08:00"), _t("09:00"), 5, 7)], "arrival,departure,energy_kwh,max_power_kw", "station", "missing column"),
    ([(_t("08:00"), "tomorrow", 5, 7, "s")], None, "departure row 3", "ISO 8601"),
    ([(_t("08:00"), _t("07:00"), 5, 7, "s")], None, "departure row 3", "not after"),
    ([(_t("08:00"), _t("09:00"), -5, 7, "s")], None, "energy_kwh row 3", "negative"),
    ([(_t("08:00"), _t("09:00"), "x", 7, "s")], None, "energy_kwh row 3", "cannot read"),
    ([(_t("08:00"), _t("09:00"), 5, 0, "s")], None, "max_power_kw row 3", "> 0"),
    ([(_t("08:00"), _t("09:00"), 5, 7, " ")], None, "station row 3", "empty"),
    (
        [(_t("08:00"), _t("09:00"), 5, 7, "s"), ("2024-06-03T10:00", _t("11:00"), 5, 7, "s")],
        None,
        "arrival row 4",
        "offset",
    ),
    (
        [(_t("08:00"), _t("09:00"), 50, 7, "s", 40)],
        "arrival,departure,energy_kwh,max_power_kw,station,battery_kwh",
        "energy_kwh row 3",
        "exceeds",
    ),
    (
        [(_t("08:00"), _t("09:00"), 30, 7, "s", 40, 0.5)],
        "arrival,departure,energy_kwh,max_power_kw,station,battery_kwh,arrival_soc_frac",
        "energy_kwh row 3",
        "fit",
    ),
]


@pytest.mark.parametrize("rows, header, where, reason", BAD_ROWS)
def test_bad_session_files_give_one_line_errors(tmp_path, rows, header, where, reason):
    path = _csv(tmp_path, rows, header or "arrival,departure,energy_kwh,max_power_kw,station")
    with pytest.raises(ScenarioError) as err:
        EVParams(sessions_csv=str(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}: {where}") and reason in msg and "\n" not in msg


def test_session_file_errors_found_when_the_fleet_is_built(tmp_path):
    rows = [(_t("08:00"), _t("09:00"), 5, 7, "a"), (_t("08:00"), _t("09:00"), 5, 7, "b")]
    with pytest.raises(ScenarioError, match=r"s\.csv: station: 2 stations in the file but the fleet has 1"):
        _replay(tmp_path, rows)
    far = [(_t("08:00", "2030-01-07"), _t("09:00", "2030-01-07"), 5, 7, "a")]
    with pytest.raises(ScenarioError, match=r"s\.csv: arrival: no session falls in the simulated period"):
        _replay(tmp_path, far)


def test_missing_session_file_is_a_field_error():
    with pytest.raises(ValidationError, match="no such file"):
        EVParams(sessions_csv="nowhere/sessions.csv")


# -- invariants for any setpoint ---------------------------------------------

_SETPOINT = st.one_of(
    st.floats(-500, 500, allow_nan=False),
    st.sampled_from([np.inf, -np.inf, np.nan, 0.0, -120.0, 120.0]),
)
BUSY_FAST = dict(
    station_type="public_fast",
    chargers_per_station=3,
    station_limit_kw=200.0,
    sessions_per_day_weekday=8.0,
    sessions_per_day_weekend=8.0,
    dwell_h={"dist": "lognormal", "mean": 1.0, "std": 0.8, "low": 0.1, "high": 6.0},
    energy_kwh={"dist": "lognormal", "mean": 40.0, "std": 25.0, "low": 1.0},
    charger_kw={"dist": "uniform", "low": 50.0, "high": 150.0},
    arrival_soc_frac={"dist": "uniform", "low": 0.3, "high": 0.9},
    battery_c_rate_per_h={"dist": "uniform", "low": 0.5, "high": 2.0},
    v2g=True,
    v2g_kw=40.0,
)
# Home chargers under a heavy Poisson stream (two cars a day per charger, most balk).
HOMES = dict(station_type="residential", arrival_process="poisson", sessions_per_day_weekday=2.0, v2g=True,
             v2g_min_soc_frac=0.5)


def _plug_mask(f: EVFleet, df: pd.DataFrame, n_steps: int):
    """(rows, mask): per plugged session (index, charger, plug step, leave step)."""
    served = df[df["plugged_in"].notna()]
    start = np.maximum(_steps(served["plugged_in"]), 0).astype(int)
    stop = np.minimum(_steps(served["departure"]), n_steps).astype(int)
    rows = list(zip(served.index, served["charger"], start, stop, strict=True))
    mask = np.zeros((n_steps, f.n_assets), dtype=bool)
    for _, c, a, d in rows:
        mask[a:d, c] = True
    return rows, mask


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    pattern=arrays(np.float64, (12, 6), elements=_SETPOINT),
    station=st.sampled_from(["fast", "homes", "fast_no_v2g"]),
    policy=st.sampled_from(STATION_POLICIES),
)
def test_limits_hold_for_any_setpoint(seed, pattern, station, policy):
    params = {"fast": BUSY_FAST, "homes": HOMES, "fast_no_v2g": {**BUSY_FAST, "v2g": False}}[station]
    params = {**params, "station_policy": policy}
    f = _fleet(params, count=6, days=1, seed=seed)
    p, _ = _run(f, lambda k: pattern[k % 12])
    n_steps = p.shape[0]
    df = f.tables()["ev_sessions"]
    rows, plugged = _plug_mask(f, df, n_steps)
    charge, discharge = np.maximum(-p, 0.0), np.maximum(p, 0.0)
    assert (charge <= f.charger_kw + ABS_KW).all(), "never above the charger rating"
    assert (discharge <= f.v2g_kw + ABS_KW).all(), "V2G never above its limit (zero without V2G)"
    assert (np.abs(p[~plugged]) <= ABS_KW).all(), "never powers an empty charger"
    limit = f.params.station_limit_kw
    for s in range(f.n_stations):
        at = f.station == s
        assert (charge[:, at].sum(axis=1) <= limit + 1e-6).all(), "station limit (charging)"
        assert (discharge[:, at].sum(axis=1) <= limit + 1e-6).all(), "station limit (discharging)"
    assert (df["delivered_kwh"] - df["requested_kwh"] <= ABS_KWH).all(), "never more than asked"
    assert (df["soc_frac"] <= 1.0 + SOC_TOL).all()
    floor = np.minimum(df["arrival_soc_frac"], f.params.v2g_min_soc_frac) if f.params.v2g else df["arrival_soc_frac"]
    eta, eta_d = f.efficiency, f.v2g_efficiency
    knee, end = f.params.taper_soc_frac, f.params.taper_end_frac
    slope = (1 - end) / (1 - knee)
    s = f.sessions
    for i, c, a, d in rows:
        e = np.cumsum(eta[c] * charge[a:d, c] * DT_H - discharge[a:d, c] * DT_H / eta_d[c])
        assert df.loc[i, "delivered_kwh"] == pytest.approx(e[-1] if len(e) else 0.0, abs=SUM_KWH)
        soc = df.loc[i, "arrival_soc_frac"] + np.concatenate([[0.0], e]) / s.capacity_kwh[i]
        assert (soc >= floor[i] - SOC_TOL).all(), "V2G floor"
        # the taper: a step's energy is at most the rate at its start times dt
        taper = np.where(soc[:-1] <= knee, 1.0, 1.0 - slope * (soc[:-1] - knee))
        cap = DT_H * np.minimum(
            eta[c] * min(f.charger_kw[c], s.car_kw[i]), s.c_rate_per_h[i] * s.capacity_kwh[i] * taper
        )
        assert (eta[c] * charge[a:d, c] * DT_H <= cap + ABS_KWH).all(), "taper"
    # the laxity override: a request reachable at the station share is met
    done = df[df["departed"] & ~df["balked"] & ~df["carried_in"]]
    for i in done.index:
        c = int(done.loc[i, "charger"])
        dwell = int(
            _steps(pd.Series([done.loc[i, "departure"]]))[0] - _steps(pd.Series([done.loc[i, "plugged_in"]]))[0]
        )
        p_share = min(f.share_kw[c], s.car_kw[i])
        s_a, cap_i = done.loc[i, "arrival_soc_frac"], s.capacity_kwh[i]
        reach = soc_after_max_charge(s_a, dwell * DT_H, eta[c] * p_share / cap_i, s.c_rate_per_h[i], knee, end)
        want = min(done.loc[i, "requested_kwh"], cap_i * (reach - s_a))
        assert done.loc[i, "delivered_kwh"] >= want - SUM_KWH


# -- flexibility: by hand and the honesty rule ------------------------------------


def test_form_by_hand():
    # One car, arrival 32, departure 44, 10 kWh.  3.5 kW for steps 32, 33 puts
    # 2 x 0.7875 = 1.575 kWh in.  Horizon from k0 = 34: four 1-step blocks
    # (34..37), then 4-step blocks 38-41, 42-45, 46-49 (16 steps, end 50).
    f = _fleet(ONE_SESSION, count=1)
    h = Harness(f)
    h.run(34, lambda k: np.array([-3.5]))
    (form,) = f.flexibility(HorizonGrid.build(34, DT_H, 4, 16, 4), _exogenous(f.timeline).window(34, 16))
    assert isinstance(form, StorageLike)
    np.testing.assert_allclose(form.p_charge_max_kw[0], [7, 7, 7, 7, 7, 3.5, 0], atol=ABS_KW)
    np.testing.assert_allclose(form.p_discharge_max_kw, 0.0)
    np.testing.assert_allclose(form.e_init_kwh, [1.575], atol=ABS_KWH)
    # e_max: the full-power path 1.575 (1 + t - 34) capped at 10 kWh
    np.testing.assert_allclose(form.e_max_kwh[0], [3.15, 4.725, 6.3, 7.875, 10, 10, 10], atol=ABS_KWH)
    # e_min = max(1.575, 10 - 1.575 (44 - t)) at block ends t = 35, 36, 37, 38, 42, 44, 44
    want_min = [1.575, 1.575, 1.575, 1.575, 10 - 1.575 * 2, 10.0, 10.0]
    np.testing.assert_allclose(form.e_min_kwh[0], want_min, atol=ABS_KWH)
    np.testing.assert_allclose(form.e_target_kwh, [10.0], atol=ABS_KWH)
    np.testing.assert_allclose(form.eta_charge, [0.9])
    np.testing.assert_allclose(form.shortfall_cost_cny_per_kwh, [5.0])
    # a horizon ending at step 42, before departure: target = 10 - 2 x 1.575
    (short,) = f.flexibility(HorizonGrid.build(34, DT_H, 4, 8, 4), _exogenous(f.timeline).window(34, 8))
    np.testing.assert_allclose(short.e_target_kwh, [10 - 2 * 1.575], atol=ABS_KWH)


def test_form_of_empty_chargers_is_zero():
    f = _fleet(ONE_SESSION, count=3)
    (form,) = f.flexibility(HorizonGrid.build(0, DT_H, 4, 24, 4), _exogenous(f.timeline).window(0, 24))
    assert form.n_assets == 3
    for name in ("p_charge_max_kw", "p_discharge_max_kw", "e_min_kwh", "e_max_kwh"):
        np.testing.assert_allclose(getattr(form, name), 0.0)
    np.testing.assert_allclose(form.e_init_kwh, 0.0)
    np.testing.assert_allclose(form.e_target_kwh, 0.0)


def _energy_path(form: StorageLike, dt_h: np.ndarray, pc: np.ndarray, pd_: np.ndarray) -> np.ndarray:
    eta_c, eta_d = form.eta_charge[:, None], form.eta_discharge[:, None]
    return form.e_init_kwh[:, None] + np.cumsum(eta_c * pc * dt_h - pd_ * dt_h / eta_d, axis=1)


def _assert_inside(form: StorageLike, dt_h: np.ndarray, pc: np.ndarray, pd_: np.ndarray,
                   limit: SharedLimit | None = None):
    """The form's constraints, written out independently of the fleet."""
    e = _energy_path(form, dt_h, pc, pd_)
    if limit is not None:
        for b in range(pc.shape[1]):
            assert (np.bincount(limit.group, pc[:, b], limit.n_groups) <= limit.charge_limit_kw[:, b] + FORM_KWH).all()
            assert (np.bincount(limit.group, pd_[:, b], limit.n_groups)
                    <= limit.discharge_limit_kw[:, b] + FORM_KWH).all()
    assert (pc >= -FORM_KWH).all() and (pc <= form.p_charge_max_kw + FORM_KWH).all()
    assert (pd_ >= -FORM_KWH).all() and (pd_ <= form.p_discharge_max_kw + FORM_KWH).all()
    assert (e >= form.e_min_kwh - FORM_KWH).all() and (e <= form.e_max_kwh + FORM_KWH).all()


def _schedule(form: StorageLike, dt_h: np.ndarray, lam: np.ndarray, limit: SharedLimit | None = None):
    """Block by block, the energy at ``lam`` between the lowest and highest reachable;
    with a station *limit*, each station's charging beyond what its cars' lower
    bounds need (and its discharging) scaled down to fit it."""
    n, h = form.p_charge_max_kw.shape
    eta_c, eta_d = form.eta_charge, form.eta_discharge
    e = form.e_init_kwh.copy()
    pc, pd_ = np.zeros((n, h)), np.zeros((n, h))
    for b in range(h):
        up = np.minimum(form.e_max_kwh[:, b], e + eta_c * form.p_charge_max_kw[:, b] * dt_h[b])
        down = np.maximum(form.e_min_kwh[:, b], e - form.p_discharge_max_kw[:, b] * dt_h[b] / eta_d)
        assert (down <= up + FORM_KWH).all(), "the form is feasible from any point inside it"
        target = down + lam[:, b] * np.maximum(up - down, 0.0)
        c = np.maximum(target - e, 0.0) / (eta_c * dt_h[b])
        d = np.maximum(e - target, 0.0) * eta_d / dt_h[b]
        if limit is not None:
            c_min = np.maximum(down - e, 0.0) / (eta_c * dt_h[b])
            g, n_g = limit.group, limit.n_groups
            room = limit.charge_limit_kw[:, b] - np.bincount(g, weights=c_min, minlength=n_g)
            assert (room >= -FORM_KWH).all(), "the lower bounds fit the station limit"
            extra = np.bincount(g, weights=c - c_min, minlength=n_g)
            f_c = np.clip(np.divide(room, extra, out=np.ones(n_g), where=extra > 0), 0.0, 1.0)
            c = c_min + f_c[g] * (c - c_min)
            dis = np.bincount(g, weights=d, minlength=n_g)
            d = d * np.clip(np.divide(limit.discharge_limit_kw[:, b], dis, out=np.ones(n_g), where=dis > 0), 0, 1)[g]
        pc[:, b], pd_[:, b] = c, d
        e = e + eta_c * c * dt_h[b] - d * dt_h[b] / eta_d
    return pc, pd_


def _honesty(f: EVFleet, k0: int, grid: HorizonGrid, lam_of, before=None, exact_all=True):
    """Run to k0, take the form, apply a schedule inside it, compare with the physics."""
    h = Harness(f)
    h.run(k0, before or (lambda k: None))
    plan = {}

    def dispatch(k):
        if k != k0:
            return
        form, *rest = f.flexibility(grid, _exogenous(f.timeline).window(k0, grid.n_steps))
        limit = rest[0] if rest else None
        df = f.tables()["ev_sessions"]
        now = df[(df["charger"] >= 0) & (_steps(df["plugged_in"]) <= k0) & (_steps(df["departure"]) > k0)]
        dep = np.full(f.n_assets, k0)
        dep[now["charger"].to_numpy()] = _steps(now["departure"]).astype(int)
        lam = lam_of(form.p_charge_max_kw.shape)
        pc, pd_ = _schedule(form, grid.dt_h, lam, limit)
        _assert_inside(form, grid.dt_h, pc, pd_, limit)
        steps = k0 + np.arange(grid.n_steps)
        live = steps[None, :] < dep[:, None]
        block = np.repeat(np.arange(grid.n_blocks), grid.steps_per_block)
        n_live = np.add.reduceat(live, grid.starts, axis=1)
        spread = grid.steps_per_block / np.maximum(n_live, 1)
        per_step = ((pd_ - pc) * spread)[:, block] * live
        plan.update(form=form, per_step=per_step, live=live, pc=pc, pd=pd_, dep=dep)

    p, _ = h.run(k0 + grid.n_steps, lambda k: plan["per_step"][:, k - k0], dispatch)
    form, per_step, live = plan["form"], plan["per_step"], plan["live"]
    got = p[k0:].T
    plugged = plan["dep"] > k0
    assert plugged.sum() >= 5, "the test exercises several plugged cars"
    # in reach at the station share (the lower bounds' path ends at the target)
    reachable = form.e_min_kwh[:, -1] >= form.e_target_kwh - FORM_KWH
    exact = plugged & (reachable | exact_all)
    np.testing.assert_allclose(got[exact][live[exact]], per_step[exact][live[exact]], atol=FORM_KWH)
    # others (out of reach under the form) may get more charging, never less
    rest = plugged & ~exact
    assert (got[rest][live[rest]] <= per_step[rest][live[rest]] + FORM_KWH).all()
    # the energy of each plugged car at the end of the horizon (or at departure)
    e_end = _energy_path(form, grid.dt_h, plan["pc"], plan["pd"])[:, -1]
    df = f.tables()["ev_sessions"]
    for c in np.flatnonzero(exact):
        row = df[(df["charger"] == c) & (_steps(df["plugged_in"]) <= k0) & (_steps(df["departure"]) > k0)]
        assert len(row) == 1
        assert row["delivered_kwh"].iloc[0] == pytest.approx(e_end[c], abs=FORM_KWH)
    return exact.sum(), rest.sum()


LAMBDAS = {
    "asap": lambda shape: np.ones(shape),
    "alap": lambda shape: np.zeros(shape),
    "random": lambda shape: np.random.default_rng(0).uniform(size=shape),
}
FAST_TAPER = dict(
    station_type="public_fast",
    chargers_per_station=4,
    sessions_per_day_weekday=6.0,
    dwell_h={"dist": "lognormal", "mean": 1.5, "std": 0.8, "low": 0.25, "high": 6.0},
    arrival_soc_frac={"dist": "uniform", "low": 0.3, "high": 0.8},
    battery_kwh={"dist": "uniform", "low": 40.0, "high": 80.0},
    v2g=True,
)


@pytest.mark.parametrize("mix", sorted(LAMBDAS))
def test_schedule_inside_form_is_delivered_with_taper_and_v2g(mix):
    # Single-step blocks (as in every dispatch interval): exact for every car,
    # the taper included.
    f = _fleet(FAST_TAPER, count=24, days=1, seed=5)
    _honesty(f, 52, HorizonGrid.build(52, DT_H, 24, 24, 4), LAMBDAS[mix], before=lambda k: np.full(24, -30.0))


@pytest.mark.parametrize("policy", STATION_POLICIES)
@pytest.mark.parametrize("mix", sorted(LAMBDAS))
def test_schedule_inside_form_is_delivered_at_a_station_limit(mix, policy):
    # 4 x 120 kW on 250 kW: shares of 62.5 kW.  Cars out of reach at their
    # share may get the station's spare room on top (never less), whatever the policy.
    f = _fleet({**FAST_TAPER, "station_limit_kw": 250.0, "station_policy": policy}, count=24, days=1, seed=5)
    n_exact, _ = _honesty(f, 52, HorizonGrid.build(52, DT_H, 24, 24, 4), LAMBDAS[mix], exact_all=False)
    assert n_exact >= 5


@pytest.mark.parametrize("mix", sorted(LAMBDAS))
def test_schedule_inside_coarse_form_is_delivered(mix):
    # Workplace cars at 10:00, partly charged at 2 kW; 4 one-step blocks then
    # hourly blocks over a day.
    f = _fleet(
        {"station_type": "workplace", "charger_kw": 7.0, "efficiency": 0.92, "station_limit_kw": 60.0},
        count=300,
        days=2,
        seed=3,
    )
    n_exact, n_rest = _honesty(
        f,
        40,
        HorizonGrid.build(40, DT_H, 4, 96, 4),
        LAMBDAS[mix],
        before=lambda k: np.full(300, -2.0),
        exact_all=False,
    )
    assert n_exact > 100 and n_rest < n_exact / 10


# -- session statistics --------------------------------------------------------

N_STATS = 5000
STATS = dict(
    station_type="public_fast",
    chargers_per_station=1,
    patience_min=0.0,
    sessions_per_day_weekday=0.5,
    sessions_per_day_weekend=0.0,
    arrival_weekday=_mixture((0.6, 10.0, 1.5), (0.4, 15.0, 1.0)),
    arrival_weekend=_mixture((1.0, 13.0, 2.0)),
    dwell_h={"dist": "lognormal", "mean": 1.5, "std": 0.6},
    energy_kwh={"dist": "lognormal", "mean": 20.0, "std": 10.0},
    battery_kwh=40.0,
    arrival_soc_frac=0.0,
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
    f = _fleet(STATS, count=N_STATS, days=7, seed=11)
    _run(f, lambda k: np.zeros(N_STATS))
    return f


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
    steps = weekend_only.sessions.arrival_step
    assert (steps[steps >= 0] >= 5 * 96).all()


def test_a_station_gets_its_chargers_arrivals():
    # 10 chargers per station: each station sees 10 x 0.5 arrivals per weekday
    f = _fleet({**STATS, "chargers_per_station": 10}, count=N_STATS, days=7, seed=14)
    assert f.n_stations == N_STATS // 10
    counts = np.bincount(f.sessions.station[f.sessions.arrival_step >= 0], minlength=f.n_stations)
    assert counts.mean() == pytest.approx(5 * 0.5 * 10, rel=RATE_REL)


def test_no_two_cars_on_one_charger(weekday_fleet):
    df = weekday_fleet.tables()["ev_sessions"]
    df = df[~df["balked"]].sort_values(["charger", "plugged_in"])
    same = df["charger"].to_numpy()[1:] == df["charger"].to_numpy()[:-1]
    gap = df["plugged_in"].iloc[1:].reset_index(drop=True) - df["departure"].iloc[:-1].reset_index(drop=True)
    assert (gap[same] >= pd.Timedelta(0)).all()
    assert same.sum() > 500  # chargers with several sessions exist
    info = weekday_fleet.info()
    assert len(_new_sessions(weekday_fleet)) == info["ev_arrivals"]
    assert 0 < info["ev_balked_arrivals"] < info["ev_arrivals"] / 10


def test_household_car_back_by_hand():
    """Car 0 arrives on days 0 and 1 but is still plugged in on day 1 (leaves at
    step 130 > 120): only its day-2 arrival follows.  Car 1 leaves exactly when
    it comes back (step 110): both of its arrivals happen."""
    day = np.array([0, 0, 1, 1, 2])
    car = np.array([0, 1, 0, 1, 0])
    arrival = np.array([70, 60, 120, 110, 170])
    dwell = np.array([60, 50, 10, 10, 10])
    assert _car_is_back(day, car, arrival, dwell).tolist() == [True, True, False, True, True]


def test_household_cars_come_back_every_other_day_when_they_stay_a_day():
    """One car per home charger arriving every day at 18:00 for 30 h (probability 1):
    still plugged in at the next day's 18:00, so it arrives on every other day;
    nobody ever queues or balks."""
    homes = dict(station_type="residential", sessions_per_day_weekday=1.0, sessions_per_day_weekend=1.0,
                 arrival_weekday=_mixture((1.0, 18.0, 0.0)), arrival_weekend=_mixture((1.0, 18.0, 0.0)),
                 dwell_h=30.0)
    f = _fleet(homes, count=5, days=7, seed=3)
    _run(f, lambda k: np.zeros(5))
    df = f.tables()["ev_sessions"]
    assert not df["balked"].any() and f.info()["ev_balked_arrivals"] == 0
    for _, g in df.groupby("charger"):
        days = sorted((g["arrival"].dt.tz_convert(TZ).dt.normalize() - pd.Timestamp(MONDAY, tz=TZ)).dt.days)
        assert np.diff(days).tolist() == [2] * (len(days) - 1)
    # the day before the start (Sunday) and Monday alternate: the week holds 4 or 5 of them
    assert set(df.groupby("charger").size()) <= {4, 5}


def test_household_arrival_rate_without_overlaps():
    """Short evening stays never overlap the next day's arrival, so a charger's car
    arrives on a weekday with the stated probability (binomial over cars x days)."""
    homes = dict(station_type="residential", sessions_per_day_weekday=0.6, sessions_per_day_weekend=0.2,
                 arrival_weekday=_mixture((1.0, 19.0, 1.0)), arrival_weekend=_mixture((1.0, 19.0, 1.0)),
                 dwell_h=3.0)
    f = _fleet(homes, count=N_STATS, days=7, seed=5)
    new = f.sessions.arrival_step >= 0
    expected = N_STATS * (5 * 0.6 + 2 * 0.2)
    assert new.sum() == pytest.approx(expected, rel=RATE_REL)
    _run(f, lambda k: np.zeros(N_STATS))
    assert f.info()["ev_balked_arrivals"] == 0


def test_dwell_and_energy_follow_their_distributions(weekday_fleet):
    df = _new_sessions(weekday_fleet)
    df = df[~df["balked"]]
    dwell = (df["departure"] - df["plugged_in"]) / pd.Timedelta(hours=1)
    assert dwell.mean() == pytest.approx(1.5, abs=DWELL_ABS_H)
    assert dwell.std() == pytest.approx(np.sqrt(0.6**2 + 0.25**2 / 6), abs=DWELL_ABS_H)
    # requested energy: E[min(X, 40)] for the log-normal with mean 20, sd 10
    s2 = np.log1p((10 / 20) ** 2)
    law = stats.lognorm(s=np.sqrt(s2), scale=20 * np.exp(-s2 / 2))
    want = law.expect(lambda x: np.minimum(x, 40.0))
    assert df["requested_kwh"].mean() == pytest.approx(want, rel=ENERGY_REL)
    assert df["requested_kwh"].max() <= 40.0 + ABS_KWH


def test_arrival_hours_follow_the_mixture():
    f = _fleet({**STATS, "sessions_per_day_weekend": 1.0}, count=N_STATS, days=7, seed=13)
    s = f.sessions
    new = s.arrival_step >= 0
    t = pd.Timestamp(MONDAY, tz=TZ) + pd.to_timedelta(s.arrival_step[new] * STEP_S, unit="s")
    hours = pd.Series(t.hour + t.minute / 60)
    weekend = pd.Series(t.day_of_week >= 5)
    assert hours[~weekend].mean() == pytest.approx(0.6 * 10.0 + 0.4 * 15.0, abs=HOUR_ABS_H)
    assert hours[weekend].mean() == pytest.approx(13.0, abs=HOUR_ABS_H)
    # weekday share before 12:30 on the step grid = continuous arrivals before
    # 12:22:30 (they round down): 0.6 P(N(10, 1.5) < t) + 0.4 P(N(15, 1) < t)
    cut = 12.375
    want = 0.6 * stats.norm.cdf(cut, 10, 1.5) + 0.4 * stats.norm.cdf(cut, 15, 1.0)
    assert (hours[~weekend] < 12.5).mean() == pytest.approx(want, abs=SHARE_ABS)


def test_requests_fit_the_battery():
    # 60 kWh at 30-70 %: at most (1 - soc) x 60 kWh, whatever the drawn energy
    f = _fleet({"station_type": "residential", "energy_kwh": 50.0}, count=500, days=2, seed=2)
    s = f.sessions
    np.testing.assert_allclose(s.requested_kwh, np.minimum(50.0, (1 - s.arrival_soc_frac) * 60.0))
    assert (s.arrival_soc_frac >= 0.3).all() and (s.arrival_soc_frac <= 0.7).all()


def test_patience_in_steps():
    # 15-30 min at 15-min steps: 1 or 2 steps (rounded)
    f = _fleet({"station_type": "public_fast"}, count=200, days=2, seed=2)
    assert set(np.unique(f.sessions.patience_steps)) == {1, 2}


# -- determinism -----------------------------------------------------------------


def test_same_seed_same_run_different_seed_different():
    def run(seed):
        f = _fleet(BUSY_FAST, count=12, days=1, seed=seed)
        p, _ = _run(f, lambda k: np.full(12, -40.0))
        return p, f.tables()["ev_sessions"]

    (pa, a), (pb, b), (_, c) = run(5), run(5), run(6)
    np.testing.assert_array_equal(pa, pb)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) != len(c) or not a[["station", "arrival"]].equals(c[["station", "arrival"]])


@pytest.mark.parametrize("station", ["residential", "workplace", "public_fast"])
def test_default_stations_run_and_balance(station):
    # Energy into cars = eta x grid energy, summed over the run and the table.
    f = _fleet({"station_type": station}, count=100, days=2, seed=1)
    p, states = _run(f, lambda k: None)
    df = f.tables()["ev_sessions"]
    delivered = sum(s["ev_energy_delivered_kwh"] for s in states)
    in_run = df["delivered_kwh"].sum()
    assert delivered == pytest.approx(in_run, rel=SUM_REL)
    eta = f.efficiency[0]
    assert delivered == pytest.approx(-eta * p.sum() * DT_H, rel=SUM_REL)
    assert (~df["balked"]).sum() > 0
    unserved = sum(s["ev_energy_unserved_kwh"] for s in states)
    assert unserved == pytest.approx(df.loc[df["departed"], "unserved_kwh"].sum(), rel=SUM_REL, abs=SUM_KWH)


def _acn_json(tmp_path, items, name="acn.json"):
    import json

    path = tmp_path / name
    path.write_text(json.dumps({"_meta": {"total": len(items)}, "_items": items}))
    return path


def test_acn_data_json_sessions_replay_like_our_csv(tmp_path):
    """One ACN-Data session, Monday 00:00-02:00 GMT = 08:00-10:00 in Shanghai, 5 kWh delivered,
    no car limit in the data: the 7 kW charger at 0.9 gives 3 full steps (4.725 kWh) and
    0.275 kWh in the fourth (1.2222 kW), as the CSV replay of the same session."""
    from vpp.assets.ev import read_sessions_acn_json

    day = pd.Timestamp(MONDAY).strftime("%a, %d %b %Y")
    item = {"connectionTime": f"{day} 00:00:00 GMT", "disconnectTime": f"{day} 02:00:00 GMT",
            "doneChargingTime": f"{day} 01:00:00 GMT", "kWhDelivered": 5.0, "sessionID": "2_39_1",
            "siteID": "0002", "spaceID": "CA-1", "stationID": "2-39-79-380", "timezone": "America/Los_Angeles",
            "userInputs": None}
    path = _acn_json(tmp_path, [item])
    s = read_sessions_acn_json(path)
    assert s.arrival[0] == pd.Timestamp(MONDAY, tz=TZ) + pd.Timedelta(hours=8)
    assert (s.energy_kwh[0], s.station[0], s.max_power_kw[0]) == (5.0, "2-39-79-380", np.inf)
    f = _fleet({**REPLAY, "sessions_csv": str(path)}, count=1)
    p, _ = _run(f, lambda k: None)
    want = np.zeros(96)
    want[[32, 33, 34]] = -7.0
    want[35] = -0.275 / 0.225
    np.testing.assert_allclose(p[:, 0], want, atol=ABS_KW)


@pytest.mark.parametrize("item, field", [
    ({"connectionTime": "Mon, 01 Jul 2024 08:00:00 GMT", "disconnectTime": "Mon, 01 Jul 2024 07:00:00 GMT",
      "kWhDelivered": 1.0, "stationID": "a"}, "_items[0].disconnectTime"),
    ({"connectionTime": "Mon, 01 Jul 2024 08:00:00 GMT", "disconnectTime": "Mon, 01 Jul 2024 09:00:00 GMT",
      "kWhDelivered": -1.0, "stationID": "a"}, "_items[0].kWhDelivered"),
    ({"connectionTime": "Mon, 01 Jul 2024 08:00:00 GMT", "kWhDelivered": 1.0, "stationID": "a"},
     "_items[0].disconnectTime"),
])
def test_a_bad_acn_data_session_is_one_line_naming_it(tmp_path, item, field):
    from vpp.assets.ev import read_sessions_acn_json

    with pytest.raises(vpp.ScenarioError) as e:
        read_sessions_acn_json(_acn_json(tmp_path, [item]))
    assert field in str(e.value) and "\n" not in str(e.value)
