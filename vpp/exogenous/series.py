"""Exogenous series on the simulation's padded timeline.

:class:`Exogenous` holds one array per quantity, one value per simulation
step (mean over the interval starting at ``index[k]``).  Actuals cover the
simulated period plus the dispatch horizon; a forecast is an
:class:`Exogenous` over one dispatch window, with errors applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

__all__ = ["Exogenous"]

_ARRAYS = (
    "solar_zenith_deg",
    "solar_apparent_zenith_deg",
    "solar_azimuth_deg",
    "dni_extra_w_m2",
    "ghi_clear_w_m2",
    "ghi_w_m2",
    "dni_w_m2",
    "dhi_w_m2",
    "temp_air_c",
    "pressure_pa",
    "price_import_cny_per_kwh",
    "price_export_cny_per_kwh",
    "co2_kg_per_kwh",
)


@dataclass(frozen=True, eq=False)
class Exogenous:
    """Weather, solar geometry, prices and carbon intensity per step.

    Parameters
    ----------
    index : DatetimeIndex
        Interval starts, tz-aware.
    step_h : float
        Step length. [h]
    latitude_deg, longitude_deg, altitude_m : float
        The site.
    solar_zenith_deg, solar_apparent_zenith_deg, solar_azimuth_deg : ndarray
        Solar position at each interval's midpoint. [deg]
    dni_extra_w_m2 : ndarray
        Extraterrestrial normal irradiance. [W/m2]
    ghi_clear_w_m2 : ndarray
        Clear-sky global horizontal irradiance. [W/m2]
    ghi_w_m2, dni_w_m2, dhi_w_m2 : ndarray
        Global horizontal, direct normal and diffuse horizontal irradiance. [W/m2]
    temp_air_c : ndarray
        Air temperature at 2 m. [degC]
    pressure_pa : ndarray
        Surface air pressure. [Pa]
    wind_speed_m_s : dict of str to ndarray
        Wind speed per wind regime at that regime's reference height. [m/s]
    wind_ref_height_m : dict of str to float
        Reference height of each regime's wind speed. [m]
    price_import_cny_per_kwh, price_export_cny_per_kwh : ndarray
        Energy price for import and export. [CNY/kWh]
    co2_kg_per_kwh : ndarray
        Carbon intensity of grid electricity. [kg/kWh]
    demand_charge_cny_per_kw_month : float
        Maximum-demand charge. [CNY/(kW month)]
    load_error_frac : ndarray or None
        Forecasts only: relative error path to apply to fleets' own load
        forecasts (``forecast = actual * (1 + load_error_frac)``). [-]
    perfect : bool
        Forecasts only: the window is a perfect forecast.  Fleets then forecast
        their own stochastic quantities too (load noise, outages) by the values
        their physics will realise, not by an expectation.
    """

    index: pd.DatetimeIndex
    step_h: float
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    solar_zenith_deg: np.ndarray
    solar_apparent_zenith_deg: np.ndarray
    solar_azimuth_deg: np.ndarray
    dni_extra_w_m2: np.ndarray
    ghi_clear_w_m2: np.ndarray
    ghi_w_m2: np.ndarray
    dni_w_m2: np.ndarray
    dhi_w_m2: np.ndarray
    temp_air_c: np.ndarray
    pressure_pa: np.ndarray
    wind_speed_m_s: dict[str, np.ndarray]
    wind_ref_height_m: dict[str, float]
    price_import_cny_per_kwh: np.ndarray
    price_export_cny_per_kwh: np.ndarray
    co2_kg_per_kwh: np.ndarray
    demand_charge_cny_per_kw_month: float = 0.0
    load_error_frac: np.ndarray | None = field(default=None)
    perfect: bool = False

    def __post_init__(self):
        n = len(self.index)
        for name in _ARRAYS:
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(f"Exogenous.{name} must have one value per step ({n})")
        for name, v in self.wind_speed_m_s.items():
            if np.shape(v) != (n,):
                raise ValueError(f"Exogenous.wind_speed_m_s[{name!r}] must have one value per step ({n})")

    def __len__(self) -> int:
        return len(self.index)

    def window(self, k0: int, n: int) -> Exogenous:
        """Steps ``k0 .. k0 + n - 1`` (views, no copies)."""
        if k0 < 0 or k0 + n > len(self):
            raise IndexError(f"window {k0}..{k0 + n} outside 0..{len(self)}")
        s = slice(k0, k0 + n)
        changes = {name: getattr(self, name)[s] for name in _ARRAYS}
        changes["wind_speed_m_s"] = {k: v[s] for k, v in self.wind_speed_m_s.items()}
        if self.load_error_frac is not None:
            changes["load_error_frac"] = self.load_error_frac[s]
        return replace(self, index=self.index[s], **changes)

    def to_frame(self) -> pd.DataFrame:
        """All per-step series as one DataFrame (wind as ``wind_speed_<regime>_m_s``)."""
        data = {name: getattr(self, name) for name in _ARRAYS}
        for k, v in self.wind_speed_m_s.items():
            data[f"wind_speed_{k}_m_s"] = v
        return pd.DataFrame(data, index=self.index)

    @classmethod
    def array_fields(cls) -> tuple[str, ...]:
        """Names of the per-step array fields (besides wind)."""
        return _ARRAYS

