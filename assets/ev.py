"""EV charging stations: chargers grouped into stations, cars that queue, taper, V2G.

Each asset is one charger (one connector).  Chargers belong to *stations* of
``chargers_per_station`` consecutive chargers (the last station may have
fewer).  Cars arrive at a station, not at a charger; the engine runs the
queue (:mod:`vpp.queueing`, a SimPy resource per station): a car takes the
lowest-numbered free charger of its station, or waits up to its patience when
every charger is busy and then leaves unserved (*balked*), first come, first
served.  At home (``arrival_process = "household"``) each charger has its own
car, which never finds it busy.

Sessions (drawn, or replayed from a file) are in :mod:`vpp.assets.ev_sessions`;
the charging physics (taper, energy window) and the station connection limit
in :mod:`vpp.assets.ev_charging`.

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
have reached.  Each charger is offered its own maximum, and the station limit
comes as a :class:`~vpp.flex.SharedLimit` over its chargers; the lower bounds
are the share's (jointly reachable within the limit), so a schedule inside
the forms is delivered by the physics (for a car whose request is out of
reach under the form, the physics may deliver more).

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

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator, model_validator

from vpp.arrivals import ArrivalRequests
from vpp.assets import register
from vpp.assets.base import Fleet, FleetContext, FleetParams, resolve_data_path
from vpp.assets.ev_charging import energy_window_kwh, soc_after_max_charge, soc_before_max_charge
from vpp.assets.ev_sessions import (
    NEVER_STEP,
    SessionFile,
    Sessions,
    draw_sessions,
    queue_before_start,
    read_sessions_acn_json,
    read_sessions_csv,
    read_sessions_file,
    replay_sessions,
)
from vpp.assets.ev_station import StationPolicy, allocate_station_kw, laxity_h
from vpp.exogenous.series import Exogenous
from vpp.flex import HorizonGrid, SharedLimit, StorageLike
from vpp.params import InputModel, Limit, ranged, sample

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
    "read_sessions_file",
    "read_sessions_acn_json",
    "replay_sessions",
]


# -- parameters -------------------------------------------------------------


class ArrivalComponent(InputModel):
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
    station_policy : {"proportional", "fcfs", "edf", "llf", "round_robin"}
        How a station's limit is shared among its plugged cars in a step
        whose requests exceed it (:mod:`vpp.assets.ev_station`): pro rata to
        the requests, first come first served, earliest deadline first,
        least laxity first, or equal shares (round robin).  The laxity
        override is served first under every policy.  Default
        ``"proportional"``, the allocation of earlier versions.
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
    station_limit_kw: Limit = Field(float("inf"), gt=0)  # assumption: no limit (inf) unless given
    station_policy: StationPolicy = "proportional"  # earlier versions' pro rata sharing (README)
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
            station_type = data.get("station_type", "residential")
            # an unknown or ill-typed station_type gets no defaults; its own field check names it
            defaults = STATION_DEFAULTS.get(station_type) if isinstance(station_type, str) else None
            if defaults is not None:
                data = {**defaults, **data}
        return data

    @field_validator("sessions_per_day_weekday", "sessions_per_day_weekend")
    @classmethod
    def _household_rate(cls, value: float, info: ValidationInfo) -> float:
        # arrival_process is declared before the rates, so it is in info.data here
        if info.data.get("arrival_process") == "household" and value > 1.0:
            raise ValueError('with arrival_process = "household" this is the probability that a car '
                             "arrives on a day, at most 1")
        return value

    @field_validator("sessions_csv")
    @classmethod
    def _sessions_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = resolve_data_path(value, (info.context or {}).get("base_dir"))
        read_sessions_file(path, tz=None)  # every row checked now (ScenarioError)
        return str(path)


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
            f = read_sessions_file(p.sessions_csv, self.timeline.start.tz)
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
        self._down = np.zeros(n, dtype=bool)          # chargers out of order (vpp.outages)
        self._dep_step = np.zeros(n, dtype=np.int64)
        self._floor_kwh = np.zeros(n)
        self._unserved_pending_kwh = 0.0
        self._resolved = 0
        self._last = {k: 0.0 for k in self.state_columns}
        self._charging = (np.empty(0, dtype=int), np.empty(0), np.empty(0))   # plugged, eta, charging kW

    def _init_sessions(self, s: Sessions, chargers_at: np.ndarray) -> None:
        """Queue the cars of the day before; keep the ones that matter to the run.

        Requests: cars plugged at the start (carried in, no patience), then
        cars still waiting at the start (the rest of their patience), all at
        step 0, then the run's arrivals; first come, first served within a step.
        """
        pre_plug, waiting0 = queue_before_start(s, chargers_at)
        carried = (pre_plug != NEVER_STEP) & (pre_plug + s.dwell_steps > 0)
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
        self._s_plug = np.full(m, NEVER_STEP, dtype=np.int64)
        self._s_left = np.full(m, NEVER_STEP, dtype=np.int64)  # departure or balking step
        self._s_delivered = np.zeros(m)
        self._s_discharged = np.zeros(m)

    # -- the queue (called by the engine in the events phase) -------------
    def arrival_requests(self) -> ArrivalRequests:
        """Every car of the run (carried-in cars first, at step 0), by arrival."""
        return self._requests

    def server_station(self) -> np.ndarray:
        """Station of each charger."""
        return self.station.copy()

    def plug(self, k: int, request_ids: np.ndarray, servers: np.ndarray) -> np.ndarray:
        """Cars *request_ids* plug into chargers *servers* at step *k*; returns their departure steps.

        A car carried in from before the run has charged at the maximum since
        it plugged in (the uncontrolled baseline), so it starts step *k* with
        that energy delivered."""
        i, c, s = np.asarray(request_ids, dtype=np.int64), np.asarray(servers, dtype=np.int64), self.sessions
        cap, soc_a, req = s.capacity_kwh[i], s.arrival_soc_frac[i].copy(), s.requested_kwh[i].copy()
        p_max = np.minimum(self.charger_kw[c], s.car_kw[i])
        carried = self._carried[i]
        plugged_at = np.where(carried, self._pre_plug[i], k)
        departure = plugged_at + s.dwell_steps[i]
        if carried.any():
            j = carried
            soc_k = soc_after_max_charge(soc_a[j], (k - plugged_at[j]) * self.dt_h,
                                         self.efficiency[c[j]] * p_max[j] / cap[j], s.c_rate_per_h[i[j]], *self._taper)
            done = np.minimum(cap[j] * (soc_k - soc_a[j]), req[j])
            soc_a[j], req[j] = soc_a[j] + done / cap[j], req[j] - done
        self._s_requested[i], self._s_soc_a[i] = req, soc_a
        self._s_status[i], self._s_charger[i] = _PLUGGED, c
        self._s_plug[i], self._s_left[i] = plugged_at, departure
        self._session[c], self._e_kwh[c], self._req_kwh[c] = i, 0.0, req
        self._soc_a[c], self._cap_kwh[c], self._c_rate[c] = soc_a, cap, s.c_rate_per_h[i]
        self._p_max_kw[c], self._dep_step[c] = p_max, departure
        self._floor_kwh[c] = np.minimum(0.0, (self.params.v2g_min_soc_frac - soc_a) * cap)
        self._resolved += len(i)
        return departure

    def unplug(self, k: int, servers: np.ndarray) -> None:
        """The cars on *servers* leave at the start of step *k*: record them."""
        c = np.asarray(servers, dtype=np.int64)
        c = c[self._session[c] >= 0]
        i = self._session[c]
        self._s_delivered[i] = self._e_kwh[c]
        self._s_status[i] = _DEPARTED
        self._unserved_pending_kwh += float(np.maximum(self._req_kwh[c] - self._e_kwh[c], 0.0).sum())
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
            p = allocate_station_kw(p, p_must, self.station, self.station_limit_kw, boost, self.params.station_policy,
                                    **self._queue_keys(k, idx))
            delta = np.where(p[idx] >= 0, eta * dt * p[idx], p[idx] * dt / eta_d)
        if self._down.any():                          # a charger out of order charges nothing, must or not
            off = self._down[idx]
            p[idx[off]] = 0.0
            delta = np.where(off, 0.0, delta)
        self._s_discharged[self._session[idx]] += np.maximum(-delta, 0.0)
        self._e_kwh[idx] += delta
        self._charging = (idx, eta, np.maximum(p[idx], 0.0))
        n_arrived = int(np.searchsorted(self._requests.arrival_step, k, side="right"))
        self._last = {
            "ev_connected": float(idx.size),
            "ev_waiting": float(n_arrived - self._resolved),
            "ev_energy_delivered_kwh": float(delta.sum()),
            "ev_energy_unserved_kwh": self._unserved_pending_kwh,
        }
        self._unserved_pending_kwh = 0.0
        return -p

    def draw_kw(self) -> tuple[float, float]:
        """Charging is flexible (V2G discharge is not a draw); nothing is fixed. [kW]"""
        return float(self._charging[2].sum()), 0.0

    def trip(self, k: int, flexible_frac: float, fixed_frac: float) -> np.ndarray:
        """Cut the charging power by *flexible_frac* of its total, from the cars
        with the most laxity first (least-laxity-first, as a station's load
        management sheds); the cars get that much less energy (a car short at
        departure is counted unserved)."""
        idx, eta, p_charge = self._charging
        cut = self._cut_by_laxity(k, idx, p_charge, flexible_frac * p_charge.sum())
        self._e_kwh[idx] -= eta * self.dt_h * cut
        self._last["ev_energy_delivered_kwh"] -= float((eta * self.dt_h * cut).sum())
        self._charging = (idx, eta, p_charge - cut)
        self.last_p_kw = self.last_p_kw.copy()
        self.last_p_kw[idx] += cut
        return self.last_p_kw

    def _cut_by_laxity(self, k: int, idx: np.ndarray, p_charge: np.ndarray, total_kw: float) -> np.ndarray:
        """*total_kw* of the chargers' power *p_charge* (plugged chargers *idx*),
        taken whole from the cars with the most laxity after step *k*, and in
        part from the last one. [kW]"""
        order = np.argsort(-self._laxity_h(k + 1, idx), kind="stable")
        before = np.cumsum(p_charge[order]) - p_charge[order]
        cut = np.empty_like(p_charge)
        cut[order] = np.clip(total_kw - before, 0.0, p_charge[order])
        return cut

    def _queue_keys(self, k: int, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Times the station policy orders chargers by, per charger (zeros where empty):
        the car's arrival at the station and its departure [h after the start],
        and its laxity at step *k* [h] (:func:`~vpp.assets.ev_station.laxity_h`,
        at the charger's battery-side maximum)."""
        keys = {name: np.zeros(self.n_assets) for name in ("arrival_h", "departure_h", "laxity_h")}
        if self.params.station_policy in ("proportional", "round_robin"):
            return keys
        keys["arrival_h"][idx] = self.sessions.arrival_s[self._session[idx]] / 3600.0
        keys["departure_h"][idx] = self._dep_step[idx] * self.dt_h
        keys["laxity_h"][idx] = self._laxity_h(k, idx)
        return keys

    def _laxity_h(self, k: int, idx: np.ndarray) -> np.ndarray:
        """Laxity at the start of step *k* of the cars on chargers *idx*, at the
        charger's battery-side maximum (:func:`~vpp.assets.ev_station.laxity_h`). [h]"""
        return laxity_h((self._dep_step[idx] - k) * self.dt_h, self._req_kwh[idx] - self._e_kwh[idx],
                        self.efficiency[idx] * self._p_max_kw[idx])


    def set_outage(self, down: np.ndarray) -> None:
        """Chargers out of order charge nothing (a car on one waits, and leaves short if the
        repair comes too late: unserved energy); the forms offer them no power."""
        self._down = np.asarray(down, dtype=bool).copy()

    def baseline_setpoint(self, k: int) -> np.ndarray:
        """Uncontrolled charging: full power from plug-in, no V2G (the physics clips). [kW]"""
        return -self.charger_kw.copy()

    # -- flexibility -----------------------------------------------------
    def flexibility(self, grid: HorizonGrid, forecast: Exogenous) -> list[StorageLike | SharedLimit]:
        """One StorageLike row per charger: the plugged car's energy since plug-in;
        and, where a station's chargers are rated above its limit, a
        :class:`~vpp.flex.SharedLimit` over its chargers.

        For a car plugged at ``k0`` holding ``e0`` of its request ``R``,
        leaving at step ``d``, over the horizon's steps ``j`` (``forecast`` is
        not used: plugged cars' sessions are known exactly), with a charging
        rate ``k`` (the charger's own maximum, or its share of the station
        limit, module docstring):

        * ``U_k(j) = min(R, E_k(j))``: the most the car can hold at step ``j``,
          ``E_k`` charging at rate ``k`` from ``k0``
          (:func:`soc_after_max_charge`); a step's power bound ``q_k,j``, the
          energy rate ``k`` delivers in one step from ``U_k(j)`` over
          ``eta dt``, holds whenever the car holds at most ``U_k(j)`` (the
          taper only lowers the rate as energy grows).  A block's bound is
          ``min_j q_j`` over its steps before ``d`` (``q`` only falls, so the
          last of them), times ``n_b / m_b`` (a block's mean power goes into
          its ``n_b`` of ``m_b`` steps before departure).
        * ``p_charge_max``, ``e_max``: at the charger's own maximum (``q_own``;
          ``e_max`` the path at these bounds from ``e0``, capped at ``R``).
          The station's :class:`SharedLimit` keeps the chargers' sum within
          the limit, so the optimizer gives the room to the cars that need it.
        * ``e_min = max(floor, min(F, latest))`` at the lower bounds
          ``q = min(q_own, q_share)``: ``F`` the path at ``q`` from ``e0``
          (capped at ``R``), ``latest`` the path at ``q`` ending at ``R`` at
          departure (or, past the horizon, at the energy the physics' override
          needs there), backwards; ``floor = e0`` (V2G: the V2G floor,
          ``<= e0``).  Each car reaches its ``e_min`` within its share, so
          the lower bounds of a station's cars are jointly reachable within its
          limit, and ``latest`` lies above the override's need, so the
          override never binds on a schedule inside the form.
        * ``p_charge_min``: for a car out of reach at its share (``F`` below
          ``latest``), the lower bound ``q`` in each block before departure:
          the override draws the share's rate at every step whatever the car
          is asked, so a plan may not give that room to another car.
        * ``e_target = R`` if ``d`` is within the horizon, else the override's
          need at the horizon's end (at least the floor).
        * V2G: ``p_discharge_max = v2g_kw n_b / m_b`` (the station limit
          bounds the discharge sum too).
        * The station limit ``L`` in every block, on the chargers' summed
          charging and (V2G) discharging.

        Honesty: a schedule inside the forms (the StorageLike rows and the
        station limits) is delivered step by step for a car that can reach
        ``latest`` under the bounds (``F`` ends at or above the target); a car
        out of reach may get more (the station's spare room for urgent cars,
        or, in coarse blocks, the taper's higher rate at the block's first
        steps), never less -- unless a car that arrives before the next
        dispatch needs its override at once (it is out of reach at its share
        on arrival): the station serves overrides first, so the planned cars
        share what is left until the next dispatch re-plans.  Cost: Python
        once per call, arrays of plugged cars x blocks.
        """
        n, k0, h = self.n_assets, grid.k0, grid.n_blocks
        spb = grid.steps_per_block
        idx = np.flatnonzero(self._plugged(k0))
        e0, d = self._e_kwh[idx, None], self._dep_step[idx, None]
        # steps of each block before departure
        n_live = np.clip(d - (k0 + grid.starts[None, :]), 0, spb[None, :])
        p_max = np.where(self._down[idx], 0.0, self._p_max_kw[idx])                # out of order: none
        p_own, cum_own = self._rate_bounds(grid, idx, n_live, p_max)
        p_kw_share = np.minimum(p_max, self.share_kw[idx])
        p_share, _ = self._rate_bounds(grid, idx, n_live, p_kw_share)
        need_end = self._need_at_end(grid, idx, p_kw_share)
        p_low = np.minimum(p_own, p_share)
        eta, req = self.efficiency[idx, None], self._req_kwh[idx, None]
        cum_low = np.cumsum(eta * grid.step_h * p_low * n_live, axis=1)
        latest = need_end - (cum_low[:, -1:] - cum_low)
        fast_low = np.minimum(req, e0 + cum_low)
        # out of reach (the share's path stays below the latest path): the override
        # draws the share's rate at every step, whatever the car is asked
        behind = fast_low < latest - 1e-9
        floor = np.minimum(self._floor_kwh[idx, None], e0) if self.params.v2g else e0

        def rows(x: np.ndarray) -> np.ndarray:
            out = np.zeros((n, h))
            out[idx] = x
            return out

        e_init, e_target = np.zeros(n), np.zeros(n)
        e_init[idx], e_target[idx] = e0[:, 0], np.maximum(floor, need_end)[:, 0]
        storage = StorageLike(
            fleet=self.name,
            node=self.node,
            p_charge_max_kw=rows(p_own * n_live / spb),
            p_discharge_max_kw=rows(self.v2g_kw[idx, None] * n_live / spb),
            e_min_kwh=rows(np.maximum(floor, np.minimum(fast_low, latest))),
            e_max_kwh=rows(np.minimum(req, e0 + cum_own)),
            e_init_kwh=e_init,
            e_target_kwh=e_target,
            eta_charge=self.efficiency.copy(),
            eta_discharge=self.v2g_efficiency.copy(),
            self_discharge_per_h=np.zeros(n),
            shortfall_cost_cny_per_kwh=np.full(n, self.params.unserved_cost_cny_per_kwh),
            throughput_cost_cny_per_kwh=np.zeros(n),
            p_charge_min_kw=rows(np.where(behind, p_low * n_live / spb, 0.0)),
        )
        limited = self.share_kw < self.charger_kw
        if not limited.any():
            return [storage]
        return [storage, self._station_limits(grid)]

    def _rate_bounds(self, grid: HorizonGrid, idx: np.ndarray, n_live: np.ndarray, p_kw: np.ndarray):
        """Per-step charging bounds of the plugged chargers *idx* at a charger power
        *p_kw* (grid side) per block (``q`` of :meth:`flexibility`) [kW], and the
        energy at these bounds by each block's end [kWh]."""
        dt = grid.step_h
        eta, cap, soc_a = self.efficiency[idx, None], self._cap_kwh[idx, None], self._soc_a[idx, None]
        e0, req = self._e_kwh[idx, None], self._req_kwh[idx, None]
        k = eta * p_kw[:, None] / cap
        c_rate, taper = self._c_rate[idx, None], self._taper
        last = grid.starts[None, :] + np.maximum(n_live - 1, 0)        # the block's last live step
        s_fast = soc_after_max_charge(soc_a + e0 / cap, last * dt, k, c_rate, *taper)
        s_top = np.minimum(s_fast, soc_a + req / cap)
        s_next = soc_after_max_charge(s_top, dt, k, c_rate, *taper)
        p_step = np.where(n_live > 0, np.maximum(cap * (s_next - s_top), 0.0) / (eta * dt), 0.0)
        return p_step, np.cumsum(eta * dt * p_step * n_live, axis=1)

    def _need_at_end(self, grid: HorizonGrid, idx: np.ndarray, p_kw: np.ndarray) -> np.ndarray:
        """Energy the override needs at the horizon's end at a charger power *p_kw*
        (the request if the car leaves within the horizon), shape (n, 1). [kWh]"""
        eta, cap, soc_a = self.efficiency[idx, None], self._cap_kwh[idx, None], self._soc_a[idx, None]
        req, d = self._req_kwh[idx, None], self._dep_step[idx, None]
        k_end = grid.k0 + grid.n_steps
        need = cap * (soc_before_max_charge(soc_a + req / cap, np.maximum(d - k_end, 0) * grid.step_h,
                                            eta * p_kw[:, None] / cap, self._c_rate[idx, None], *self._taper) - soc_a)
        return np.where(d <= k_end, req, need)

    def _station_limits(self, grid: HorizonGrid) -> SharedLimit:
        """The stations' limits in every block, on charging and on V2G discharging."""
        limit = np.repeat(self.station_limit_kw[:, None], grid.n_blocks, axis=1)
        return SharedLimit(self.name, self.node, self.station.copy(), limit, limit.copy())

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
        plugged_in = np.where(was_plugged, self._s_plug, NEVER_STEP)
        resolved = np.where(status == _FUTURE, n_steps, np.where(balked, self._s_left, self._s_plug))

        def times(steps: np.ndarray) -> pd.DatetimeIndex:
            known = steps != NEVER_STEP
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
