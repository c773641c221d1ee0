"""Weather from the files researchers already have: EPW, TMY3, PVGIS typical years and
NSRDB (PSM v4) series, read by ``pvlib.iotools`` and laid on the project's
interval-start steps.

* EPW (``pvlib.iotools.read_epw``): the file's hour ``h`` covers ``(h-1, h]``
  (EnergyPlus *Auxiliary Programs*, "Weather Converter Program"); pvlib labels
  the row ``h-1``, its start: kept.
* TMY3 (``pvlib.iotools.read_tmy3``): ``HH:MM`` ends the hour it sums (Wilcox &
  Marion 2008, *Users Manual for TMY3 Data Sets*, NREL/TP-581-43156); pvlib
  labels the row ``HH:MM``, its end: moved back one hour to the interval's start.
* PVGIS TMY (``pvlib.iotools.read_pvgis_tmy``): ``YYYYMMDD:HH00`` in UTC; the row
  is taken as the hour from its stamp, as pvlib labels it; the solar-noon check
  below confirms it on the file's own data.
* NSRDB (``pvlib.iotools.read_nsrdb_psm4``): local standard time (the header's
  ``Time Zone``); the values are the satellite's estimate at the stamp and stand
  for the interval centred on it: hourly rows stamped ``HH:30`` cover
  ``HH:00-HH+1:00`` (NREL moved hourly stamps from the hour's start to its middle
  in May 2019: pvlib issue 733); hourly rows stamped ``HH:00`` (older files)
  cover the hour from the stamp; finer rows are centred on it.

Read naively, a TMY3 file is an hour late: its noon row (11:00-12:00) lands on
12:00-13:00, and a PV array facing south-east or south-west sees the sun an hour
off (``tests/test_weather_files.py`` checks the alignment against the file's raw rows).

**The solar-noon check.**  Over a year the sunlight of interval means labelled
right is centred on solar noon: pvlib's two TMY3 files (Greensboro, NC and Sand
Point, AK) come out within 3 minutes of it, each month within 8, and 60
minutes late when read naively.  Every file is checked at the scenario's site:
the irradiance-weighted mean of the rows' midpoints, in apparent solar time
(longitude and Spencer's equation of time), must lie within
:data:`SOLAR_NOON_TOLERANCE_MIN` of noon.  A file more than that off has time
stamps that do not mean what its format says, or comes from another place than
the site (its stamps are then the wrong clock for the site's sun): either would
put every PV output at the wrong hour, so it is refused with the offset measured.

Irradiance is the energy of the interval [Wh/m2], i.e. its mean power [W/m2];
temperature, pressure and wind are taken as the interval's values.  From there
the rows go through the same checks and the same alignment to the simulation
steps as a weather CSV (:func:`vpp.exogenous.csvsource.weather_from_table`):
interval means at steps at least as long as the rows, interpolation between the
rows' midpoints at shorter steps, irradiance zero at night.

Typical years mix calendar years, so the file's months are laid on each
simulated year (pvlib's ``coerce_year``); in a leap year 29 February repeats
28 February (the files have 365 days), and a run across New Year continues
with the file's January.  A file of one calendar year is laid the same way.
The files' wind speed is measured (or modelled) at 10 m
(:data:`FILE_WIND_HEIGHT_M`; NSRDB's is at 2 m, see :data:`WIND_HEIGHT_M`); every
wind regime of the scenario gets it at that reference height, and each regime's
shear law takes it to hub height.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vpp.errors import ScenarioError

__all__ = ["FILE_WIND_HEIGHT_M", "SOLAR_NOON_TOLERANCE_MIN", "WEATHER_FILE_KINDS", "WIND_HEIGHT_M",
           "read_weather_file_table", "solar_noon_offset_min"]

FILE_WIND_HEIGHT_M = 10.0          # EPW, TMY3, PVGIS: WMO standard 10 m anemometer height
#: Wind measurement height of each format [m]: NSRDB's wind speed is at 2 m since PSM v3
#: (NSRDB webinar Q&A, October 2020, quoted in pvlib issue 1814); the others at 10 m.
WIND_HEIGHT_M = {"epw": 10.0, "tmy3": 10.0, "pvgis_tmy": 10.0, "nsrdb": 2.0}
WEATHER_FILE_KINDS = ("epw", "tmy3", "pvgis_tmy", "nsrdb")
SOLAR_NOON_TOLERANCE_MIN = 20.0    # correct files: within 3 min a year; a 30-min convention error: 30

# our column: (the reader's column, factor to SI) per format (pvlib's mapped names)
_COLUMNS = {
    "epw": {"pressure_pa": ("atmospheric_pressure", 1.0)},          # Pa
    "tmy3": {"pressure_pa": ("pressure", 100.0)},                   # mbar
    "pvgis_tmy": {"pressure_pa": ("pressure", 1.0)},                # SP [Pa]
    "nsrdb": {"pressure_pa": ("pressure", 100.0)},                  # mbar
}
_COMMON = {"ghi_w_m2": "ghi", "dni_w_m2": "dni", "dhi_w_m2": "dhi", "temp_air_c": "temp_air",
           "wind_speed_m_s": "wind_speed"}


@dataclass(frozen=True)
class _Rows:
    data: pd.DataFrame         # indexed by each row's interval start (tz-aware)
    spacing_s: float           # the rows' interval [s]
    longitude_deg: float | None    # where the file says it is from
    first_line: int            # file line of the first data row (0: not a line-based file)


def _spacing_s(index: pd.DatetimeIndex) -> float:
    if len(index) < 2:
        return 3600.0
    return float(np.median((index[1:] - index[:-1]) / pd.Timedelta(seconds=1)))


def _read_epw(path: Path) -> _Rows:
    import pvlib.iotools

    data, meta = pvlib.iotools.read_epw(str(path))
    return _Rows(data, 3600.0, float(meta["longitude"]), 9)                # 8 header lines


def _read_tmy3(path: Path) -> _Rows:
    import pvlib.iotools

    data, meta = pvlib.iotools.read_tmy3(str(path), map_variables=True)
    data.index = data.index - pd.Timedelta(hours=1)                       # HH:MM ends the hour: its start
    return _Rows(data, 3600.0, float(meta["longitude"]), 3)                # 2 header lines


def _read_pvgis_tmy(path: Path) -> _Rows:
    import pvlib.iotools

    data, meta = pvlib.iotools.read_pvgis_tmy(str(path), map_variables=True)
    inputs = meta.get("inputs", {}) if isinstance(meta, dict) else {}
    longitude = inputs.get("longitude", inputs.get("location", {}).get("longitude"))
    header = 17 + ("irradiance time offset" in inputs)                   # location, months table, columns
    return _Rows(data, 3600.0, None if longitude is None else float(longitude),
                 header + 1 if path.suffix.lower() == ".csv" else 0)


def _read_nsrdb(path: Path) -> _Rows:
    import pvlib.iotools

    data, meta = pvlib.iotools.read_nsrdb_psm4(str(path), map_variables=True)
    spacing_s = _spacing_s(data.index)
    if spacing_s >= 3600.0 and (data.index.minute == 0).all():
        shift_s = 0.0                                                     # older hourly files: the hour's start
    else:
        shift_s = spacing_s / 2                                           # centred on the stamp
    data.index = data.index - pd.Timedelta(seconds=shift_s)
    return _Rows(data, spacing_s, float(meta.get("longitude", meta.get("Longitude"))), 4)   # 3 header lines


_READERS = {"epw": _read_epw, "tmy3": _read_tmy3, "pvgis_tmy": _read_pvgis_tmy, "nsrdb": _read_nsrdb}
_NAMES = {"epw": "EPW", "tmy3": "TMY3", "pvgis_tmy": "PVGIS TMY", "nsrdb": "NSRDB PSM4"}


def _read(kind: str, path: Path) -> _Rows:
    """The file's rows, indexed by each interval's start (tz-aware)."""
    try:
        rows = _READERS[kind](path)
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError,
            pd.errors.ParserError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ScenarioError(str(path), "weather.path", f"not a readable {_NAMES[kind]} file ({reason[:200]})") from None
    if rows.data.index.tz is None or len(rows.data) < 24:
        raise ScenarioError(str(path), "weather.path", f"not a readable {_NAMES[kind]} file (fewer than 24 rows)")
    rows.data["_line"] = np.arange(len(rows.data)) + (rows.first_line or 1)      # 1: the row's number
    return rows


def solar_noon_offset_min(ghi_w_m2, starts: pd.DatetimeIndex, spacing_s: float, longitude_deg: float) -> float:
    """Minutes by which the rows' sunlight is centred after solar noon at *longitude_deg*.

    The GHI-weighted mean of the rows' midpoints in apparent solar time (clock
    time in UTC + longitude / 15 h + the equation of time, Spencer 1971), minus
    12 h.  Interval means labelled by their start give about 0 over a year.

    Parameters
    ----------
    ghi_w_m2 : array_like
        Each row's mean global horizontal irradiance. [W/m2]
    starts : DatetimeIndex
        Each row's interval start, tz-aware.
    spacing_s : float
        The rows' interval. [s]
    longitude_deg : float
        East positive. [deg]
    """
    import pvlib.solarposition

    mid = starts.tz_convert("UTC") + pd.Timedelta(seconds=spacing_s / 2)
    eot_min = np.asarray(pvlib.solarposition.equation_of_time_spencer71(mid.day_of_year), dtype=float)
    clock_h = mid.hour + mid.minute / 60 + mid.second / 3600
    solar_h = np.mod(np.asarray(clock_h, dtype=float) + longitude_deg / 15 + eot_min / 60, 24.0)
    w = np.clip(np.nan_to_num(np.asarray(ghi_w_m2, dtype=float)), 0.0, None)
    if not w.sum() > 0:
        return 0.0
    return float(np.sum(w * (solar_h - 12.0)) / w.sum() * 60.0)


def _check_solar_noon(kind: str, path: Path, rows: _Rows, site_longitude_deg: float) -> None:
    offset = solar_noon_offset_min(rows.data["ghi"], rows.data.index, rows.spacing_s, site_longitude_deg)
    if abs(offset) <= SOLAR_NOON_TOLERANCE_MIN:
        return
    where = ""
    if rows.longitude_deg is not None:
        where = f"; the file says it is from longitude {rows.longitude_deg:.2f}"
    raise ScenarioError(
        str(path), "weather.path",
        f"the file's sunlight is centred {offset:+.0f} min from solar noon at the site (longitude "
        f"{site_longitude_deg:.2f}{where}): its time stamps do not mean what the {_NAMES[kind]} format says, "
        f"or it is from another place (allowed: {SOLAR_NOON_TOLERANCE_MIN:.0f} min)")


def _on_years(data: pd.DataFrame, years) -> pd.DataFrame:
    """The file's typical year repeated on each of *years*, 29 February from 28 February."""
    tz = data.index.tz
    local = data.index.tz_localize(None)
    frames = []
    for year in years:
        day = pd.to_datetime({"year": year, "month": local.month, "day": local.day}, errors="coerce")
        stamps = day + pd.to_timedelta(local.hour, unit="h") + pd.to_timedelta(local.minute, unit="min")
        frame = data.set_axis(pd.DatetimeIndex(stamps)).loc[lambda f: f.index.notna()]
        has_leap_day = ((local.month == 2) & (local.day == 29)).any()
        if pd.Timestamp(year=year, month=12, day=31).is_leap_year and not has_leap_day:
            feb28 = frame[(frame.index.month == 2) & (frame.index.day == 28)]
            frame = pd.concat([frame, feb28.set_axis(feb28.index + pd.Timedelta(days=1))])
        frames.append(frame)
    out = pd.concat(frames).sort_index()
    out = out[~out.index.duplicated()]
    out.index = out.index.tz_localize(tz)
    return out


def read_weather_file_table(kind: str, path: str | Path, index: pd.DatetimeIndex, regimes,
                            site_longitude_deg: float) -> tuple:
    """The rows of a weather file as a weather table on the simulated years.

    Parameters
    ----------
    kind : {"epw", "tmy3", "pvgis_tmy", "nsrdb"}
    path : str or Path
    index : DatetimeIndex
        Simulation steps (the padded timeline), tz-aware.
    regimes : iterable of str
        The scenario's wind regimes: each gets the file's wind speed.
    site_longitude_deg : float
        The scenario's site, for the solar-noon check. [deg]

    Returns
    -------
    (CsvTable, dict)
        The rows with the weather CSV's columns (``ghi_w_m2``, ``dni_w_m2``,
        ``dhi_w_m2``, ``temp_air_c``, ``pressure_pa`` and
        ``wind_speed_<regime>_m_s``), and the wind reference height of each
        regime [m].

    Raises
    ------
    ScenarioError
        Unreadable file, a column missing, or sunlight off solar noon at the site.
    """
    from vpp.exogenous.csvsource import CsvTable

    path = Path(path)
    rows = _read(kind, path)
    columns = {ours: (theirs, 1.0) for ours, theirs in _COMMON.items()} | _COLUMNS[kind]
    missing = [theirs for theirs, _ in columns.values() if theirs not in rows.data.columns]
    if missing:
        raise ScenarioError(str(path), "weather.path", f"the {_NAMES[kind]} file lacks {', '.join(missing)}")
    _check_solar_noon(kind, path, rows, site_longitude_deg)
    data = rows.data
    first, last = index[0].tz_convert(data.index.tz), index[-1].tz_convert(data.index.tz)
    laid = _on_years(data, range(first.year - 1, last.year + 2))
    laid = laid[(laid.index >= first - pd.Timedelta(days=1)) & (laid.index <= last + pd.Timedelta(days=1))]
    cells = {ours: (laid[theirs].to_numpy(dtype=float) * factor).astype(str).tolist()
             for ours, (theirs, factor) in columns.items()}
    wind = cells.pop("wind_speed_m_s")
    heights = {}
    for name in regimes:
        cells[f"wind_speed_{name}_m_s"] = wind
        heights[name] = WIND_HEIGHT_M[kind]
    origin = laid.index[0]
    t_s = np.asarray((laid.index - origin) / pd.Timedelta(seconds=1), dtype=float)
    table = CsvTable(str(path), t_s, origin, rows.spacing_s, cells, laid["_line"].to_numpy(dtype=int))
    return table, heights
