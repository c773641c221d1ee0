"""EV charging stations: a fleet of chargers serving randomly arriving cars.

Each asset is one charger (one connector).  Cars arrive, stay plugged for a
dwell time and ask for an amount of energy; the charger draws at most
``charger_kw`` from the grid and the car receives ``efficiency`` of it.

Sessions
--------
All sessions of the simulated period are drawn when the fleet is created,
from the fleet's own random stream (:func:`draw_sessions`):

* arrivals per charger and local day are Poisson with a mean that depends on
  the day type (weekday: Monday-Friday, weekend: Saturday-Sunday; public
  holidays and China's adjusted working days are not modelled);
* the arrival's local hour follows a normal mixture, wrapped into the same day;
* dwell time and requested energy are independent draws (requested energy is
  capped at ``battery_kwh``);
* times are drawn continuously, then rounded to the step grid: arrival step
  ``a``, departure step ``d >= a + 1``; the car is plugged during ``a .. d-1``;
* a car that arrives while its charger is busy leaves at once: a *balked*
  arrival, counted in :meth:`EVFleet.info` (no queueing yet);
* cars that arrived on the day before the start and are still plugged at the
  start are *carried in*: they are plugged from step 0 and ask for what
  uncontrolled charging at full power since their arrival would have left.
  Sessions begun earlier than the day before the start are not represented.

Charging physics (:func:`charge_power_kw`)
------------------------------------------
The setpoint is a request; the charger draws
``clip(request, p_must, p_max_now)`` where ``p_max_now`` stops at the charger
rating and at the energy still requested, and ``p_must`` (the *laxity
override*) is the least power that still lets the car get its request by
departure at full power afterwards.  Cars are never discharged (no V2G).

Flexibility
-----------
One :class:`~vpp.flex.StorageLike` form with one row per charger, whose
energy is the energy delivered to the charger's current session.  Cars that
will arrive later in the horizon are not known to the optimizer; for plugged
cars the departure step and requested energy are known exactly (as if
declared at plug-in).  The form's lower energy bound is the laxity envelope,
so that every schedule inside the form is exactly what the physics delivers.

Default session distributions per ``station_type`` follow the shapes reported
for workplace charging (Lee, Li & Low, "ACN-Data: Analysis and Applications of
an Open EV Charging Dataset", e-Energy 2019, doi:10.1145/3307772.3328313),
household charging (evening plug-in, overnight connection; e.g. Energies 17(4)
925, 2024, doi:10.3390/en17040925) and fast versus slow public charging
(Andrenacci, Karagulian & Genovese, Open Research Europe 1:156, 2022,
doi:10.12688/openreseurope.14354.3).  The numbers themselves are assumptions
(``docs/SOURCES.md``) until calibrated to Shanghai data, except the charger sizes
of ``docs/SOURCES.md`` (120 kW public fast, 7 kW home/workplace) and the public
chargers' ~2 % utilisation (Shanghai 2020, secondary), read here as time
utilisation.  Efficiencies (0.95 AC, 0.93 DC) are assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vpp.assets import register
from vpp.assets.base import Fleet, FleetContext, FleetParams
from vpp.exogenous.series import Exogenous
from vpp.flex import HorizonGrid, StorageLike
from vpp.params import ranged, sample
from vpp.timeline import Timeline

__all__ = [
    "ArrivalComponent",
    "EVParams",
    "Sessions",
    "EVFleet",
    "STATION_DEFAULTS",
    "charge_power_kw",
    "draw_sessions",
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
_Mixture = tuple[ArrivalComponent, ...]


def _mix(*components: tuple[float, float, float]) -> list[dict]:
    return [{"weight": w, "mean_h": m, "std_h": s} for w, m, s in components]


def _lognormal(mean: float, std: float, low: float, high: float = float("inf")) -> dict:
    return {"dist": "lognormal", "mean": mean, "std": std, "low": low, "high": high}


#: Defaults per station type.  All values are assumptions (``docs/SOURCES.md``)
#: unless marked; the shapes follow the sources in the module docstring.
#: Arrival rates are before balking: with these defaults about a quarter of
#: residential and workplace arrivals find the charger busy (a second car of
#: the day), about 2 % at public fast chargers.
STATION_DEFAULTS: dict[str, dict[str, Any]] = {
    # Home chargers (7 kW AC, docs/SOURCES.md): plug-in after the evening commute,
    # overnight dwell; a car with a 50-60 kWh pack plugs in every other day or so.
    "residential": {
        "charger_kw": 7.0,
        "efficiency": 0.95,
        "sessions_per_day_weekday": 0.6,
        "sessions_per_day_weekend": 0.5,
        "arrival_weekday": _mix((0.75, 18.5, 1.5), (0.25, 13.0, 3.0)),
        "arrival_weekend": _mix((0.5, 14.0, 3.5), (0.5, 19.0, 2.0)),
        "dwell_h": _lognormal(11.0, 4.0, 0.5, 24.0),
        "energy_kwh": _lognormal(12.0, 8.0, 1.0),
        "battery_kwh": 60.0,
    },
    # Workplace chargers (7 kW AC): morning arrivals, a working day's dwell
    # (ACN-Data shape); few sessions at weekends.
    "workplace": {
        "charger_kw": 7.0,
        "efficiency": 0.95,
        "sessions_per_day_weekday": 0.8,
        "sessions_per_day_weekend": 0.1,
        "arrival_weekday": _mix((0.85, 8.5, 1.0), (0.15, 13.5, 2.0)),
        "arrival_weekend": _mix((1.0, 10.0, 2.5)),
        "dwell_h": _lognormal(8.5, 2.0, 1.0, 14.0),
        "energy_kwh": _lognormal(10.0, 6.0, 1.0),
        "battery_kwh": 60.0,
    },
    # Public DC fast chargers: 120 kW (docs/SOURCES.md); 0.64 arrivals/day x 0.75 h
    # mean dwell / 24 h = 2 % time utilisation (docs/SOURCES.md: ~2 %, secondary).
    # Midday, evening and night-valley peaks (taxis and ride-hailing cars
    # charging at the valley tariff): an assumption.
    "public_fast": {
        "charger_kw": 120.0,
        "efficiency": 0.93,
        "sessions_per_day_weekday": 0.64,
        "sessions_per_day_weekend": 0.64,
        "arrival_weekday": _mix((0.45, 12.5, 2.5), (0.35, 18.5, 2.5), (0.20, 0.5, 1.5)),
        "arrival_weekend": _mix((0.50, 13.0, 3.0), (0.30, 19.0, 2.5), (0.20, 0.5, 1.5)),
        "dwell_h": _lognormal(0.75, 0.35, 0.2, 3.0),
        "energy_kwh": _lognormal(30.0, 12.0, 3.0),
        "battery_kwh": 70.0,
    },
}


class EVParams(FleetParams):
    """Parameters of an EV charging fleet (``type = "ev"``).

    ``station_type`` selects the defaults of every other field
    (:data:`STATION_DEFAULTS`); each may be overridden.

    Parameters
    ----------
    station_type : {"residential", "workplace", "public_fast"}
        Which default session behaviour and charger to use.
    charger_kw : float or distribution
        Grid-side power limit per charger (drawn once per charger). [kW]
    efficiency : float or distribution
        Grid-to-battery efficiency per charger (0, 1]. [-]
    sessions_per_day_weekday, sessions_per_day_weekend : float
        Mean number of cars arriving per charger per local day (Poisson),
        before balking. [1/day]
    arrival_weekday, arrival_weekend : list of ArrivalComponent
        Normal mixture of the arrival's local time of day. [h]
    dwell_h : float or distribution
        Time plugged in. [h]
    energy_kwh : float or distribution
        Energy requested by the car, before the ``battery_kwh`` cap. [kWh]
    battery_kwh : float
        Cap on the requested energy (usable battery size). [kWh]
    unserved_cost_cny_per_kwh : float
        Penalty the optimizer puts on requested energy not delivered by
        departure (assumption). [CNY/kWh]
    """

    station_type: Literal["residential", "workplace", "public_fast"] = "residential"
    charger_kw: _Positive
    efficiency: _Efficiency
    sessions_per_day_weekday: float = Field(ge=0)
    sessions_per_day_weekend: float = Field(ge=0)
    arrival_weekday: _Mixture = Field(min_length=1)
    arrival_weekend: _Mixture = Field(min_length=1)
    dwell_h: _NonNegative
    energy_kwh: _NonNegative
    battery_kwh: float = Field(gt=0)
    unserved_cost_cny_per_kwh: float = Field(5.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _station_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            defaults = STATION_DEFAULTS.get(data.get("station_type", "residential"))
            if defaults is not None:
                data = {**defaults, **data}
        return data


# -- physics ----------------------------------------------------------------


def charge_power_kw(
    request_kw: np.ndarray,
    remaining_kwh: np.ndarray,
    steps_left: np.ndarray,
    charger_kw: np.ndarray,
    efficiency: np.ndarray,
    dt_h: float,
) -> np.ndarray:
    """Grid-side charging power of plugged chargers over one step.

    ``p = clip(request, p_must, p_max_now)`` with

    * ``p_max_now = min(P, R / (eta dt))``: the rating ``P`` and the energy
      still requested ``R``;
    * ``p_must = min(max(0, R - eta P dt (s - 1)) / (eta dt), p_max_now)``:
      the laxity override, the least power that still lets full power in the
      ``s - 1`` remaining steps deliver ``R`` by departure.

    Parameters
    ----------
    request_kw : ndarray
        Requested charging power (>= 0 charges; NaN is read as 0). [kW]
    remaining_kwh : ndarray
        Energy still requested by the car (0 for an empty charger). [kWh]
    steps_left : ndarray of int
        Steps until departure, this one included (>= 1 when plugged). [-]
    charger_kw : ndarray
        Grid-side rating ``P``. [kW]
    efficiency : ndarray
        Grid-to-battery efficiency ``eta``. [-]
    dt_h : float
        Step length. [h]

    Returns
    -------
    ndarray
        Grid-side charging power, >= 0 (consumption; the fleet returns its
        negative in generator sign). [kW]

    References
    ----------
    Laxity (time to departure minus the time still needed at full power) as
    in Y. Xu, F. Pan and L. Tong, "Dynamic Scheduling for Charging Electric
    Vehicles: A Priority Rule", IEEE Trans. Automatic Control 61(12), 2016.
    """
    remaining = np.maximum(np.asarray(remaining_kwh, dtype=float), 0.0)
    per_kw = efficiency * dt_h  # kWh into the car per kW held over the step
    p_max_now = np.minimum(charger_kw, remaining / per_kw)
    later_kwh = per_kw * charger_kw * np.maximum(np.asarray(steps_left) - 1, 0)
    p_must = np.minimum(np.maximum(remaining - later_kwh, 0.0) / per_kw, p_max_now)
    request = np.asarray(request_kw, dtype=float)
    request = np.where(np.isnan(request), 0.0, request)
    return np.clip(request, p_must, p_max_now)


# -- sessions ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Sessions:
    """Charging sessions on the simulation step grid, non-overlapping per charger.

    Parameters
    ----------
    charger : ndarray of int
        Charger index of each session.
    arrival_step : ndarray of int
        Step at which the car plugs in (negative for a car carried in from
        before the start).
    departure_step : ndarray of int
        Step at whose start the car leaves (``> arrival_step``; may lie beyond
        the simulated period).
    requested_kwh : ndarray
        Energy requested at arrival (after the battery cap). [kWh]
    n_arrivals : int
        Cars that arrived during the simulated period, balked ones included.
    n_balked : int
        Of those, cars that found their charger busy and left.
    """

    charger: np.ndarray
    arrival_step: np.ndarray
    departure_step: np.ndarray
    requested_kwh: np.ndarray
    n_arrivals: int
    n_balked: int

    def __len__(self) -> int:
        return int(self.charger.size)


def _mixture_hours(
    components: tuple[ArrivalComponent, ...], rng: np.random.Generator, n: int
) -> np.ndarray:
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
    return days.tz_localize(
        tz, ambiguous=np.zeros(len(days), dtype=bool), nonexistent="shift_forward"
    )


def _first_come_first_served(
    charger: np.ndarray, a: np.ndarray, d: np.ndarray, n_chargers: int
) -> np.ndarray:
    """Mask of sessions kept when each charger serves one car at a time.

    A car arriving while its charger is busy (``a < d`` of the car plugged)
    is dropped.  Vectorised over chargers, one loop over the k-th arrival.
    """
    order = np.lexsort((a, charger))
    counts = np.bincount(charger, minlength=n_chargers)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    keep_sorted = np.zeros(a.size, dtype=bool)
    busy_until = np.full(n_chargers, np.iinfo(np.int64).min)
    a_s, d_s = a[order], d[order]
    for j in range(int(counts.max(initial=0))):
        chargers = np.flatnonzero(counts > j)
        idx = first[chargers] + j
        ok = a_s[idx] >= busy_until[chargers]
        keep_sorted[idx] = ok
        busy_until[chargers[ok]] = d_s[idx[ok]]
    keep = np.empty_like(keep_sorted)
    keep[order] = keep_sorted
    return keep


def draw_sessions(
    params: EVParams, n_chargers: int, timeline: Timeline, rng: np.random.Generator
) -> Sessions:
    """Draw every charging session of the simulated period.

    Parameters
    ----------
    params : EVParams
        Session distributions.
    n_chargers : int
        Number of chargers N.
    timeline : Timeline
        Simulated steps (padding ignored).
    rng : numpy.random.Generator
        The fleet's random stream.

    Returns
    -------
    Sessions
        Sessions plugged for at least one simulated step, arrival before the
        end, at most one car per charger at a time.
    """
    days = _local_midnights(timeline, lookback_days=1)
    day_offset_s = np.asarray((days - timeline.start) / pd.Timedelta(seconds=1), dtype=float)
    weekend = np.asarray(days.day_of_week >= 5)
    rate = np.where(weekend, params.sessions_per_day_weekend, params.sessions_per_day_weekday)
    counts = rng.poisson(rate[:, None], size=(len(days), n_chargers)).ravel()  # day-major
    day = np.repeat(np.repeat(np.arange(len(days)), n_chargers), counts)
    charger = np.repeat(np.tile(np.arange(n_chargers), len(days)), counts)
    n = int(counts.sum())

    hours = np.empty(n)
    on_weekend = weekend[day]
    hours[~on_weekend] = _mixture_hours(params.arrival_weekday, rng, int((~on_weekend).sum()))
    hours[on_weekend] = _mixture_hours(params.arrival_weekend, rng, int(on_weekend.sum()))
    dwell_h = sample(params.dwell_h, rng, n)
    energy_kwh = np.minimum(sample(params.energy_kwh, rng, n), params.battery_kwh)

    arrival_s = day_offset_s[day] + 3600.0 * hours
    a = np.rint(arrival_s / timeline.step_s).astype(np.int64)
    d = np.maximum(
        a + 1, np.rint((arrival_s + 3600.0 * dwell_h) / timeline.step_s).astype(np.int64)
    )

    keep = _first_come_first_served(charger, a, d, n_chargers)
    in_run = (a >= 0) & (a < timeline.n_steps)
    sel = keep & (d >= 1) & (a < timeline.n_steps)
    order = np.lexsort((charger[sel], a[sel]))
    return Sessions(
        charger=charger[sel][order],
        arrival_step=a[sel][order],
        departure_step=d[sel][order],
        requested_kwh=energy_kwh[sel][order],
        n_arrivals=int(in_run.sum()),
        n_balked=int((in_run & ~keep).sum()),
    )


# -- the fleet --------------------------------------------------------------

_FUTURE, _PLUGGED, _DEPARTED = 0, 1, 2


@register
class EVFleet(Fleet):
    """N chargers of one station type; see the module docstring.

    Sign: generator convention; charging power is returned negative.
    """

    type_name = "ev"
    Params = EVParams
    role = "load"
    green = False
    curtailable = False
    state_columns = ("ev_connected", "ev_energy_delivered_kwh", "ev_energy_unserved_kwh")

    def __init__(self, ctx: FleetContext, params: EVParams):
        super().__init__(ctx, params)
        n = self.n_assets
        self.charger_kw = sample(params.charger_kw, self.rng, n)
        self.efficiency = sample(params.efficiency, self.rng, n)
        s = draw_sessions(params, n, self.timeline, self.rng)
        self.n_arrivals, self.n_balked = s.n_arrivals, s.n_balked
        self._s_charger = s.charger
        self._s_arrival = s.arrival_step
        self._s_start = np.maximum(s.arrival_step, 0)
        self._s_departure = s.departure_step
        # Carried-in cars: what uncontrolled full-power charging left to do.
        c = s.charger
        pre_kwh = (
            self.efficiency[c] * self.charger_kw[c] * self.dt_h * np.maximum(-s.arrival_step, 0)
        )
        self._s_requested = np.maximum(s.requested_kwh - pre_kwh, 0.0)
        self._s_delivered = np.zeros(len(s))
        self._s_status = np.full(len(s), _FUTURE, dtype=np.int8)
        self._by_start = np.argsort(self._s_start, kind="stable")
        self._by_departure = np.argsort(self._s_departure, kind="stable")
        # per-charger state of the current session
        self._session = np.full(n, -1, dtype=np.int64)
        self._e_kwh = np.zeros(n)
        self._req_kwh = np.zeros(n)
        self._dep_step = np.zeros(n, dtype=np.int64)
        self._unserved_pending_kwh = 0.0
        self._last = {k: 0.0 for k in self.state_columns}

    # -- events ----------------------------------------------------------
    def event_steps(self) -> np.ndarray:
        """Sorted unique steps with an arrival or a departure in the simulated period."""
        dep = self._s_departure[self._s_departure < self.timeline.n_steps]
        return np.unique(np.concatenate([self._s_start, dep]))

    def apply_events(self, k: int) -> None:
        """At the start of step *k*: departures (recorded), then arrivals (plugged)."""
        lo, hi = np.searchsorted(self._s_departure[self._by_departure], [k, k + 1])
        leaving = self._by_departure[lo:hi]
        self._depart(leaving[self._s_status[leaving] == _PLUGGED])
        lo, hi = np.searchsorted(self._s_start[self._by_start], [k, k + 1])
        arriving = self._by_start[lo:hi]
        arriving = arriving[self._s_status[arriving] == _FUTURE]
        c = self._s_charger[arriving]
        self._depart(self._session[c][self._session[c] >= 0])  # only if a departure was skipped
        self._session[c] = arriving
        self._e_kwh[c] = 0.0
        self._req_kwh[c] = self._s_requested[arriving]
        self._dep_step[c] = self._s_departure[arriving]
        self._s_status[arriving] = _PLUGGED

    def _depart(self, sessions: np.ndarray) -> None:
        c = self._s_charger[sessions]
        self._s_delivered[sessions] = self._e_kwh[c]
        self._s_status[sessions] = _DEPARTED
        self._unserved_pending_kwh += float(
            np.maximum(self._req_kwh[c] - self._e_kwh[c], 0.0).sum()
        )
        self._session[c] = -1
        self._e_kwh[c] = 0.0
        self._req_kwh[c] = 0.0
        self._dep_step[c] = 0

    # -- physics ---------------------------------------------------------
    def _plugged(self, k: int) -> np.ndarray:
        return (self._session >= 0) & (self._dep_step > k)

    def _step(self, k: int, setpoint_kw: np.ndarray) -> np.ndarray:
        """Charge plugged cars for step *k*; returns generator-sign power (<= 0). [kW]"""
        setpoint_kw = np.broadcast_to(setpoint_kw, (self.n_assets,))
        plugged = self._plugged(k)
        p = charge_power_kw(
            -setpoint_kw,
            np.where(plugged, self._req_kwh - self._e_kwh, 0.0),
            np.where(plugged, self._dep_step - k, 0),
            self.charger_kw,
            self.efficiency,
            self.dt_h,
        )
        e_new = np.minimum(self._e_kwh + self.efficiency * p * self.dt_h, self._req_kwh)
        self._last = {
            "ev_connected": float(plugged.sum()),
            "ev_energy_delivered_kwh": float((e_new - self._e_kwh).sum()),
            "ev_energy_unserved_kwh": self._unserved_pending_kwh,
        }
        self._unserved_pending_kwh = 0.0
        self._e_kwh = e_new
        return -p

    def baseline_setpoint(self, k: int) -> np.ndarray:
        """Uncontrolled charging: full power from arrival (the physics clips). [kW]"""
        return -self.charger_kw.copy()

    # -- flexibility -----------------------------------------------------
    def flexibility(self, grid: HorizonGrid, forecast: Exogenous) -> list[StorageLike]:
        """One StorageLike row per charger: the current session's delivered energy.

        For a car plugged at ``k0`` with departure step ``d``, requested energy
        ``R``, delivered ``e0``, rating ``P`` and efficiency ``eta``:

        * ``p_charge_max = P * n_b / m_b`` per block, ``n_b`` of the block's
          ``m_b`` steps lying before ``d`` (a block's mean power ``pc`` is
          delivered as ``pc * m_b / n_b`` in those steps);
        * ``e_max = R``; ``e_min`` at the end ``t`` of each block (``t``
          capped at ``d``) is the laxity envelope
          ``max(e0, min(e0 + eta P (t - k0) dt, R - eta P (d - t) dt))``,
          the energy the physics' override guarantees whatever the setpoint;
        * ``e_target = R`` if ``d`` is within the horizon, else
          ``max(e0, R - eta P (d - k_end) dt)``.

        With ``e_min = e0`` instead, the optimizer could plan to charge later
        than the override allows and the physics would not follow its plan;
        with the envelope, a request reachable at full power is met in every
        feasible schedule, so a shortfall is only the unreachable part.

        Empty chargers get zeros everywhere; cars arriving later in the
        horizon are not known.  ``forecast`` is not used: the sessions of
        plugged cars are known exactly.
        """
        n, k0, dt = self.n_assets, grid.k0, grid.step_h
        plugged = self._plugged(k0)
        P, eta = self.charger_kw[:, None], self.efficiency[:, None]
        d = np.where(plugged, self._dep_step, k0)[:, None]
        e0 = np.where(plugged, self._e_kwh, 0.0)
        req = np.where(plugged, self._req_kwh, 0.0)
        block_start = k0 + grid.starts[None, :]
        spb = grid.steps_per_block[None, :]
        n_before = np.clip(d - block_start, 0, spb)
        t_end = np.minimum(block_start + spb, d)
        full = e0[:, None] + eta * P * (t_end - k0) * dt
        latest = req[:, None] - eta * P * (d - t_end) * dt
        e_min = np.maximum(e0[:, None], np.minimum(full, latest))
        k_end = k0 + grid.n_steps
        d1 = d[:, 0]
        e_target = np.where(
            d1 <= k_end,
            req,
            np.maximum(e0, req - self.efficiency * self.charger_kw * (d1 - k_end) * dt),
        )
        mask = plugged[:, None]
        shape = (n, grid.n_blocks)
        return [
            StorageLike(
                fleet=self.name,
                node=self.node,
                p_charge_max_kw=np.where(mask, P * n_before / spb, 0.0),
                p_discharge_max_kw=np.zeros(shape),
                e_min_kwh=np.where(mask, e_min, 0.0),
                e_max_kwh=np.where(mask, np.broadcast_to(req[:, None], shape), 0.0),
                e_init_kwh=e0,
                e_target_kwh=np.where(plugged, e_target, 0.0),
                eta_charge=self.efficiency.copy(),
                eta_discharge=np.ones(n),
                self_discharge_per_h=np.zeros(n),
                shortfall_cost_cny_per_kwh=np.full(n, self.params.unserved_cost_cny_per_kwh),
                throughput_cost_cny_per_kwh=np.zeros(n),
            )
        ]

    # -- records ---------------------------------------------------------
    def state(self) -> dict[str, float]:
        """After the last step: cars plugged, energy delivered to cars [kWh] in
        that step, and energy unserved [kWh] of cars that left at its start."""
        return dict(self._last)

    def info(self) -> dict[str, float]:
        """Rated power [kW], and the arrivals and balked arrivals of the run."""
        return {
            "p_rated_kw": float(self.charger_kw.sum()),
            "ev_arrivals": float(self.n_arrivals),
            "ev_balked_arrivals": float(self.n_balked),
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        """``ev_sessions``: one row per session.

        Columns: ``charger``; ``arrival`` and ``departure`` (tz-aware, on the
        step grid; a carried-in car's arrival precedes the start);
        ``requested_kwh`` (for carried-in cars: what was still requested at
        the start); ``delivered_kwh``; ``unserved_kwh`` (NaN until the car
        has left); ``departed`` (False for cars still plugged at the end);
        ``carried_in``.
        """
        plugged = self._s_status == _PLUGGED
        delivered = self._s_delivered.copy()
        delivered[plugged] = self._e_kwh[self._s_charger[plugged]]
        departed = self._s_status == _DEPARTED
        step_s, start = self.timeline.step_s, self.timeline.start
        df = pd.DataFrame(
            {
                "charger": self._s_charger,
                "arrival": start + pd.to_timedelta(self._s_arrival * step_s, unit="s"),
                "departure": start + pd.to_timedelta(self._s_departure * step_s, unit="s"),
                "requested_kwh": self._s_requested,
                "delivered_kwh": delivered,
                "unserved_kwh": np.where(
                    departed, np.maximum(self._s_requested - delivered, 0.0), np.nan
                ),
                "departed": departed,
                "carried_in": self._s_arrival < 0,
            }
        )
        return {"ev_sessions": df}
