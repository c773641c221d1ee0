"""EV charging sessions: drawn from the fleet's distributions, or replayed from a CSV file.

Used by :class:`vpp.assets.ev.EVFleet` (the model as a whole is described in
:mod:`vpp.assets.ev`).

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
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vpp.errors import ScenarioError
from vpp.exogenous.csvsource import CsvTable, read_rows
from vpp.params import sample
from vpp.timeline import Timeline

if TYPE_CHECKING:
    from vpp.assets.ev import ArrivalComponent, EVParams

__all__ = ["Sessions", "SessionFile", "NEVER_STEP", "draw_sessions", "read_sessions_csv", "read_sessions_file",
           "read_sessions_acn_json", "replay_sessions",
           "queue_before_start"]

NEVER_STEP = np.iinfo(np.int64).min  # "no such step"


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


def read_sessions_file(path: str | Path, tz) -> SessionFile:
    """Sessions from our CSV (:func:`read_sessions_csv`) or, for a ``.json`` file,
    ACN-Data's JSON (:func:`read_sessions_acn_json`)."""
    if Path(path).suffix.lower() == ".json":
        return read_sessions_acn_json(path)
    return read_sessions_csv(path, tz)


def read_sessions_acn_json(path: str | Path) -> SessionFile:
    """Sessions in the JSON of ACN-Data (Lee, Li & Low 2019, *ACN-Data: Analysis and
    Applications of an Open EV Charging Dataset*, e-Energy '19, doi:10.1145/3307772.3328313),
    as its API returns them: ``{"_items": [{...}, ...]}`` (or the list itself).

    * arrival, departure: ``connectionTime``, ``disconnectTime`` (RFC 1123, GMT:
      kept in UTC);
    * energy_kwh: ``kWhDelivered``, what the car took when it was charged (a
      user's ``kWhRequested`` is often more than it could take);
    * max_power_kw: none in the data, so no limit of the car's own (``inf``); the
      charger's rating and the station limit apply;
    * station: ``stationID``.

    Raises
    ------
    ScenarioError
        ``<file>: _items[i].<field>: <reason>``, one line.
    """
    import json

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ScenarioError(str(path), "file", f"not readable as JSON ({' '.join(str(e).split())[:160]})") from None
    items = data.get("_items") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ScenarioError(str(path), "_items", "no sessions (expected ACN-Data's {\"_items\": [...]})")
    arrival, departure, energy, station = [], [], [], []
    for i, item in enumerate(items):
        where = f"_items[{i}]"
        if not isinstance(item, dict):
            raise ScenarioError(str(path), where, "not an object")
        for key in ("connectionTime", "disconnectTime", "kWhDelivered", "stationID"):
            if item.get(key) in (None, ""):
                raise ScenarioError(str(path), f"{where}.{key}", "missing")
        try:
            t0, t1 = (pd.Timestamp(pd.to_datetime(item[k], utc=True)) for k in ("connectionTime", "disconnectTime"))
        except (ValueError, TypeError):
            raise ScenarioError(str(path), f"{where}.connectionTime", "cannot read the times (RFC 1123, "
                                "e.g. 'Wed, 25 Apr 2018 11:08:04 GMT')") from None
        if t1 <= t0:
            raise ScenarioError(str(path), f"{where}.disconnectTime", "is not after the connection time")
        kwh = item["kWhDelivered"]
        if not isinstance(kwh, int | float) or isinstance(kwh, bool) or not np.isfinite(kwh) or kwh < 0:
            raise ScenarioError(str(path), f"{where}.kWhDelivered", f"{kwh!r} is not a finite energy >= 0")
        arrival.append(t0)
        departure.append(t1)
        energy.append(float(kwh))
        station.append(str(item["stationID"]))
    n = len(items)
    return SessionFile(str(path), pd.DatetimeIndex(arrival), pd.DatetimeIndex(departure), np.asarray(energy),
                       np.full(n, np.inf), np.asarray(station, dtype=object), None, None, np.arange(n))


def read_sessions_csv(path: str | Path, tz) -> SessionFile:
    """Read charging sessions from a CSV file, every cell checked.

    Format: UTF-8, comma-separated, one header row; lines starting with ``#``
    and blank lines are ignored (use them for provenance).  One row per
    session; other columns are ignored:

    * ``arrival``: plug-in time, ISO 8601 (all with a UTC offset or none; naive
      times are wall-clock times in the scenario's zone);
    * ``departure``: leaving time, after ``arrival`` (same rule);
    * ``energy_kwh``: energy requested (>= 0) [kWh];
    * ``max_power_kw``: the session's grid-side power limit (> 0) [kW];
    * ``station``: station label (non-empty);
    * ``battery_kwh``: optional, usable capacity (> 0, >= energy) [kWh];
    * ``arrival_soc_frac``: optional, state of charge at arrival, in [0, 1], with
      ``energy <= (1 - soc) battery`` when both are given [-].

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




def queue_before_start(s: Sessions, chargers_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First come, first served with patience, for the cars that arrive before step 0.

    Returns each car's plug step if it plugs before step 0 (else ``NEVER_STEP``)
    and whether it is still waiting at step 0.  The engine's rule: a car
    plugs at ``max(a, f)``, ``f`` the time the first charger of its station is
    free, if ``f <= a + patience``, else leaves at ``a + patience``.
    """
    plug = np.full(len(s), NEVER_STEP, dtype=np.int64)
    waiting = np.zeros(len(s), dtype=bool)
    free = {st: [NEVER_STEP] * int(m) for st, m in enumerate(chargers_at)}
    for i in np.flatnonzero(s.arrival_step < 0):
        a, w, st = int(s.arrival_step[i]), int(s.patience_steps[i]), int(s.station[i])
        start = max(a, free[st][0])
        if start > a + w or start >= 0:  # leaves unserved, or plugs at or after step 0
            waiting[i] = a + w >= 0
            continue
        plug[i] = start
        heapq.heapreplace(free[st], start + int(s.dwell_steps[i]))
    return plug, waiting
