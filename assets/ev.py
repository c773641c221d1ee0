"""EV charging stations: chargers grouped into stations, cars that queue, taper, V2G.

Each asset is one charger (one connector).  Chargers belong to *stations* of
``chargers_per_station`` consecutive chargers (the last station may have
fewer).  Cars arrive at a station, not at a charger; the engine runs the
queue (:mod:`vpp.queueing`, a SimPy resource per station): a car takes the
lowest-numbered free charger of its station, or waits up to its patience when
every charger is busy and then leaves unserved (*balked*), first come, first
served.

Sessions
--------
All sessions of the simulated period are drawn when the fleet is created, from
the fleet's own random stream (:func:`draw_sessions`), so runs are repeatable
and every strategy sees the same cars:

* arrivals per station and local day are Poisson with a mean of
  ``sessions_per_day_*`` times the station's chargers, by day type (weekday:
  Monday-Friday, weekend: Saturday-Sunday; holidays are not modelled); or,
  for home charging (``arrival_process = "household"``, the residential
  default), each charger has its own car, which arrives on a local day with
  probability ``sessions_per_day_*`` unless that day's arrival falls before
  the departure of its previous session (it is still plugged in), so no car
  ever finds its home charger busy;
* the arrival's local hour follows a normal mixture, wrapped into the day;
* dwell time, requested energy, battery capacity, arrival state of charge,
  the battery's C-rate and the patience are independent draws; the request is
  capped at what fills the battery, ``(1 - soc_arrival) capacity``;
* times are drawn continuously and rounded to the step grid: arrival step
  ``a`` and dwell ``w = max(1, round(arrival + dwell) - a)`` steps;
  patience ``round(patience_min / step)`` steps;
* **the dwell starts at plug-in**: a car plugged at step ``p >= a`` (after
  waiting ``p - a`` steps) leaves at the start of step ``p + w``; a car that
  found a free charger leaves when it would have without a queue;
* cars that arrived on the day before the start are queued before the run
  (the same rule, without SimPy); those still plugged at the start are
  *carried in* with what uncontrolled charging at full power since plug-in
  left to do, and those still waiting queue again at step 0 with the rest of
  their patience.  Sessions begun earlier are not represented.

Sessions can instead be replayed from a CSV file of real sessions
(:func:`read_sessions_csv`, ``sessions_csv``); see :func:`replay_sessions` for
how they are placed on the simulated period.

Charging physics
----------------
The battery's state of charge ``s`` rises at most at the rate
``ds/dt = min(k, c f(s))`` where ``k = eta P / C`` is the charger's limit
(``P`` the grid-side power of the charger, or less if the car's own limit is
lower; ``eta`` the charger efficiency; ``C`` the capacity), ``c`` the
battery's maximum C-rate and ``f`` the constant-current/constant-voltage
taper of ACN-Sim's two-stage battery: ``f = 1`` up to ``taper_soc_frac`` (0.8)
and then linear down to ``taper_end_frac`` at full (ACN-Sim goes to zero; a
small positive end, the CV phase's termination current, lets a car reach
100 % in finite time).  The rate is integrated exactly over each step
(:func:`soc_after_max_charge`: linear, then exponential in the taper).  A step's
energy is a *mean-power* request: any energy up to the exact maximum over the
step is delivered (the charger can shape power within the step).

The setpoint is a request; per step the physics delivers
``clip(request, lo, hi)`` (:func:`energy_window_kwh`):

* ``hi``: the exact maximum over the step, and no more than still requested;
* ``lo``, the *laxity override*: the least energy that still lets the car get
  its request by departure charging at the maximum afterwards
  (:func:`soc_before_max_charge` inverts the taper); with V2G, ``lo`` is
  negative when the car may discharge, down to its floor (below).

Station connection limit
------------------------
Per station, the chargers' grid-side charging power (and, separately, their
discharging power) sum to at most ``station_limit_kw``.  When they would
exceed it, the physics first serves every car's override power (pro rata if
even those exceed the limit) and shares the remaining room pro rata to what
each car asks beyond its override, then any room still left to *urgent*
cars, those that cannot get their request at their share
(:func:`allocate_station_kw`).  A charger's *share* of the limit is
``limit * P_i / sum_station P`` when the station's rated power exceeds the
limit, else its rating.  The override is computed with the share as the
charger's maximum, so overrides alone never exceed the limit, and the
flexibility form offers each charger its share (a static split: honest
whatever cars arrive later, conservative when the station is half empty;
the urgent cars' extra room keeps dispatched cars from doing worse than
uncontrolled ones).

V2G (``v2g = true``)
--------------------
A charger then also discharges the car on request, at most ``v2g_kw``
(grid side) with efficiency ``v2g_efficiency`` (battery energy out =
grid energy / efficiency), never below ``min(soc_arrival, v2g_min_soc_frac)``
and never below what the car needs to still get its request by departure.

Flexibility
-----------
One :class:`~vpp.flex.StorageLike` row per charger: the energy delivered to
the car plugged at the horizon's start (see :meth:`EVFleet.flexibility`).
Cars that arrive later are not known to the optimizer; for plugged cars the
departure and request are known exactly (as if declared at plug-in).  The
form is conservative: the taper is taken at the highest energy the car can
have reached, and the power at the charger's share of the station limit, so
a schedule inside the form is delivered by the physics (for a car whose
request is out of reach under the form, the physics may deliver more).

Sources
-------
Session shapes by station type: workplace (Lee, Li & Low, "ACN-Data: Analysis
and Applications of an Open EV Charging Dataset", e-Energy 2019,
doi:10.1145/3307772.3328313), household (evening plug-in, overnight; Energies
17(4) 925, 2024, doi:10.3390/en17040925), fast versus slow public charging
(Andrenacci, Karagulian & Genovese, Open Research Europe 1:156, 2022,
doi:10.12688/openreseurope.14354.3).  Taper: the two-stage (CC-CV) battery of
ACN-Sim (Lee, Sharma, Johansson & Low, "ACN-Sim: An Open-Source Simulator for
Data-Driven Electric Vehicle Charging Research", IEEE Trans. Smart Grid 12(6),
5113-5123, 2021).  Laxity: Xu, Pan & Tong, "Dynamic Scheduling for Charging
Electric Vehicles: A Priority Rule", IEEE Trans. Automatic Control 61(12),
2016.  Charger sizes (120 kW public fast, 7 kW home/workplace) and ~2 %
public charger utilisation: ``docs/SOURCES.md``.  Every other number is an
assumption until calibrated to Shanghai data: arrival rates and mixtures,
dwell and energy distributions, battery sizes, arrival states of charge,
C-rates, patience, stations' sizes and limits, efficiencies, V2G limits.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from vpp.arrivals import ArrivalRequests
from vpp.assets import register
from vpp.assets.base import Fleet, FleetContext, FleetParams
from vpp.errors import ScenarioError
from vpp.exogenous.csvsource import CsvTable, read_rows
from vpp.exogenous.series import Exogenous
from vpp.flex import HorizonGrid, StorageLike
from vpp.params import ranged, sample
from vpp.timeline import Timeline

__all__ = [
    "ArrivalComponent",
    "EVParams",
    "STATION_DEFAULTS",
    "Sessions",
    "SessionFile",
    "EVFleet",
    "soc_after_max_charge",
    "soc_before_max_charge",
    "energy_window_kwh",
    "allocate_station_kw",
    "draw_sessions",
    "read_sessions_csv",
    "replay_sessions",
]


# -- parameters -------------------------------------------------------------


class ArrivalComponent(BaseModel):
    """One normal component of the arrival-time mixture, in local hours.

    Parameters
    ----------
    weight : float
        Relative weight (normalised over the mixture). [-]
    mean_h : float
        Mean arrival time of day, local. [h]
    std_h : float
        Standard deviation. [h]
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(gt=0)
    mean_h: float = Field(ge=0, lt=24)
    std_h: float = Field(ge=0, le=12)


_Positive = ranged(gt=0)
_NonNegative = ranged(ge=0)
_Efficiency = ranged(gt=0, le=1)
_Fraction = ranged(ge=0, le=1)
_Mixture = tuple[ArrivalComponent, ...]


def _mix(*components: tuple[float, float, float]) -> list[dict]:
    return [{"weight": w, "mean_h": m, "std_h": s} for w, m, s in components]


def _lognormal(mean: float, std: float, low: float, high: float = float("inf")) -> dict:
    return {"dist": "lognormal", "mean": mean, "std": std, "low": low, "high": high}


def _uniform(low: float, high: float) -> dict:
    return {"dist": "uniform", "low": low, "high": high}


#: Defaults per station type.  All values are assumptions (``docs/SOURCES.md``)
#: unless marked; the shapes follow the sources in the module docstring.
#: Arrival rates are per charger and before balking.
STATION_DEFAULTS: dict[str, dict[str, Any]] = {
    # Home chargers (7 kW AC, docs/SOURCES.md), one per home with its own car:
    # plug-in after the evening commute, overnight dwell; a car with a 60 kWh
    # pack plugs in on about every other day (household process: a car still
    # plugged in from an earlier day does not arrive again, nobody queues).
    "residential": {
        "charger_kw": 7.0,
        "efficiency": 0.95,
        "chargers_per_station": 1,
        "arrival_process": "household",
        "patience_min": 0.0,
        "sessions_per_day_weekday": 0.6,
        "sessions_per_day_weekend": 0.5,
        "arrival_weekday": _mix((0.75, 18.5, 1.5), (0.25, 13.0, 3.0)),
        "arrival_weekend": _mix((0.5, 14.0, 3.5), (0.5, 19.0, 2.0)),
        "dwell_h": _lognormal(11.0, 4.0, 0.5, 24.0),
        "energy_kwh": _lognormal(12.0, 8.0, 1.0),
        "battery_kwh": 60.0,
        "arrival_soc_frac": _uniform(0.3, 0.7),
        "v2g_kw": 7.0,
        "v2g_efficiency": 0.95,
    },
    # Workplace chargers (7 kW AC) in garages of 10: morning arrivals, a
    # working day's dwell (ACN-Data shape); few sessions at weekends.  A car
    # finding the garage's chargers busy parks without charging.
    "workplace": {
        "charger_kw": 7.0,
        "arrival_process": "poisson",
        "efficiency": 0.95,
        "chargers_per_station": 10,
        "patience_min": 0.0,
        "sessions_per_day_weekday": 0.8,
        "sessions_per_day_weekend": 0.1,
        "arrival_weekday": _mix((0.85, 8.5, 1.0), (0.15, 13.5, 2.0)),
        "arrival_weekend": _mix((1.0, 10.0, 2.5)),
        "dwell_h": _lognormal(8.5, 2.0, 1.0, 14.0),
        "energy_kwh": _lognormal(10.0, 6.0, 1.0),
        "battery_kwh": 60.0,
        "arrival_soc_frac": _uniform(0.3, 0.7),
        "v2g_kw": 7.0,
        "v2g_efficiency": 0.95,
    },
    # Public DC fast chargers: 120 kW (docs/SOURCES.md) in stations of 8;
    # 0.64 arrivals/day x 0.75 h mean dwell / 24 h = 2 % time utilisation
    # (docs/SOURCES.md: ~2 %, secondary).  Midday, evening and night-valley
    # peaks (taxis and ride-hailing cars at the valley tariff).  Drivers wait
    # 15-30 min for a free charger; they arrive with a lower charge.
    "public_fast": {
        "charger_kw": 120.0,
        "arrival_process": "poisson",
        "efficiency": 0.93,
        "chargers_per_station": 8,
        "patience_min": _uniform(15.0, 30.0),
        "sessions_per_day_weekday": 0.64,
        "sessions_per_day_weekend": 0.64,
        "arrival_weekday": _mix((0.45, 12.5, 2.5), (0.35, 18.5, 2.5), (0.20, 0.5, 1.5)),
        "arrival_weekend": _mix((0.50, 13.0, 3.0), (0.30, 19.0, 2.5), (0.20, 0.5, 1.5)),
        "dwell_h": _lognormal(0.75, 0.35, 0.2, 3.0),
        "energy_kwh": _lognormal(30.0, 12.0, 3.0),
        "battery_kwh": 70.0,
        "arrival_soc_frac": _uniform(0.1, 0.4),
        "v2g_kw": 60.0,
        "v2g_efficiency": 0.93,
    },
}


class EVParams(FleetParams):
    """Parameters of an EV charging fleet (``type = "ev"``).

    ``station_type`` selects the defaults of the fields in
    :data:`STATION_DEFAULTS`; each may be overridden.

    Parameters
    ----------
    station_type : {"residential", "workplace", "public_fast"}
        Which default session behaviour, charger and station to use.
    charger_kw : float or distribution
        Grid-side power limit per charger (drawn once per charger). [kW]
    efficiency : float or distribution
        Grid-to-battery efficiency per charger (0, 1]. [-]
    chargers_per_station : int
        Chargers per station (consecutive chargers; the last station may have
        fewer).  A value >= the fleet's count puts all chargers in one station.
    station_limit_kw : float
        Connection limit per station on the sum of its chargers' charging
        power, and on the sum of their discharging power (``inf``: none). [kW]
    arrival_process : {"poisson", "household"}
        ``"poisson"``: cars arrive at a station as a Poisson process, and one
        that finds every charger busy waits up to its patience (public and
        workplace charging).  ``"household"``: each charger has its own car,
        which arrives on a local day with probability ``sessions_per_day_*``
        unless it is still plugged in from an earlier day; nobody queues
        (home charging).
    patience_min : float or distribution
        How long a car waits for a free charger before leaving (per car). [min]
    sessions_per_day_weekday, sessions_per_day_weekend : float
        Mean number of cars arriving per charger per local day (Poisson),
        before balking; with ``arrival_process = "household"``, the
        probability that a charger's car arrives that day (at most 1). [1/day]
    arrival_weekday, arrival_weekend : list of ArrivalComponent
        Normal mixture of the arrival's local time of day. [h]
    dwell_h : float or distribution
        Time plugged in, from plug-in. [h]
    energy_kwh : float or distribution
        Energy requested, before the cap at a full battery. [kWh]
    battery_kwh : float or distribution
        Usable battery capacity per car. [kWh]
    arrival_soc_frac : float or distribution
        State of charge at arrival per car [0, 1]. [-]
    battery_c_rate_per_h : float or distribution
        The battery's maximum charging rate below the taper, per car, as a
        fraction of its capacity per hour (1.5: a 60 kWh car takes 90 kW). [1/h]
    taper_soc_frac : float
        State of charge where the constant-voltage taper begins (ACN-Sim: 0.8). [-]
    taper_end_frac : float
        Fraction of the battery's maximum rate left at 100 % (0, 1]; 1: no taper. [-]
    v2g : bool
        Whether the chargers also discharge cars on request.
    v2g_kw : float or distribution
        Grid-side discharge power limit per charger (at most ``charger_kw``). [kW]
    v2g_efficiency : float or distribution
        Battery-to-grid efficiency per charger (0, 1]. [-]
    v2g_min_soc_frac : float
        V2G never takes a car below ``min(soc_arrival, v2g_min_soc_frac)``. [-]
    unserved_cost_cny_per_kwh : float
        Penalty the optimizer puts on requested energy not delivered by
        departure (assumption). [CNY/kWh]
    sessions_csv : str, optional
        Replay the sessions of this CSV file instead of drawing them
        (:func:`read_sessions_csv`).  A relative path is looked up in the
        scenario's folder when the caller passes it as validation context
        ``base_dir``, else in the working directory, else among the bundled
        scenarios (``vpp.scenarios``); it is stored resolved.
    sessions_csv_shift_days : int or "auto"
        Whole days added to the file's times (wall clock); 0 uses the file's
        own times.  ``"auto"``: the whole number of weeks (so weekdays are
        kept) that puts the most of the file's arrivals in the simulated
        period (ties: the smallest shift).
    """

    # Fields without a default here take their station type's (STATION_DEFAULTS,
    # sources and assumptions noted there).
    station_type: Literal["residential", "workplace", "public_fast"] = "residential"
    charger_kw: _Positive  # docs/SOURCES.md sizes
    efficiency: _Efficiency  # assumption
    chargers_per_station: int = Field(ge=1)  # assumption
    arrival_process: Literal["poisson", "household"]  # by station type
    station_limit_kw: float = Field(float("inf"), gt=0)  # assumption: no limit unless given
    patience_min: _NonNegative  # assumption
    sessions_per_day_weekday: float = Field(ge=0)  # assumption (fast: ~2 % utilisation)
    sessions_per_day_weekend: float = Field(ge=0)
    arrival_weekday: _Mixture = Field(min_length=1)  # shapes after the module's sources
    arrival_weekend: _Mixture = Field(min_length=1)
    dwell_h: _NonNegative  # assumption
    energy_kwh: _NonNegative  # assumption
    battery_kwh: _Positive  # assumption
    arrival_soc_frac: _Fraction  # assumption
    battery_c_rate_per_h: _Positive = 1.5  # ~90 kW DC for a 60 kWh car (assumption)
    taper_soc_frac: float = Field(0.8, gt=0, lt=1)  # ACN-Sim two-stage battery
    taper_end_frac: float = Field(0.05, gt=0, le=1)  # CV termination ~C/20 (assumption)
    v2g: bool = False
    v2g_kw: _NonNegative  # assumption
    v2g_efficiency: _Efficiency  # assumption: as charging
    v2g_min_soc_frac: float = Field(0.3, ge=0, le=1)  # assumption
    unserved_cost_cny_per_kwh: float = Field(5.0, ge=0)
    sessions_csv: str | None = None
    sessions_csv_shift_days: int | Literal["auto"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _station_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            defaults = STATION_DEFAULTS.get(data.get("station_type", "residential"))
            if defaults is not None:
                data = {**defaults, **data}
        return data

    @field_validator("sessions_per_day_weekday", "sessions_per_day_weekend")
    @classmethod
    def _household_rate(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("arrival_process") == "household" and value > 1.0:
            raise ValueError('with arrival_process = "household" this is the probability that a car '
                             "arrives on a day, at most 1")
        return value

    @field_validator("sessions_csv")
    @classmethod
    def _sessions_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = _resolve_data_path(value, (info.context or {}).get("base_dir"))
        read_sessions_csv(path, tz=None)  # every row checked now (ScenarioError)
        return str(path)


def _resolve_data_path(value: str, base_dir) -> Path:
    p = Path(value)
    if p.is_absolute():
        candidates = [p]
    else:
        candidates = [Path(base_dir) / p] if base_dir is not None else []
        candidates += [Path.cwd() / p, Path(str(resources.files("vpp.scenarios"))) / p]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise ValueError(f"no such file: {value} (looked in {', '.join(str(c.parent) for c in candidates)})")


# -- physics ----------------------------------------------------------------


def _taper_slope(taper_soc_frac: float, taper_end_frac: float) -> float:
    return (1.0 - taper_end_frac) / (1.0 - taper_soc_frac)


def soc_after_max_charge(soc_frac, duration_h, k_per_h, c_rate_per_h, taper_soc_frac=0.8, taper_end_frac=0.05):
    """State of charge after charging at the maximum rate for *duration_h*.

    Solves ``ds/dt = min(k, c f(s))`` exactly, with the taper
    ``f(s) = 1`` for ``s <= s_t`` and ``f(s) = 1 - a (s - s_t)``,
    ``a = (1 - f_end) / (1 - s_t)``, above it.  With ``k0 = min(k, c)`` the
    rate is constant, ``k0``, up to the knee ``s_x = s_t + (1 - k0/c) / a``
    where the taper meets it; beyond it ``u = f(s)`` decays as
    ``u(t) = u(0) exp(-a c t)``, so ``s(t) = s(0) + u(0) (1 - exp(-a c t)) / a``.
    The result is capped at 1.

    Parameters
    ----------
    soc_frac : array_like
        State of charge at the start (<= 1). [-]
    duration_h : array_like
        Charging time (>= 0). [h]
    k_per_h : array_like
        The charger's limit as a rate, ``eta P / C`` (> 0). [1/h]
    c_rate_per_h : array_like
        The battery's maximum rate below the taper (> 0). [1/h]
    taper_soc_frac, taper_end_frac : float
        ``s_t`` and ``f_end = f(1)`` (``f_end = 1``: no taper). [-]

    Returns
    -------
    ndarray
        State of charge at the end. [-]

    References
    ----------
    Two-stage (CC-CV) battery of ACN-Sim (Lee, Sharma, Johansson & Low, IEEE
    Trans. Smart Grid 12(6), 2021): linear taper above ``s_t = 0.8``.
    """
    s0, tau, k, c = (np.asarray(x, dtype=float) for x in (soc_frac, duration_h, k_per_h, c_rate_per_h))
    k0 = np.minimum(k, c)
    a = _taper_slope(taper_soc_frac, taper_end_frac)
    if a <= 0.0:
        return np.minimum(s0 + k0 * tau, 1.0)
    s_knee = taper_soc_frac + (1.0 - k0 / c) / a
    t_lin = np.maximum(s_knee - s0, 0.0) / k0
    s_lin = s0 + k0 * np.minimum(tau, t_lin)
    u = 1.0 - a * (s_lin - taper_soc_frac)  # f at the end of the linear part
    t_taper = np.maximum(tau - t_lin, 0.0)
    return np.minimum(s_lin - u * np.expm1(-a * c * t_taper) / a, 1.0)


def soc_before_max_charge(soc_frac, duration_h, k_per_h, c_rate_per_h, taper_soc_frac=0.8, taper_end_frac=0.05):
    """The state of charge from which charging at the maximum for *duration_h*
    reaches *soc_frac* (the inverse of :func:`soc_after_max_charge`).

    Backwards in the taper ``u = f(s)`` grows as ``u1 exp(a c t)`` until it
    reaches ``k0/c`` at the knee, after ``ln(k0 / (c u1)) / (a c)``; before the
    knee the state falls at the constant rate ``k0``.  May return values
    below 0 (a target out of reach from an empty battery).

    Parameters
    ----------
    soc_frac : array_like
        State of charge to be reached (<= 1). [-]
    duration_h : array_like
        Charging time before it (>= 0). [h]
    k_per_h, c_rate_per_h, taper_soc_frac, taper_end_frac
        As in :func:`soc_after_max_charge` (``taper_end_frac > 0``).

    Returns
    -------
    ndarray
        State of charge at the start. [-]
    """
    s1, tau, k, c = (np.asarray(x, dtype=float) for x in (soc_frac, duration_h, k_per_h, c_rate_per_h))
    k0 = np.minimum(k, c)
    a = _taper_slope(taper_soc_frac, taper_end_frac)
    if a <= 0.0:
        return s1 - k0 * tau
    s_knee = taper_soc_frac + (1.0 - k0 / c) / a
    in_taper = s1 > s_knee
    u1 = np.maximum(1.0 - a * (s1 - taper_soc_frac), taper_end_frac)
    t_taper = np.where(in_taper, np.log(np.maximum(k0 / (c * u1), 1.0)) / (a * c), 0.0)
    back = np.minimum(tau, t_taper)
    s_top = np.where(in_taper, s1 - u1 * np.expm1(a * c * back) / a, s1)
    return s_top - k0 * np.maximum(tau - t_taper, 0.0)


_URGENT_KWH = 1e-9  # a car is urgent when short by more than this [kWh]


def energy_window_kwh(
    e_kwh,
    requested_kwh,
    soc_arrival_frac,
    capacity_kwh,
    steps_left,
    dt_h: float,
    *,
    k_max_per_h,
    k_share_per_h,
    c_rate_per_h,
    taper_soc_frac: float = 0.8,
    taper_end_frac: float = 0.05,
    discharge_max_kwh=0.0,
    floor_kwh=0.0,
):
    """Battery-side energy a plugged car may take over one step, ``[lo, hi]``.

    ``e`` is the energy delivered since plug-in (the state of charge is
    ``s = s_a + e / C``), ``R`` the request, ``s_R = s_a + R / C``:

    * ``hi = min(C (S_max(s, dt) - s), R - e)`` with :func:`soc_after_max_charge`
      at the charger's limit ``k_max``;
    * ``L = C (S_back(s_R, (n - 1) dt) - s_a)``: the energy the car must hold
      at the end of this step to reach ``R`` by departure at the maximum
      afterwards (``n`` steps left, this one included), using the station
      share's limit ``k_share``;
    * ``must = clip(L - e, 0, C (S_share(s, dt) - s))``: the laxity override;
    * ``lo = must``; with V2G (``discharge_max_kwh > 0``), where
      ``e >= F = max(floor, L)``: ``lo = -min(discharge_max, e - F)``;
    * ``urgent``: the car cannot reach ``R`` at the share's limit
      (``L - e`` exceeds what the share delivers this step); the station
      gives such cars any room left (:func:`allocate_station_kw`).

    Parameters
    ----------
    e_kwh, requested_kwh : array_like
        Energy delivered since plug-in and energy requested. [kWh]
    soc_arrival_frac, capacity_kwh : array_like
        State of charge at plug-in [-] and capacity [kWh].
    steps_left : array_like of int
        Steps until departure, this one included (>= 1). [-]
    dt_h : float
        Step length. [h]
    k_max_per_h, k_share_per_h, c_rate_per_h : array_like
        Charger limit and station share as rates ``eta P / C``, the battery's
        maximum rate. [1/h]
    taper_soc_frac, taper_end_frac : float
        The taper (:func:`soc_after_max_charge`). [-]
    discharge_max_kwh : array_like
        Battery energy V2G may take out over the step (0: no V2G). [kWh]
    floor_kwh : array_like
        Lowest ``e`` V2G may leave. [kWh]

    Returns
    -------
    lo, hi, must : ndarray
        Battery-side energy bounds over the step and the override part. [kWh]
    urgent : ndarray of bool
        Cars short of their request even at the share's limit.
    """
    e = np.asarray(e_kwh, dtype=float)
    cap = np.asarray(capacity_kwh, dtype=float)
    s_a = np.asarray(soc_arrival_frac, dtype=float)
    req = np.asarray(requested_kwh, dtype=float)
    taper = (taper_soc_frac, taper_end_frac)
    s = s_a + e / cap
    full = cap * (soc_after_max_charge(s, dt_h, k_max_per_h, c_rate_per_h, *taper) - s)
    hi = np.maximum(np.minimum(full, req - e), 0.0)
    later_h = np.maximum(np.asarray(steps_left) - 1, 0) * dt_h
    need = cap * (soc_before_max_charge(s_a + req / cap, later_h, k_share_per_h, c_rate_per_h, *taper) - s_a)
    share = cap * (soc_after_max_charge(s, dt_h, k_share_per_h, c_rate_per_h, *taper) - s)
    must = np.clip(need - e, 0.0, np.minimum(share, hi))
    dis = np.asarray(discharge_max_kwh, dtype=float)
    floor = np.maximum(np.asarray(floor_kwh, dtype=float), need)
    lo = np.where((dis > 0) & (e >= floor), -np.minimum(dis, e - floor), must)
    urgent = need - e > share + _URGENT_KWH
    return lo, hi, must, urgent


def allocate_station_kw(p_kw, p_must_kw, station, limit_kw, p_urgent_kw=None):
    """Scale chargers' grid-side power so that each station keeps its limit.

    Charging (``p > 0``): every charger first gets its override ``m``
    (``min(p_must, p)``; scaled pro rata if the overrides alone exceed the
    limit), then the room left is shared pro rata to ``p - m``; then the room
    still left is shared pro rata to ``p_urgent`` (extra power wanted by cars
    that cannot get their request at their share).  Discharging (``p < 0``)
    is scaled pro rata when its sum exceeds the limit.

    Parameters
    ----------
    p_kw : ndarray, shape (N,)
        Requested grid-side power per charger, consumption positive. [kW]
    p_must_kw : ndarray, shape (N,)
        Override part of each charger's charging power (>= 0). [kW]
    station : ndarray of int, shape (N,)
        Station of each charger.
    limit_kw : ndarray, shape (S,)
        Limit per station (``inf``: none). [kW]
    p_urgent_kw : ndarray, shape (N,), optional
        Extra charging power wanted beyond ``p`` (>= 0). [kW]

    Returns
    -------
    ndarray, shape (N,)
        Allocated power, consumption positive. [kW]
    """
    n = len(limit_kw)
    charge = np.maximum(p_kw, 0.0)
    must = np.minimum(np.maximum(p_must_kw, 0.0), charge)
    extra = charge - must
    discharge = np.maximum(-p_kw, 0.0)

    def used(amount):
        return np.bincount(station, weights=amount, minlength=n)

    def factor(amount, room):
        total = used(amount)
        over = total > room
        return np.where(over, np.divide(room, total, out=np.ones(n), where=over), 1.0)[station]

    allocated = must * factor(must, limit_kw)
    allocated = allocated + extra * factor(extra, np.maximum(limit_kw - used(allocated), 0.0))
    if p_urgent_kw is not None:
        urgent = np.maximum(p_urgent_kw, 0.0)
        allocated = allocated + urgent * factor(urgent, np.maximum(limit_kw - used(allocated), 0.0))
    return allocated - discharge * factor(discharge, limit_kw)


# -- sessions ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Sessions:
    """Cars that come to the fleet's stations, on the simulation step grid.

    Parameters
    ----------
    arrival_s : ndarray
        Arrival time, seconds after the start (negative before it); orders
        arrivals within a step. [s]
    arrival_step : ndarray of int
        Step at whose start the car arrives (``round(arrival_s / step)``).
    dwell_steps : ndarray of int
        Steps plugged in, from plug-in (>= 1).
    patience_steps : ndarray of int
        Steps the car waits for a free charger (>= 0).
    station : ndarray of int
        Station the car goes to.
    requested_kwh : ndarray
        Energy requested at arrival, <= ``(1 - arrival_soc_frac) capacity_kwh``. [kWh]
    capacity_kwh : ndarray
        Usable battery capacity. [kWh]
    arrival_soc_frac : ndarray
        State of charge at arrival. [-]
    c_rate_per_h : ndarray
        The battery's maximum rate below the taper. [1/h]
    car_kw : ndarray
        The car's own grid-side power limit (``inf``: the charger's). [kW]
    """

    arrival_s: np.ndarray
    arrival_step: np.ndarray
    dwell_steps: np.ndarray
    patience_steps: np.ndarray
    station: np.ndarray
    requested_kwh: np.ndarray
    capacity_kwh: np.ndarray
    arrival_soc_frac: np.ndarray
    c_rate_per_h: np.ndarray
    car_kw: np.ndarray

    def __len__(self) -> int:
        return int(self.arrival_step.size)

    def take(self, idx: np.ndarray) -> Sessions:
        """The sessions at *idx*."""
        return Sessions(**{k: getattr(self, k)[idx] for k in self.__dataclass_fields__})


def _mixture_hours(components: tuple[ArrivalComponent, ...], rng: np.random.Generator, n: int) -> np.ndarray:
    w = np.array([c.weight for c in components])
    which = rng.choice(len(components), size=n, p=w / w.sum())
    mean = np.array([c.mean_h for c in components])[which]
    std = np.array([c.std_h for c in components])[which]
    return np.mod(rng.normal(mean, std), 24.0)


def _local_midnights(timeline: Timeline, lookback_days: int) -> pd.DatetimeIndex:
    """Local midnights from *lookback_days* before the start's date to the last step's date."""
    tz = timeline.start.tz
    first = timeline.start.tz_localize(None).normalize() - pd.Timedelta(days=lookback_days)
    last_step = timeline.start + pd.Timedelta(seconds=(timeline.n_steps - 1) * timeline.step_s)
    last = last_step.tz_localize(None).normalize()
    days = pd.date_range(first, last, freq="D")
    return days.tz_localize(tz, ambiguous=np.zeros(len(days), dtype=bool), nonexistent="shift_forward")


def _on_grid(arrival_s: np.ndarray, departure_s: np.ndarray, step_s: float):
    """Arrival step and dwell in steps (>= 1) of continuous times. [s]"""
    a = np.rint(arrival_s / step_s).astype(np.int64)
    dwell = np.maximum(np.rint(departure_s / step_s).astype(np.int64) - a, 1)
    return a, dwell


def _car_draws(params: EVParams, energy_kwh: np.ndarray, rng: np.random.Generator, n: int) -> dict:
    """Battery, state of charge, C-rate and patience of *n* cars; the request capped at full."""
    capacity = sample(params.battery_kwh, rng, n)
    soc = sample(params.arrival_soc_frac, rng, n)
    return {
        "capacity_kwh": capacity,
        "arrival_soc_frac": soc,
        "requested_kwh": np.minimum(energy_kwh, (1.0 - soc) * capacity),
        "c_rate_per_h": sample(params.battery_c_rate_per_h, rng, n),
        "patience_s": 60.0 * sample(params.patience_min, rng, n),
    }


def _household_days(p_day: np.ndarray, n_cars: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Day and car of each draw of the household process: car ``c`` (one per
    charger) tries to arrive on day ``d`` with probability ``p_day[d]``; day-major."""
    day, car = np.nonzero(rng.random((len(p_day), n_cars)) < p_day[:, None])
    return day, car


def _car_is_back(day: np.ndarray, car: np.ndarray, arrival_step: np.ndarray, dwell_steps: np.ndarray) -> np.ndarray:
    """Which household arrivals happen: a car still plugged in from an earlier
    day (arrival before that session's departure step) does not arrive again.
    *day* is non-decreasing (arrivals of one day follow the previous day's)."""
    keep = np.zeros(len(day), dtype=bool)
    free_from = np.full(int(car.max(initial=-1)) + 1, np.iinfo(np.int64).min)
    bounds = np.searchsorted(day, np.arange(int(day.max(initial=-1)) + 2))
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        c = car[lo:hi]                                  # each car at most once per day
        back = arrival_step[lo:hi] >= free_from[c]
        keep[lo:hi] = back
        free_from[c[back]] = arrival_step[lo:hi][back] + dwell_steps[lo:hi][back]
    return keep


def draw_sessions(params: EVParams, chargers_at: np.ndarray, timeline: Timeline, rng: np.random.Generator) -> Sessions:
    """Draw every car that comes to the stations, from the day before the start.

    Parameters
    ----------
    params : EVParams
        Session distributions.
    chargers_at : ndarray of int, shape (S,)
        Number of chargers of each station.
    timeline : Timeline
        Simulated steps (padding ignored).
    rng : numpy.random.Generator
        The fleet's random stream.

    Returns
    -------
    Sessions
        Arrivals before the end of the simulated period, sorted by arrival time.
    """
    days = _local_midnights(timeline, lookback_days=1)
    day_offset_s = np.asarray((days - timeline.start) / pd.Timedelta(seconds=1), dtype=float)
    weekend = np.asarray(days.day_of_week >= 5)
    per_charger = np.where(weekend, params.sessions_per_day_weekend, params.sessions_per_day_weekday)
    if params.arrival_process == "household":
        day, car = _household_days(per_charger, int(chargers_at.sum()), rng)
        station = np.repeat(np.arange(len(chargers_at)), chargers_at)[car]
    else:
        n_st = len(chargers_at)
        counts = rng.poisson(per_charger[:, None] * chargers_at[None, :]).ravel()  # day-major
        day = np.repeat(np.repeat(np.arange(len(days)), n_st), counts)
        station = np.repeat(np.tile(np.arange(n_st), len(days)), counts)
    n = len(day)

    hours = np.empty(n)
    on_weekend = weekend[day]
    hours[~on_weekend] = _mixture_hours(params.arrival_weekday, rng, int((~on_weekend).sum()))
    hours[on_weekend] = _mixture_hours(params.arrival_weekend, rng, int(on_weekend.sum()))
    dwell_h = sample(params.dwell_h, rng, n)
    energy_kwh = sample(params.energy_kwh, rng, n)
    cars = _car_draws(params, energy_kwh, rng, n)

    arrival_s = day_offset_s[day] + 3600.0 * hours
    a, dwell = _on_grid(arrival_s, arrival_s + 3600.0 * dwell_h, timeline.step_s)
    keep = a < timeline.n_steps
    if params.arrival_process == "household":
        keep &= _car_is_back(day, car, a, dwell)
    order = np.argsort(arrival_s[keep], kind="stable")
    return Sessions(
        arrival_s=arrival_s[keep][order],
        arrival_step=a[keep][order],
        dwell_steps=dwell[keep][order],
        patience_steps=np.rint(cars["patience_s"] / timeline.step_s).astype(np.int64)[keep][order],
        station=station[keep][order],
        requested_kwh=cars["requested_kwh"][keep][order],
        capacity_kwh=cars["capacity_kwh"][keep][order],
        arrival_soc_frac=cars["arrival_soc_frac"][keep][order],
        c_rate_per_h=cars["c_rate_per_h"][keep][order],
        car_kw=np.full(int(keep.sum()), np.inf),
    )


# -- replay of real sessions from a CSV -------------------------------------

_OFFSET = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_REQUIRED = ("arrival", "departure", "energy_kwh", "max_power_kw", "station")


@dataclass(frozen=True, eq=False)
class SessionFile:
    """The sessions of a CSV file (see :func:`read_sessions_csv`).

    Attributes
    ----------
    path : str
        The file, as named in error messages.
    arrival, departure : DatetimeIndex
        Plug-in and leaving times (tz-aware; naive if read without a zone).
    energy_kwh, max_power_kw : ndarray
        Energy requested [kWh] and the session's grid-side power limit [kW].
    station : ndarray of str
        Station label.
    battery_kwh, arrival_soc_frac : ndarray or None
        Optional per-session capacity [kWh] and state of charge at arrival [-].
    lines : ndarray of int
        File line number of each row.
    """

    path: str
    arrival: pd.DatetimeIndex
    departure: pd.DatetimeIndex
    energy_kwh: np.ndarray
    max_power_kw: np.ndarray
    station: np.ndarray
    battery_kwh: np.ndarray | None
    arrival_soc_frac: np.ndarray | None
    lines: np.ndarray

    def error(self, field: str, reason: str, row: int | None = None) -> ScenarioError:
        """A one-line :class:`ScenarioError` about *field* (at data row *row*, 0-based)."""
        where = field if row is None else f"{field} row {int(self.lines[row])}"
        return ScenarioError(self.path, where, reason)


def _times(table: CsvTable, column: str, tz) -> pd.DatetimeIndex:
    raw = pd.Series(table.cells[column], dtype=object).str.strip()
    aware = raw.str.slice(10).str.contains(_OFFSET, regex=True).to_numpy(bool)
    if aware.any() and not aware.all():
        i = int(np.argmax(aware != aware[0]))
        raise table.error(column, "mixes times with and without a UTC offset; give all or none", i)
    times = pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=bool(aware[0]))
    bad = times.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise table.error(column, f"cannot read {raw.iloc[i]!r} as an ISO 8601 time", i)
    index = pd.DatetimeIndex(times)
    if tz is None:
        return index
    if index.tz is None:
        index = index.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        if index.isna().any():
            i = int(np.argmax(index.isna()))
            raise table.error(column, f"{raw.iloc[i]!r} does not exist or is ambiguous in {tz}", i)
    return index.tz_convert(tz)


def read_sessions_csv(path: str | Path, tz) -> SessionFile:
    """Read charging sessions from a CSV file, every cell checked.

    Format: UTF-8, comma-separated, one header row; lines starting with ``#``
    and blank lines are ignored (use them for provenance).  One row per
    session; other columns are ignored:

    ================  =============================================================
    ``arrival``       plug-in time, ISO 8601 (all with a UTC offset or none; naive
                      times are wall-clock times in the scenario's zone)
    ``departure``     leaving time, after ``arrival`` (same rule)
    ``energy_kwh``    energy requested (>= 0) [kWh]
    ``max_power_kw``  the session's grid-side power limit (> 0) [kW]
    ``station``       station label (non-empty)
    ``battery_kwh``   optional: usable capacity (> 0, >= energy) [kWh]
    ``arrival_soc_frac`` optional: state of charge at arrival, in [0, 1], with
                      ``energy <= (1 - soc) battery`` when both are given [-]
    ================  =============================================================

    These are the fields researchers take from public session data such as
    ACN-Data (connection and disconnection time, kWh requested, maximum rate,
    site/station).

    Parameters
    ----------
    path : str or Path
    tz : str or None
        Zone of naive times; ``None`` keeps naive times naive (for checking).

    Raises
    ------
    ScenarioError
        ``<file>: <column> row N: <reason>`` (N: the line in the file).
    """
    path = Path(path)
    header, rows, lines = read_rows(path)
    cells = {name: [r[j] for r in rows] for j, name in enumerate(header)}
    table = CsvTable(str(path), np.zeros(0), pd.Timestamp(0, tz="UTC"), 0.0, cells, np.asarray(lines))
    for column in _REQUIRED:
        if column not in cells:
            raise table.error(column, f"missing column (the file has: {', '.join(header)})")
    arrival, departure = _times(table, "arrival", tz), _times(table, "departure", tz)
    if (arrival.tz is None) != (departure.tz is None):
        raise table.error("departure", "has UTC offsets where arrival has none (or the reverse); give all or none")
    not_after = np.asarray(departure <= arrival)
    if not_after.any():
        i = int(np.argmax(not_after))
        raise table.error("departure", f"{cells['departure'][i].strip()!r} is not after the arrival", i)
    energy = table.numbers("energy_kwh", minimum=0.0, what="energy")
    power = table.numbers("max_power_kw", minimum=0.0, what="power")
    if (power <= 0).any():
        raise table.error("max_power_kw", "must be > 0", int(np.argmax(power <= 0)))
    station = np.array([c.strip() for c in cells["station"]], dtype=object)
    if (station == "").any():
        raise table.error("station", "empty cell", int(np.argmax(station == "")))
    battery = soc = None
    if "battery_kwh" in cells:
        battery = table.numbers("battery_kwh", minimum=0.0, what="capacity")
        if (battery <= 0).any():
            raise table.error("battery_kwh", "must be > 0", int(np.argmax(battery <= 0)))
        if (energy > battery).any():
            i = int(np.argmax(energy > battery))
            raise table.error("energy_kwh", f"{energy[i]:g} kWh exceeds battery_kwh ({battery[i]:g})", i)
    if "arrival_soc_frac" in cells:
        soc = table.numbers("arrival_soc_frac", between=(0.0, 1.0))
        if battery is not None:
            over = energy > (1.0 - soc) * battery + 1e-9
            if over.any():
                i = int(np.argmax(over))
                raise table.error(
                    "energy_kwh",
                    f"{energy[i]:g} kWh does not fit in the battery ({battery[i]:g} kWh at state of charge {soc[i]:g})",
                    i,
                )
    return SessionFile(str(path), arrival, departure, energy, power, station, battery, soc, np.asarray(lines))


def _shift_days(f: SessionFile, timeline: Timeline, shift: int | str) -> int:
    """Whole days to add to the file's times (``"auto"``: see :class:`EVParams`)."""
    if shift != "auto":
        return int(shift)
    wall = f.arrival.tz_convert(timeline.start.tz).tz_localize(None)
    start = timeline.start.tz_localize(None)
    end = start + pd.Timedelta(seconds=timeline.n_steps * timeline.step_s)
    lo = math.floor((start.normalize() - wall.max().normalize()).days / 7) - 1
    hi = math.ceil((end - wall.min().normalize()).days / 7) + 1
    best, best_count = 0, -1
    for weeks in sorted(range(lo, hi + 1), key=abs):  # ties: the smallest shift
        t = wall + pd.Timedelta(days=7 * weeks)
        count = int(((t >= start) & (t < end)).sum())
        if count > best_count:
            best, best_count = 7 * weeks, count
    return best


def replay_sessions(
    f: SessionFile,
    params: EVParams,
    n_stations: int,
    timeline: Timeline,
    rng: np.random.Generator,
) -> Sessions:
    """Place the sessions of a file on the simulated period.

    Times are shifted by ``params.sessions_csv_shift_days`` whole days (wall
    clock, so a session keeps its local time of day; ``"auto"``: whole weeks,
    see :class:`EVParams`); sessions arriving from the day before the start to
    the end are kept (the day before fills the chargers at the start).  Station
    labels are numbered in sorted order onto the fleet's stations.  The dwell
    is the file's departure minus arrival, from plug-in (a car that waits
    keeps it).  Missing battery and state-of-charge columns are drawn from the
    fleet's parameters, a drawn capacity raised or a drawn state of charge
    lowered so that the request fits (given values are kept; every request is
    replayed in full).  Patience and C-rate are drawn from the parameters.

    Raises
    ------
    ScenarioError
        More station labels than the fleet's stations, or no session in the
        simulated period.
    """
    labels = np.unique(f.station.astype(str))
    if len(labels) > n_stations:
        raise f.error(
            "station",
            f"{len(labels)} stations in the file but the fleet has {n_stations} "
            f"(count / chargers_per_station, rounded up)",
        )
    days = _shift_days(f, timeline, params.sessions_csv_shift_days)
    tz = timeline.start.tz

    def seconds(t: pd.DatetimeIndex) -> np.ndarray:
        wall = t.tz_convert(tz).tz_localize(None) + pd.Timedelta(days=days)
        local = wall.tz_localize(tz, ambiguous=np.zeros(len(wall), dtype=bool), nonexistent="shift_forward")
        return np.asarray((local - timeline.start) / pd.Timedelta(seconds=1), dtype=float)

    arrival_s, departure_s = seconds(f.arrival), seconds(f.departure)
    day_before = (timeline.start.tz_localize(None).normalize() - pd.Timedelta(days=1)).tz_localize(tz)
    lookback_s = (day_before - timeline.start) / pd.Timedelta(seconds=1)
    a, dwell = _on_grid(arrival_s, departure_s, timeline.step_s)
    keep = (arrival_s >= lookback_s) & (a < timeline.n_steps)
    if not (keep & (a + dwell > 0)).any():
        raise f.error(
            "arrival",
            f"no session falls in the simulated period after shifting by {days} days "
            f"(file: {f.arrival.min()} to {f.arrival.max()})",
        )
    n = len(a)
    energy = f.energy_kwh
    cars = _car_draws(params, energy, rng, n)
    soc = f.arrival_soc_frac if f.arrival_soc_frac is not None else cars["arrival_soc_frac"]
    if f.battery_kwh is not None:
        capacity = f.battery_kwh
    else:  # a drawn capacity is raised until the request fits
        room = 1.0 - soc
        full = (room <= 0) & (energy > 0) & keep
        if full.any():
            raise f.error(
                "arrival_soc_frac",
                "a full battery leaves no room for energy_kwh (add battery_kwh)",
                int(np.argmax(full)),
            )
        capacity = np.maximum(cars["capacity_kwh"], energy / np.where(room > 0, room, 1.0))
    soc = np.clip(np.minimum(soc, 1.0 - energy / capacity), 0.0, 1.0)  # a drawn one lowered to fit
    station = np.searchsorted(labels, f.station.astype(str))
    order = np.flatnonzero(keep)[np.argsort(arrival_s[keep], kind="stable")]
    return Sessions(
        arrival_s=arrival_s[order],
        arrival_step=a[order],
        dwell_steps=dwell[order],
        patience_steps=np.rint(cars["patience_s"] / timeline.step_s).astype(np.int64)[order],
        station=station[order],
        requested_kwh=np.minimum(energy, (1.0 - soc) * capacity)[order],
        capacity_kwh=capacity[order],
        arrival_soc_frac=soc[order],
        c_rate_per_h=cars["c_rate_per_h"][order],
        car_kw=f.max_power_kw[order],
    )


_NEVER = np.iinfo(np.int64).min  # "no such step"


def _queue_before_start(s: Sessions, chargers_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First come, first served with patience, for the cars that arrive before step 0.

    Returns each car's plug step if it plugs before step 0 (else ``_NEVER``)
    and whether it is still waiting at step 0.  The engine's rule: a car
    plugs at ``max(a, f)``, ``f`` the time the first charger of its station is
    free, if ``f <= a + patience``, else leaves at ``a + patience``.
    """
    plug = np.full(len(s), _NEVER, dtype=np.int64)
    waiting = np.zeros(len(s), dtype=bool)
    free = {st: [_NEVER] * int(m) for st, m in enumerate(chargers_at)}
    for i in np.flatnonzero(s.arrival_step < 0):
        a, w, st = int(s.arrival_step[i]), int(s.patience_steps[i]), int(s.station[i])
        start = max(a, free[st][0])
        if start > a + w or start >= 0:  # leaves unserved, or plugs at or after step 0
            waiting[i] = a + w >= 0
            continue
        plug[i] = start
        heapq.heapreplace(free[st], start + int(s.dwell_steps[i]))
    return plug, waiting


# -- the fleet --------------------------------------------------------------

_FUTURE, _PLUGGED, _DEPARTED, _BALKED = 0, 1, 2, 3


@register
class EVFleet(Fleet):
    """N chargers in stations of one type; see the module docstring.

    Sign: generator convention; charging power is returned negative, V2G
    discharge positive.
    """

    type_name = "ev"
    Params = EVParams
    role = "load"
    green = False
    curtailable = False
    state_columns = ("ev_connected", "ev_waiting", "ev_energy_delivered_kwh", "ev_energy_unserved_kwh")

    def __init__(self, ctx: FleetContext, params: EVParams):
        super().__init__(ctx, params)
        n, p = self.n_assets, params
        self.charger_kw = sample(p.charger_kw, self.rng, n)
        self.efficiency = sample(p.efficiency, self.rng, n)
        if p.v2g:
            self.v2g_kw = np.minimum(sample(p.v2g_kw, self.rng, n), self.charger_kw)
            self.v2g_efficiency = sample(p.v2g_efficiency, self.rng, n)
        else:
            self.v2g_kw, self.v2g_efficiency = np.zeros(n), np.ones(n)
        self.station = np.arange(n) // p.chargers_per_station
        self.n_stations = int(self.station[-1]) + 1 if n else 0
        chargers_at = np.bincount(self.station, minlength=self.n_stations)
        rated = np.bincount(self.station, weights=self.charger_kw, minlength=self.n_stations)
        self.station_limit_kw = np.full(self.n_stations, p.station_limit_kw)
        self.share_kw = self.charger_kw * np.minimum(1.0, p.station_limit_kw / rated[self.station])
        self._taper = (p.taper_soc_frac, p.taper_end_frac)

        if p.sessions_csv is None:
            s = draw_sessions(p, chargers_at, self.timeline, self.rng)
        else:
            f = read_sessions_csv(p.sessions_csv, self.timeline.start.tz)
            s = replay_sessions(f, p, self.n_stations, self.timeline, self.rng)
        self._init_sessions(s, chargers_at)

        # per-charger state of the plugged car (empty: session -1, harmless values)
        self._session = np.full(n, -1, dtype=np.int64)
        self._e_kwh = np.zeros(n)
        self._req_kwh = np.zeros(n)
        self._soc_a = np.zeros(n)
        self._cap_kwh = np.ones(n)
        self._c_rate = np.ones(n)
        self._p_max_kw = np.array(self.charger_kw)
        self._dep_step = np.zeros(n, dtype=np.int64)
        self._floor_kwh = np.zeros(n)
        self._unserved_pending_kwh = 0.0
        self._resolved = 0
        self._last = {k: 0.0 for k in self.state_columns}

    def _init_sessions(self, s: Sessions, chargers_at: np.ndarray) -> None:
        """Queue the cars of the day before; keep the ones that matter to the run.

        Requests: cars plugged at the start (carried in, no patience), then
        cars still waiting at the start (the rest of their patience), all at
        step 0, then the run's arrivals; first come, first served within a step.
        """
        pre_plug, waiting0 = _queue_before_start(s, chargers_at)
        carried = (pre_plug != _NEVER) & (pre_plug + s.dwell_steps > 0)
        keep = carried | waiting0 | (s.arrival_step >= 0)
        kind = np.where(carried, 0, np.where(waiting0, 1, 2))[keep]
        s, pre_plug = s.take(np.flatnonzero(keep)), pre_plug[keep]
        order = np.lexsort((s.arrival_s, kind, np.maximum(s.arrival_step, 0)))
        s, self._pre_plug, kind = s.take(order), pre_plug[order], kind[order]
        self.sessions, m = s, len(s)
        self._carried = kind == 0
        patience = np.select([kind == 0, kind == 1], [0, s.arrival_step + s.patience_steps], s.patience_steps)
        self._requests = ArrivalRequests(np.arange(m), np.maximum(s.arrival_step, 0), s.station.copy(), patience)
        self._s_requested = s.requested_kwh.copy()  # carried-in: what is left at the start
        self._s_soc_a = s.arrival_soc_frac.copy()  # carried-in: at the start
        self._s_status = np.full(m, _FUTURE, dtype=np.int8)
        self._s_charger = np.full(m, -1, dtype=np.int64)
        self._s_plug = np.full(m, _NEVER, dtype=np.int64)
        self._s_left = np.full(m, _NEVER, dtype=np.int64)  # departure or balking step
        self._s_delivered = np.zeros(m)
        self._s_discharged = np.zeros(m)

    # -- the queue (called by the engine in the events phase) -------------
    def arrival_requests(self) -> ArrivalRequests:
        """Every car of the run (carried-in cars first, at step 0), by arrival."""
        return self._requests

    def server_station(self) -> np.ndarray:
        """Station of each charger."""
        return self.station.copy()

    def plug(self, k: int, request_id: int, server: int) -> int:
        """Car *request_id* plugs into charger *server* at step *k*; returns its departure step."""
        i, c, s = int(request_id), int(server), self.sessions
        cap, soc_a, req = s.capacity_kwh[i], s.arrival_soc_frac[i], s.requested_kwh[i]
        p_max = min(self.charger_kw[c], s.car_kw[i])
        if self._carried[i]:
            plugged_at = int(self._pre_plug[i])
            departure = plugged_at + int(s.dwell_steps[i])
            # uncontrolled charging at the maximum from plug-in to step k
            soc_k = soc_after_max_charge(
                soc_a, (k - plugged_at) * self.dt_h, self.efficiency[c] * p_max / cap, s.c_rate_per_h[i], *self._taper
            )
            done = min(float(cap * (soc_k - soc_a)), req)
            soc_a, req = soc_a + done / cap, req - done
        else:
            plugged_at, departure = k, k + int(s.dwell_steps[i])
        self._s_requested[i], self._s_soc_a[i] = req, soc_a
        self._s_status[i], self._s_charger[i] = _PLUGGED, c
        self._s_plug[i], self._s_left[i] = plugged_at, departure
        self._session[c], self._e_kwh[c], self._req_kwh[c] = i, 0.0, req
        self._soc_a[c], self._cap_kwh[c], self._c_rate[c] = soc_a, cap, s.c_rate_per_h[i]
        self._p_max_kw[c], self._dep_step[c] = p_max, departure
        self._floor_kwh[c] = min(0.0, (self.params.v2g_min_soc_frac - soc_a) * cap)
        self._resolved += 1
        return departure

    def unplug(self, k: int, server: int) -> None:
        """The car on *server* leaves at the start of step *k*: record it."""
        c = int(server)
        i = self._session[c]
        if i < 0:
            return
        self._s_delivered[i] = self._e_kwh[c]
        self._s_status[i] = _DEPARTED
        self._unserved_pending_kwh += max(self._req_kwh[c] - self._e_kwh[c], 0.0)
        self._session[c], self._e_kwh[c], self._req_kwh[c], self._dep_step[c] = -1, 0.0, 0.0, 0

    def balk(self, k: int, request_id: int) -> None:
        """Car *request_id* leaves at step *k* without a charger: all its request unserved."""
        i = int(request_id)
        self._s_status[i], self._s_left[i] = _BALKED, k
        self._unserved_pending_kwh += float(self._s_requested[i])
        self._resolved += 1

    # -- physics ---------------------------------------------------------
    def _plugged(self, k: int) -> np.ndarray:
        return (self._session >= 0) & (self._dep_step > k)

    def _window(self, k: int, idx: np.ndarray):
        """Energy window of the plugged chargers *idx* for step *k* (:func:`energy_window_kwh`)."""
        p_max = self._p_max_kw[idx]
        per_kw = self.efficiency[idx] / self._cap_kwh[idx]
        return energy_window_kwh(
            self._e_kwh[idx],
            self._req_kwh[idx],
            self._soc_a[idx],
            self._cap_kwh[idx],
            self._dep_step[idx] - k,
            self.dt_h,
            k_max_per_h=per_kw * p_max,
            k_share_per_h=per_kw * np.minimum(p_max, self.share_kw[idx]),
            c_rate_per_h=self._c_rate[idx],
            taper_soc_frac=self._taper[0],
            taper_end_frac=self._taper[1],
            discharge_max_kwh=self.v2g_kw[idx] * self.dt_h / self.v2g_efficiency[idx],
            floor_kwh=self._floor_kwh[idx],
        )

    def _step(self, k: int, setpoint_kw: np.ndarray) -> np.ndarray:
        """Charge (or discharge) plugged cars for step *k*; generator-sign power. [kW]

        Python once per step; the numpy work covers the plugged chargers only.
        """
        n, dt = self.n_assets, self.dt_h
        idx = np.flatnonzero(self._plugged(k))
        lo, hi, must, urgent = self._window(k, idx)
        eta, eta_d = self.efficiency[idx], self.v2g_efficiency[idx]
        request = -np.broadcast_to(setpoint_kw, (n,))[idx]
        request = np.nan_to_num(request, nan=0.0, posinf=np.inf, neginf=-np.inf)
        wanted = np.where(request >= 0, eta * dt * request, request * dt / eta_d)
        delta = np.clip(wanted, lo, hi)
        p = np.zeros(n)  # consumption positive [kW]
        p[idx] = np.where(delta >= 0, delta / (eta * dt), delta * eta_d / dt)
        if np.isfinite(self.station_limit_kw).any():
            boost, p_must = np.zeros(n), np.zeros(n)
            boost[idx] = np.where(urgent, np.maximum(hi / (eta * dt) - p[idx], 0.0), 0.0)
            p_must[idx] = must / (eta * dt)
            p = allocate_station_kw(p, p_must, self.station, self.station_limit_kw, boost)
            delta = np.where(p[idx] >= 0, eta * dt * p[idx], p[idx] * dt / eta_d)
        self._s_discharged[self._session[idx]] += np.maximum(-delta, 0.0)
        self._e_kwh[idx] += delta
        n_arrived = int(np.searchsorted(self._requests.arrival_step, k, side="right"))
        self._last = {
            "ev_connected": float(idx.size),
            "ev_waiting": float(n_arrived - self._resolved),
            "ev_energy_delivered_kwh": float(delta.sum()),
            "ev_energy_unserved_kwh": self._unserved_pending_kwh,
        }
        self._unserved_pending_kwh = 0.0
        return -p

    def baseline_setpoint(self, k: int) -> np.ndarray:
        """Uncontrolled charging: full power from plug-in, no V2G (the physics clips). [kW]"""
        return -self.charger_kw.copy()

    # -- flexibility -----------------------------------------------------
    def flexibility(self, grid: HorizonGrid, forecast: Exogenous) -> list[StorageLike]:
        """One StorageLike row per charger: the plugged car's energy since plug-in.

        For a car plugged at ``k0`` holding ``e0`` of its request ``R``,
        leaving at step ``d``, over the horizon's steps ``j`` (``forecast`` is
        not used: plugged cars' sessions are known exactly):

        * ``U(j) = min(R, E_max(j))``: the most the car can hold at step ``j``,
          ``E_max`` charging at the maximum from ``k0``
          (:func:`soc_after_max_charge` with the station share's limit); a
          step's power bound ``q_j``, the energy the maximum delivers in one
          step from ``U(j)`` over ``eta dt``, holds whenever the car holds at
          most ``U(j)`` (the taper only lowers the rate as energy grows).
        * ``p_charge_max`` of a block: ``min_j q_j`` over its steps before
          ``d`` (``q`` only falls, so the last of them), times ``n_b / m_b``
          (a block's mean power goes into its ``n_b`` of ``m_b`` steps before
          departure).
        * ``F``: the path charging at these bounds from ``e0``, capped at ``R``:
          ``e_max = F`` at block ends.  ``latest``: the path ending at ``R`` at
          departure (or, past the horizon, at the energy the physics' override
          needs there) charging at these bounds, backwards.
          ``e_min = max(floor, min(F, latest))`` with ``floor = e0`` (V2G: the
          V2G floor, ``<= e0``).  The bounds are at most what the physics can
          do, so ``latest`` lies above the override's need and the override
          never binds on a schedule inside the form.
        * ``e_target = R`` if ``d`` is within the horizon, else the override's
          need at the horizon's end (at least the floor).
        * V2G: ``p_discharge_max = min(v2g_kw, share) n_b / m_b``.

        Honesty: a schedule inside the form is delivered step by step for a
        car that can reach ``latest`` under the bounds (``F`` ends at or above
        the target).  A car out of reach is held to ``e_min = F``, charging at
        the bounds; the physics may then give it more (the station's spare
        room for urgent cars, or, in coarse blocks, the taper's higher rate at
        the block's first steps), never less.  The station limit is kept by
        giving each charger its share (module docstring); cars arriving
        later charge at most their override until the next dispatch, within
        their share.  Cost: Python once per call, arrays of plugged cars x
        blocks.
        """
        n, k0, dt, h = self.n_assets, grid.k0, grid.step_h, grid.n_blocks
        spb = grid.steps_per_block
        idx = np.flatnonzero(self._plugged(k0))
        eta, cap, soc_a = self.efficiency[idx, None], self._cap_kwh[idx, None], self._soc_a[idx, None]
        e0, req, d = self._e_kwh[idx, None], self._req_kwh[idx, None], self._dep_step[idx, None]
        k_share = eta * np.minimum(self._p_max_kw[idx], self.share_kw[idx])[:, None] / cap
        c_rate, taper = self._c_rate[idx, None], self._taper
        # steps of each block before departure, and the last of them (relative to k0)
        n_live = np.clip(d - (k0 + grid.starts[None, :]), 0, spb[None, :])
        last = grid.starts[None, :] + np.maximum(n_live - 1, 0)
        # the bound per step of a block: one step at the maximum from the most the
        # car can hold at the block's last live step (the lowest rate of the block)
        s_fast = soc_after_max_charge(soc_a + e0 / cap, last * dt, k_share, c_rate, *taper)
        s_top = np.minimum(s_fast, soc_a + req / cap)
        s_next = soc_after_max_charge(s_top, dt, k_share, c_rate, *taper)
        p_step = np.where(n_live > 0, np.maximum(cap * (s_next - s_top), 0.0) / (eta * dt), 0.0)  # [kW]
        cum = np.cumsum(eta * dt * p_step * n_live, axis=1)  # energy at the bounds by each block end
        fast = np.minimum(req, e0 + cum)
        k_end = k0 + grid.n_steps
        need_end = cap * (
            soc_before_max_charge(soc_a + req / cap, np.maximum(d - k_end, 0) * dt, k_share, c_rate, *taper) - soc_a
        )
        need_end = np.where(d <= k_end, req, need_end)
        latest = need_end - (cum[:, -1:] - cum)
        floor = np.minimum(self._floor_kwh[idx, None], e0) if self.params.v2g else e0
        p_dis = np.minimum(self.v2g_kw[idx], self.share_kw[idx])[:, None]

        def rows(x: np.ndarray) -> np.ndarray:
            out = np.zeros((n, h))
            out[idx] = x
            return out

        e_init, e_target = np.zeros(n), np.zeros(n)
        e_init[idx], e_target[idx] = e0[:, 0], np.maximum(floor, need_end)[:, 0]
        return [
            StorageLike(
                fleet=self.name,
                node=self.node,
                p_charge_max_kw=rows(p_step * n_live / spb),
                p_discharge_max_kw=rows(p_dis * n_live / spb),
                e_min_kwh=rows(np.maximum(floor, np.minimum(fast, latest))),
                e_max_kwh=rows(fast),
                e_init_kwh=e_init,
                e_target_kwh=e_target,
                eta_charge=self.efficiency.copy(),
                eta_discharge=self.v2g_efficiency.copy(),
                self_discharge_per_h=np.zeros(n),
                shortfall_cost_cny_per_kwh=np.full(n, self.params.unserved_cost_cny_per_kwh),
                throughput_cost_cny_per_kwh=np.zeros(n),
            )
        ]

    # -- records ---------------------------------------------------------
    def state(self) -> dict[str, float]:
        """After the last step: cars plugged and waiting, net energy into cars
        [kWh] in that step, and energy unserved [kWh] of cars that left at its
        start (balked cars count with their whole request)."""
        return dict(self._last)

    def info(self) -> dict[str, float]:
        """Rated power [kW], stations, and the run's arrivals and balked arrivals."""
        new = self.sessions.arrival_step >= 0
        return {
            "p_rated_kw": float(self.charger_kw.sum()),
            "ev_stations": float(self.n_stations),
            "ev_arrivals": float(new.sum()),
            "ev_balked_arrivals": float((new & (self._s_status == _BALKED)).sum()),
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        """``ev_sessions``: one row per car that arrived or was carried in.

        Columns: ``station``; ``charger`` (-1 if never plugged); ``arrival``
        (at the station), ``plugged_in`` and ``departure`` (tz-aware, on the
        step grid; ``departure`` is when the car left or will leave:
        plug-in + dwell, or the step it balked; NaT while waiting at the end;
        a carried-in car's arrival and plug-in precede the start);
        ``waited_steps`` (steps from arrival to plug-in or balking; to the end
        if still waiting); ``requested_kwh`` (for carried-in cars: what was
        still requested at the start); ``delivered_kwh`` (net energy into the
        battery, V2G discharge subtracted); ``discharged_kwh`` (V2G, battery
        side); ``unserved_kwh`` (requested minus delivered, >= 0, once the
        car has left; NaN before); ``balked``; ``departed`` (True once the car
        has left, balked cars included; False if still plugged or waiting at
        the end); ``carried_in``; ``battery_kwh``; ``arrival_soc_frac`` (at
        arrival, or at the start for carried-in cars); ``soc_frac`` (when it
        left, or at the end).
        """
        s, n_steps = self.sessions, self.timeline.n_steps
        status, charger = self._s_status, self._s_charger
        plugged, balked = status == _PLUGGED, status == _BALKED
        departed = (status == _DEPARTED) | balked
        delivered = self._s_delivered.copy()
        delivered[plugged] = self._e_kwh[charger[plugged]]
        was_plugged = plugged | (status == _DEPARTED)
        plugged_in = np.where(was_plugged, self._s_plug, _NEVER)
        resolved = np.where(status == _FUTURE, n_steps, np.where(balked, self._s_left, self._s_plug))

        def times(steps: np.ndarray) -> pd.DatetimeIndex:
            known = steps != _NEVER
            offset = pd.to_timedelta(np.where(known, steps, 0) * self.timeline.step_s, unit="s")
            return (self.timeline.start + offset).where(known)

        df = pd.DataFrame(
            {
                "station": s.station,
                "charger": charger,
                "arrival": times(s.arrival_step),
                "plugged_in": times(plugged_in),
                "departure": times(self._s_left),
                "waited_steps": (resolved - s.arrival_step).astype(np.int64),
                "requested_kwh": self._s_requested,
                "delivered_kwh": delivered,
                "discharged_kwh": self._s_discharged,
                "unserved_kwh": np.where(departed, np.maximum(self._s_requested - delivered, 0.0), np.nan),
                "balked": balked,
                "departed": departed,
                "carried_in": s.arrival_step < 0,
                "battery_kwh": s.capacity_kwh,
                "arrival_soc_frac": self._s_soc_a,
                "soc_frac": self._s_soc_a + delivered / s.capacity_kwh,
            }
        )
        return {"ev_sessions": df}
