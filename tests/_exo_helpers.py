"""Test helpers: build :class:`Exogenous` and fleet contexts by hand.

No dependency on the weather generator: series are given directly, or taken
from the stored pvlib reference day (``tests/data/pv_modelchain_reference.csv``:
ModelChain's solar position and an Ineichen clear-sky July day in Shanghai).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vpp.assets import FleetContext
from vpp.exogenous.series import Exogenous
from vpp.timeline import Timeline

__all__ = [
    "DATA",
    "TZ",
    "make_exogenous",
    "make_context",
    "reference_day",
    "clear_sky_exogenous",
    "shanghai_year",
]

DATA = Path(__file__).parent / "data"
TZ = "Asia/Shanghai"
_LAT, _LON, _ALT = 30.90, 121.93, 4.0


def make_exogenous(
    n: int,
    *,
    start: str = "2024-07-15 00:00",
    step_min: int = 15,
    wind_speed_m_s: dict[str, np.ndarray] | None = None,
    wind_ref_height_m: dict[str, float] | None = None,
    **arrays,
) -> Exogenous:
    """An Exogenous of *n* steps: night, calm, 15 degC, 101325 Pa unless overridden.

    ``arrays`` override any per-step field of :class:`Exogenous` (scalars
    are broadcast).  Default wind: ``offshore`` and ``onshore`` regimes at
    8 and 6 m/s, both at 90 m.
    """
    index = pd.date_range(start, periods=n, freq=f"{step_min}min", tz=TZ)
    values = {name: 0.0 for name in Exogenous.array_fields()}
    values.update(
        solar_zenith_deg=120.0,
        solar_apparent_zenith_deg=120.0,
        solar_azimuth_deg=0.0,
        dni_extra_w_m2=1321.0,
        temp_air_c=15.0,
        pressure_pa=101_325.0,
    )
    values.update(arrays)
    fields = {
        k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy() for k, v in values.items()
    }
    if wind_speed_m_s is None:
        wind_speed_m_s = {"offshore": 8.0, "onshore": 6.0}
    wind = {
        k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()
        for k, v in wind_speed_m_s.items()
    }
    heights = wind_ref_height_m or {k: 90.0 for k in wind}
    return Exogenous(
        index=index,
        step_h=step_min / 60,
        latitude_deg=_LAT,
        longitude_deg=_LON,
        altitude_m=_ALT,
        wind_speed_m_s=wind,
        wind_ref_height_m=heights,
        **fields,
    )


def make_context(
    exo: Exogenous, count: int, seed: int = 0, name: str = "f", pad_steps: int = 0
) -> FleetContext:
    """A FleetContext over *exo* (the last *pad_steps* steps are horizon padding)."""
    step_s = int(round(exo.step_h * 3600))
    start = exo.index[0]
    end = start + pd.Timedelta(seconds=step_s * (len(exo) - pad_steps))
    timeline = Timeline(start, end, step_s, pad_steps)
    return FleetContext(name, "n1", count, np.random.default_rng(seed), timeline, exo)


def reference_day() -> pd.DataFrame:
    """The stored ModelChain reference day (inputs and per-system AC power)."""
    return pd.read_csv(DATA / "pv_modelchain_reference.csv", comment="#", index_col="time_start")


def clear_sky_exogenous(days: int = 1, wind_10m_m_s=None) -> Exogenous:
    """*days* repetitions of the reference clear-sky day.

    Wind: the day's 10 m wind raised to a ``onshore`` regime at 90 m with the
    1/7 power law (the PV fleet's inverse); ``offshore`` is 8 m/s at 90 m.
    """
    ref = reference_day()
    cols = [
        "solar_zenith_deg",
        "solar_apparent_zenith_deg",
        "solar_azimuth_deg",
        "dni_extra_w_m2",
        "ghi_w_m2",
        "dni_w_m2",
        "dhi_w_m2",
        "temp_air_c",
        "pressure_pa",
    ]
    arrays = {c: np.tile(ref[c].to_numpy(), days) for c in cols}
    arrays["ghi_clear_w_m2"] = arrays["ghi_w_m2"]
    w10 = (
        np.tile(ref["wind_speed_10m_m_s"].to_numpy(), days)
        if wind_10m_m_s is None
        else wind_10m_m_s
    )
    return make_exogenous(
        len(ref) * days,
        wind_speed_m_s={"onshore": w10 * 9.0 ** (1 / 7), "offshore": 8.0},
        wind_ref_height_m={"onshore": 90.0, "offshore": 90.0},
        **arrays,
    )


def shanghai_year(seed: int):
    """A year (2024) of the default synthetic Shanghai weather at hourly steps:
    ``(timeline, exogenous)`` built through the scenario path users take."""
    from vpp.exogenous import build_exogenous
    from vpp.scenario import scenario_from_dict

    data = {
        "name": "weather year",
        "seed": seed,
        "time": {"start": "2024-01-01T00:00:00", "end": "2025-01-01T00:00:00", "step_min": 60},
        "nodes": [{"name": "n1", "import_limit_kw": 1.0, "export_limit_kw": 1.0}],
        "fleets": [{"name": "x", "type": "pv", "node": "n1", "count": 1}],
        "dispatch": {"interval_min": 60, "horizon_h": 1, "fine_horizon_h": 1, "coarse_step_min": 60},
    }
    scenario = scenario_from_dict(data, "year.toml")
    return scenario.timeline(), build_exogenous(scenario)

