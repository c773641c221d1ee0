"""Exogenous data from user CSV files: weather, tariff, carbon intensity.

File format
-----------
* UTF-8 text, comma-separated, one header row.  Lines starting with ``#``
  and blank lines are ignored anywhere (use them for provenance notes).
  Columns other than the ones below are ignored.
* ``timestamp``: ISO 8601, e.g. ``2024-07-01 00:15`` or
  ``2024-07-01T00:15:00+08:00``.  Either every timestamp carries a UTC offset
  (``+08:00``, ``Z``) or none does; naive times are wall-clock times in the
  scenario's time zone.  Times must increase strictly.
* A row's values are the **mean over the interval that starts at its
  timestamp** and lasts until the next row (the last row lasts the median
  row spacing) -- the simulator's own convention.
* The rows must cover the whole padded timeline: the simulated period plus
  one dispatch horizon.  A gap longer than twice the median spacing is an
  error (a missing stretch of data, not a coarser resolution).

Columns per file (units in the names):

* weather: ``ghi_w_m2``, ``temp_air_c``, ``wind_speed_<regime>_m_s`` for every
  regime in ``weather.wind_regimes`` (at that regime's ``ref_height_m``);
  optional ``dni_w_m2`` and ``dhi_w_m2`` (both or neither; derived from GHI
  with Erbs et al. 1982 when absent) and ``pressure_pa`` (else the
  standard-atmosphere pressure at the site's altitude).
* tariff: ``price_import_cny_per_kwh``; optional ``price_export_cny_per_kwh``
  (else ``tariff.export_price_cny_per_kwh``).
* carbon: ``co2_kg_per_kwh``.

Alignment to the simulation steps
---------------------------------
* Rows as fine as the step or finer: each step gets the exact **interval
  mean** of the rows (a row straddling a step boundary counts by overlap).
* Rows coarser than the step: prices are **held** (each step gets the mean of
  the price intervals it overlaps, so an hourly price applies to each of its
  quarter hours -- interpolating would invent prices); weather and carbon
  are **interpolated linearly in time** between row midpoints, evaluated at
  step midpoints (edge values held), which smooths the series but does not
  preserve each row's energy exactly.  Interpolated GHI (and DNI, DHI) is set
  to zero when the sun is below the horizon at the step's midpoint.

Errors
------
Every problem raises one :class:`~vpp.errors.ScenarioError` naming the CSV
file, the column (and ``row N``, the line number in the file as an editor or
spreadsheet shows it) and the reason.
A value outside its plausible range is an error that names the unit the file
was probably written in: irradiance 0..1,500 W/m2, air temperature -90..60 degC,
wind speed 0..75 m/s, pressure 30,000..110,000 Pa, prices 0..20 CNY/kWh ("looks
like CNY/MWh?"), carbon intensity 0..2 kg/kWh ("looks like g/kWh?").
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vpp.errors import ScenarioError
from vpp.exogenous.config import (
    CO2_MAX_KG_PER_KWH,
    GHI_MAX_W_M2,
    PRICE_MAX_CNY_PER_KWH,
    TEMP_AIR_RANGE_C,
    WIND_MAX_M_S,
    TariffConfig,
    WeatherConfig,
)
from vpp.exogenous.weather import SolarGeometry, Weather, split_ghi

__all__ = [
    "read_rows",
    "read_weather_csv",
    "weather_from_table",
    "read_tariff_csv",
    "read_carbon_csv",
    "CsvTable",
    "read_csv_table",
    "align",
]

_OFFSET = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_NAN_WORDS = {"nan", "na", "n/a", "null", "none"}
# Plausibility ranges (vpp.exogenous.config): outside them a column is almost surely
# in another unit, which the message suggests.
_IRRADIANCE = {"between": (0.0, GHI_MAX_W_M2), "hint": " W/m2 (is it in kJ/m2 or Wh/m2 per interval?)"}
_TEMPERATURE = {"between": TEMP_AIR_RANGE_C, "hint": " degC (is it in kelvin or fahrenheit?)"}
_WIND = {"between": (0.0, WIND_MAX_M_S), "hint": " m/s (is it in km/h or knots?)"}
_PRICE = {"between": (0.0, PRICE_MAX_CNY_PER_KWH), "hint": " CNY/kWh (looks like CNY/MWh?)"}
_CO2 = {"between": (0.0, CO2_MAX_KG_PER_KWH), "hint": " kg/kWh (looks like g/kWh?)"}


@dataclass(frozen=True, eq=False)
class CsvTable:
    """A parsed CSV: times, raw cells by column, and file line numbers.

    Attributes
    ----------
    path : str
        The file, as named in error messages.
    t_s : ndarray
        Row start times in seconds after ``origin``. [s]
    origin : Timestamp
        Reference time of ``t_s`` (tz-aware).
    spacing_s : float
        Median row spacing; the last row's interval length. [s]
    cells : dict of str to list of str
        Raw cells per column.
    lines : ndarray of int
        File line number of each row.
    """

    path: str
    t_s: np.ndarray
    origin: pd.Timestamp
    spacing_s: float
    cells: dict[str, list[str]]
    lines: np.ndarray

    def error(self, field: str, reason: str, row: int | None = None) -> ScenarioError:
        """A :class:`ScenarioError` about *field* (at data row *row*, 0-based)."""
        where = field if row is None else f"{field} row {int(self.lines[row])}"
        return ScenarioError(self.path, where, reason)

    def numbers(
        self,
        column: str,
        *,
        minimum: float | None = None,
        what: str = "value",
        between: tuple[float, float] | None = None,
        hint: str = "",
    ) -> np.ndarray:
        """Column *column* as floats, every cell checked. [unit of the column]

        *minimum* rejects values below it as "negative *what*"; *between*
        ``(low, high)`` rejects values outside the plausible range, adding
        *hint* (the unit, and the unit the file was probably written in)."""
        if column not in self.cells:
            raise self.error(column, f"missing column (the file has: {', '.join(self.cells)})")
        raw = pd.Series(self.cells[column], dtype=object).str.strip()
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            cell = raw.iloc[i]
            if cell == "":
                reason = "empty cell"
            elif cell.lower() in _NAN_WORDS:
                reason = f"missing value ({cell!r})"
            elif np.isnan(values[i]):
                reason = f"cannot read {cell!r} as a number"
            else:
                reason = f"{cell!r} is not a finite number"
            raise self.error(column, reason, i)
        if minimum is not None and (values < minimum).any():
            i = int(np.argmax(values < minimum))
            raise self.error(column, f"negative {what} {values[i]:g} (must be >= {minimum:g})", i)
        if between is not None:
            lo, hi = between
            out = (values < lo) | (values > hi)
            if out.any():
                i = int(np.argmax(out))
                raise self.error(column, f"{values[i]:g} is outside {lo:g}..{hi:g}{hint}", i)
        return values


def read_rows(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows and their file line numbers of a CSV; ``#`` and blank lines skipped;
    one :class:`ScenarioError` for an unreadable file, a bad header or a ragged row."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header, rows, lines = None, [], []
            for cells in reader:
                if (
                    not cells
                    or all(not c.strip() for c in cells)
                    or cells[0].lstrip().startswith("#")
                ):
                    continue
                if header is None:
                    header = [c.strip() for c in cells]
                    header_line = reader.line_num
                    continue
                rows.append(cells)
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise ScenarioError(path, "(file)", "no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError, csv.Error) as e:
        raise ScenarioError(path, "(file)", f"cannot read: {e.__class__.__name__}: {e}") from None
    if header is None:
        raise ScenarioError(path, "(file)", "empty file (no header row)")
    seen = set()
    for name in header:
        if name in seen or not name:
            what = "duplicate column" if name else "empty column name"
            raise ScenarioError(path, f"(header) row {header_line}", f"{what} {name!r}".strip())
        seen.add(name)
    if not rows:
        raise ScenarioError(path, "(file)", "no data rows below the header")
    for cells, line in zip(rows, lines, strict=True):
        if len(cells) != len(header):
            raise ScenarioError(
                path, f"row {line}", f"has {len(cells)} fields, the header has {len(header)}"
            )
    return header, rows, lines


def read_csv_table(path: str | Path, tz) -> CsvTable:
    """Read a CSV with a ``timestamp`` column; naive times are in *tz*.

    Raises
    ------
    ScenarioError
        On any problem with the file, the header, a row or a timestamp.
    """
    path = Path(path)
    header, rows, lines = read_rows(path)
    cells = {name: [r[j] for r in rows] for j, name in enumerate(header)}
    table = CsvTable(
        str(path), np.zeros(0), pd.Timestamp(0, tz="UTC"), 0.0, cells, np.asarray(lines)
    )
    if "timestamp" not in cells:
        raise table.error("timestamp", f"missing column (the file has: {', '.join(header)})")
    raw = pd.Series(cells["timestamp"], dtype=object).str.strip()
    aware = raw.str.slice(10).str.contains(_OFFSET, regex=True).to_numpy(bool)
    if aware.any() and not aware.all():
        i = int(np.argmax(aware != aware[0]))
        raise table.error(
            "timestamp", "mixes times with and without a UTC offset; give all or none", i
        )
    times = pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=bool(aware[0]))
    bad = times.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise table.error("timestamp", f"cannot read {raw.iloc[i]!r} as an ISO 8601 time", i)
    if not aware[0]:
        times = times.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        bad = times.isna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise table.error(
                "timestamp",
                f"{raw.iloc[i]!r} does not exist or is ambiguous in time zone {tz} "
                "(give a UTC offset)",
                i,
            )
    origin = times.iloc[0]
    t_s = (times - origin).dt.total_seconds().to_numpy(float)
    d = np.diff(t_s)
    if (d <= 0).any():
        i = int(np.argmax(d <= 0)) + 1
        raise table.error(
            "timestamp", f"{raw.iloc[i]!r} is not after the previous row (times must increase)", i
        )
    spacing = float(np.median(d)) if len(d) else math.nan
    if len(d) and (d > 2 * spacing).any():
        i = int(np.argmax(d > 2 * spacing)) + 1
        raise table.error(
            "timestamp",
            f"gap of {_duration(d[i - 1])} before this row "
            f"(more than twice the median spacing, {_duration(spacing)})",
            i,
        )
    return CsvTable(str(path), t_s, origin, spacing, cells, np.asarray(lines))


def _check_coverage(
    table: CsvTable, index: pd.DatetimeIndex, step_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Row boundaries and step boundaries in seconds after ``index[0]``."""
    tz = index.tz
    if len(table.t_s) < 2:
        raise table.error(
            "timestamp", "needs at least two rows (the spacing sets the last row's interval)"
        )
    shift = (table.origin - index[0]).total_seconds()
    starts = table.t_s + shift
    bounds = np.append(starts, starts[-1] + table.spacing_s)
    edges = np.arange(len(index) + 1) * float(step_s)
    if bounds[0] > edges[0] or bounds[-1] < edges[-1]:
        have = f"{_fmt(index[0], bounds[0], tz)} to {_fmt(index[0], bounds[-1], tz)}"
        need = f"{_fmt(index[0], edges[0], tz)} to {_fmt(index[0], edges[-1], tz)}"
        raise table.error(
            "timestamp",
            f"the data cover {have} but the simulation needs {need} "
            "(the simulated period plus one dispatch horizon)",
        )
    return bounds, edges


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _fmt(t0: pd.Timestamp, s: float, tz) -> str:
    return (t0 + pd.Timedelta(seconds=float(s))).tz_convert(tz).isoformat()


def align(
    table: CsvTable, values: np.ndarray, index: pd.DatetimeIndex, step_s: float, *, hold: bool
) -> np.ndarray:
    """Values of a CSV column on the simulation steps (see the module notes).

    Parameters
    ----------
    table : CsvTable
    values : ndarray
        One value per row, the mean over the row's interval.
    index : DatetimeIndex
        Simulation steps (interval starts).
    step_s : float
        Step length. [s]
    hold : bool
        True for piecewise-constant quantities (prices): interval means at
        any resolution.  False: interval means when the rows are at least as
        fine as the step, linear interpolation between row midpoints otherwise.

    Returns
    -------
    ndarray
        One value per step.
    """
    bounds, edges = _check_coverage(table, index, step_s)
    if hold or table.spacing_s <= step_s:
        integral = np.concatenate([[0.0], np.cumsum(values * np.diff(bounds))])
        at_edges = np.interp(edges, bounds, integral)
        return np.diff(at_edges) / float(step_s)
    row_mid = 0.5 * (bounds[:-1] + bounds[1:])
    return np.interp(edges[:-1] + 0.5 * step_s, row_mid, values)


def read_weather_csv(
    path: str | Path,
    index: pd.DatetimeIndex,
    step_s: float,
    config: WeatherConfig,
    solar: SolarGeometry,
) -> Weather:
    """Weather from a CSV on the simulation steps.

    Parameters
    ----------
    path : str or Path
        The CSV (see the module notes for its columns).
    index : DatetimeIndex
        Simulation steps (interval starts), tz-aware; naive CSV times are in its zone.
    step_s : float
        Step length. [s]
    config : WeatherConfig
        Names the wind regimes whose columns are required.
    solar : SolarGeometry
        Solar position and clear sky on *index*.

    Returns
    -------
    Weather
        Irradiance [W/m2], temperature [degC], pressure [Pa], wind speed
        per regime [m/s].

    Raises
    ------
    ScenarioError
        One line naming the file, the column and row, and the reason.
    """
    return weather_from_table(read_csv_table(path, index.tz), index, step_s, config, solar)


def weather_from_table(table: CsvTable, index: pd.DatetimeIndex, step_s: float, config: WeatherConfig,
                       solar: SolarGeometry) -> Weather:
    """Weather on the simulation steps from a table with the weather CSV's columns
    (a CSV, or an EPW or TMY3 file's rows: :mod:`vpp.exogenous.weatherfiles`); every
    value checked, the rows aligned as :func:`align` says."""
    cols = table.cells
    if ("dni_w_m2" in cols) != ("dhi_w_m2" in cols):
        missing = "dhi_w_m2" if "dni_w_m2" in cols else "dni_w_m2"
        raise table.error(
            missing,
            "missing column: give both dni_w_m2 and dhi_w_m2, or neither "
            "(they are then derived from ghi_w_m2)",
        )
    night = solar.apparent_zenith_deg >= 90.0
    interpolated = table.spacing_s > step_s

    def irradiance(column: str) -> np.ndarray:
        v = np.maximum(
            align(
                table,
                table.numbers(column, minimum=0.0, what="irradiance", **_IRRADIANCE),
                index,
                step_s,
                hold=False,
            ),
            0.0,
        )
        return np.where(night, 0.0, v) if interpolated else v

    ghi = irradiance("ghi_w_m2")
    temp = align(
        table,
        table.numbers("temp_air_c", **_TEMPERATURE),
        index,
        step_s,
        hold=False,
    )
    wind = {}
    for name in config.wind_regimes:
        column = f"wind_speed_{name}_m_s"
        if column not in cols:
            raise table.error(
                column,
                f"missing column for wind regime {name!r} "
                f"(regimes in the scenario: {', '.join(config.wind_regimes)})",
            )
        speed = table.numbers(column, minimum=0.0, what="wind speed", **_WIND)
        wind[name] = np.maximum(align(table, speed, index, step_s, hold=False), 0.0)
    if "dni_w_m2" in cols:
        dni, dhi = irradiance("dni_w_m2"), irradiance("dhi_w_m2")
    else:
        dni, dhi = split_ghi(ghi, solar.apparent_zenith_deg, index, step_s)
    if "pressure_pa" in cols:
        pressure = align(
            table,
            table.numbers("pressure_pa", between=(30_000.0, 110_000.0), hint=" Pa (is it in hPa or kPa?)"),
            index,
            step_s,
            hold=False,
        )
    else:
        pressure = np.full(len(index), solar.pressure_pa)
    return Weather(
        solar=solar,
        ghi_w_m2=ghi,
        dni_w_m2=dni,
        dhi_w_m2=dhi,
        temp_air_c=temp,
        pressure_pa=pressure,
        wind_speed_m_s=wind,
    )


def read_tariff_csv(
    path: str | Path, index: pd.DatetimeIndex, step_s: float, config: TariffConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Import and export prices from a CSV, held per row interval. [CNY/kWh]

    Columns ``price_import_cny_per_kwh`` and, optionally,
    ``price_export_cny_per_kwh`` (else ``config.export_price_cny_per_kwh``).

    Raises
    ------
    ScenarioError
        One line naming the file, the column and row, and the reason.
    """
    table = read_csv_table(path, index.tz)
    price_import = align(
        table,
        table.numbers("price_import_cny_per_kwh", minimum=0.0, what="price", **_PRICE),
        index,
        step_s,
        hold=True,
    )
    if "price_export_cny_per_kwh" in table.cells:
        price_export = align(
            table,
            table.numbers("price_export_cny_per_kwh", minimum=0.0, what="price", **_PRICE),
            index,
            step_s,
            hold=True,
        )
    else:
        price_export = np.full(len(index), config.export_price_cny_per_kwh)
    return np.maximum(price_import, 0.0), np.maximum(price_export, 0.0)


def read_carbon_csv(path: str | Path, index: pd.DatetimeIndex, step_s: float) -> np.ndarray:
    """Carbon intensity from a CSV column ``co2_kg_per_kwh``. [kg/kWh]

    Raises
    ------
    ScenarioError
        One line naming the file, the column and row, and the reason.
    """
    table = read_csv_table(path, index.tz)
    co2 = table.numbers("co2_kg_per_kwh", minimum=0.0, what="carbon intensity", **_CO2)
    return np.maximum(align(table, co2, index, step_s, hold=False), 0.0)


def read_market_csv(path: str | Path, index: pd.DatetimeIndex, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Day-ahead and real-time prices from a CSV, held per row interval: columns
    ``da_cny_per_kwh`` and, optionally, ``rt_cny_per_kwh`` (else the day-ahead
    price).  Market prices may be negative. [CNY/kWh]

    Raises
    ------
    ScenarioError
        One line naming the file, the column and row, and the reason.
    """
    table = read_csv_table(path, index.tz)
    span = {"between": (-PRICE_MAX_CNY_PER_KWH, PRICE_MAX_CNY_PER_KWH), "hint": _PRICE["hint"]}
    da = align(table, table.numbers("da_cny_per_kwh", what="price", **span), index, step_s, hold=True)
    if "rt_cny_per_kwh" not in table.cells:
        return da, da.copy()
    return da, align(table, table.numbers("rt_cny_per_kwh", what="price", **span), index, step_s, hold=True)
