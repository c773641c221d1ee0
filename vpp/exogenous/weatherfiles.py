"""Weather from the files researchers already have: EPW and TMY3, read by
``pvlib.iotools`` and laid on the project's interval-start steps.

========  ==========================  ====================================================
format    reader                      time stamps
========  ==========================  ====================================================
EPW       ``pvlib.iotools.read_epw``  the file's hour ``h`` covers ``(h-1, h]`` (EnergyPlus
                                      *Auxiliary Programs*, "Weather Converter Program");
                                      pvlib labels the row ``h-1``, its start: kept
TMY3      ``pvlib.iotools.read_tmy3``  ``HH:MM`` ends the hour it sums (Wilcox & Marion 2008,
                                      *Users Manual for TMY3 Data Sets*, NREL/TP-581-43156);
                                      pvlib labels the row ``HH:MM``, its end: moved back
                                      one hour to the interval's start
========  ==========================  ====================================================

Read naively, a TMY3 file is an hour late: its noon row (11:00-12:00) lands on
12:00-13:00, and a PV array facing south-east or south-west sees the sun an hour
off (``tests/test_weather_files.py`` checks the alignment against the file's raw rows).

Irradiance in both formats is the energy of the hour [Wh/m2], i.e. its mean power
[W/m2]; temperature, pressure and wind are taken as the hour's values.  From
there the rows go through the same checks and the same alignment to the
simulation steps as a weather CSV (:func:`vpp.exogenous.csvsource.weather_from_table`):
interval means at steps of an hour or longer, interpolation between the rows'
midpoints at shorter steps, irradiance zero at night.

Typical years mix calendar years, so the file's months are laid on each
simulated year (pvlib's ``coerce_year``); in a leap year 29 February repeats
28 February (the files have 365 days), and a run across New Year continues
with the file's January.  The files' wind speed is measured at 10 m
(:data:`FILE_WIND_HEIGHT_M`); every wind regime of the scenario gets it, at that
reference height, and each regime's shear law takes it to hub height.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vpp.errors import ScenarioError

__all__ = ["FILE_WIND_HEIGHT_M", "WEATHER_FILE_KINDS", "read_weather_file_table"]

FILE_WIND_HEIGHT_M = 10.0          # EPW and TMY3 wind speed: WMO standard 10 m anemometer height
WEATHER_FILE_KINDS = ("epw", "tmy3")

# our column: (EPW column, TMY3 column, factor to SI)
_COLUMNS = {
    "ghi_w_m2": ("ghi", "ghi", 1.0),
    "dni_w_m2": ("dni", "dni", 1.0),
    "dhi_w_m2": ("dhi", "dhi", 1.0),
    "temp_air_c": ("temp_air", "temp_air", 1.0),
    "pressure_pa": ("atmospheric_pressure", "pressure", None),   # EPW Pa; TMY3 mbar
    "wind_speed_m_s": ("wind_speed", "wind_speed", 1.0),
}


def _read(kind: str, path: Path) -> pd.DataFrame:
    """The file's rows, indexed by each hour's start (tz-aware, the file's standard time)."""
    import pvlib.iotools

    try:
        if kind == "epw":
            data, _ = pvlib.iotools.read_epw(str(path))
            data["_line"] = np.arange(len(data)) + 9               # 8 header lines
            return data
        data, _ = pvlib.iotools.read_tmy3(str(path), map_variables=True)
        data.index = data.index - pd.Timedelta(hours=1)          # HH:MM ends the hour: its start
        data["_line"] = np.arange(len(data)) + 3                   # 2 header lines
        return data
    except (OSError, ValueError, KeyError, IndexError, TypeError, pd.errors.ParserError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ScenarioError(str(path), "weather.path", f"not a readable {kind.upper()} file ({reason[:200]})") from None


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


def read_weather_file_table(kind: str, path: str | Path, index: pd.DatetimeIndex, regimes) -> tuple:
    """The rows of an EPW or TMY3 file as a weather table on the simulated years.

    Parameters
    ----------
    kind : {"epw", "tmy3"}
    path : str or Path
    index : DatetimeIndex
        Simulation steps (the padded timeline), tz-aware.
    regimes : iterable of str
        The scenario's wind regimes: each gets the file's wind speed.

    Returns
    -------
    (CsvTable, dict)
        The rows with the weather CSV's columns (``ghi_w_m2``, ``dni_w_m2``,
        ``dhi_w_m2``, ``temp_air_c``, ``pressure_pa`` and
        ``wind_speed_<regime>_m_s``), and the wind reference height of each
        regime [m].
    """
    from vpp.exogenous.csvsource import CsvTable

    path = Path(path)
    data = _read(kind, path)
    j = 0 if kind == "epw" else 1
    missing = [c[j] for c in _COLUMNS.values() if c[j] not in data.columns]
    if missing:
        raise ScenarioError(str(path), "weather.path", f"the {kind.upper()} file lacks {', '.join(missing)}")
    first, last = index[0].tz_convert(data.index.tz), index[-1].tz_convert(data.index.tz)
    rows = _on_years(data, range(first.year - 1, last.year + 2))
    rows = rows[(rows.index >= first - pd.Timedelta(days=1)) & (rows.index <= last + pd.Timedelta(days=1))]
    cells = {}
    for ours, (epw, tmy3, factor) in _COLUMNS.items():
        values = rows[epw if kind == "epw" else tmy3].to_numpy(dtype=float)
        if ours == "pressure_pa":
            factor = 1.0 if kind == "epw" else 100.0                  # TMY3 in mbar
        cells[ours] = (values * factor).astype(str).tolist()
    wind = cells.pop("wind_speed_m_s")
    heights = {}
    for name in regimes:
        cells[f"wind_speed_{name}_m_s"] = wind
        heights[name] = FILE_WIND_HEIGHT_M
    origin = rows.index[0]
    t_s = np.asarray((rows.index - origin) / pd.Timedelta(seconds=1), dtype=float)
    table = CsvTable(str(path), t_s, origin, 3600.0, cells, rows["_line"].to_numpy(dtype=int))
    return table, heights
