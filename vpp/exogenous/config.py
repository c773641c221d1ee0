"""Scenario sections for exogenous inputs: site, weather, tariff, carbon, forecasts.

Defaults describe Shanghai (Lingang); each default names its source and its
label from ``docs/SOURCES.md`` (official / secondary / assumption).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from vpp.errors import FieldError
from vpp.params import InputModel

__all__ = [
    "TEMP_AIR_RANGE_C",
    "GHI_MAX_W_M2",
    "WIND_MAX_M_S",
    "PRICE_MAX_CNY_PER_KWH",
    "CO2_MAX_KG_PER_KWH",
    "SiteConfig",
    "WindRegime",
    "WeatherConfig",
    "TariffConfig",
    "CarbonConfig",
    "ForecastConfig",
]


#: Plausibility ranges of exogenous inputs (scenario values and CSV columns alike).
#: Outside them a value is almost surely in another unit (see vpp.exogenous.csvsource).
TEMP_AIR_RANGE_C = (-90.0, 60.0)        # the record low and high air temperatures on Earth
GHI_MAX_W_M2 = 1500.0                    # above the solar constant (1361 W/m2) plus cloud enhancement
GHI_DAY_MAX_KWH_M2 = 12.0                # daily irradiation: a clear midsummer day at altitude is ~9
WIND_MAX_M_S = 75.0                      # about the strongest gust measured at a station
PRICE_MAX_CNY_PER_KWH = 20.0             # ten times the highest Chinese critical-peak tariffs
CO2_MAX_KG_PER_KWH = 2.0                 # lignite is ~1.2 kg/kWh


class _Section(InputModel):
    """No unknown keys, no NaN or infinity, no boolean for a number."""


class SiteConfig(_Section):
    """Where the VPP is: one site for solar geometry and weather."""

    latitude_deg: float = Field(30.90, ge=-90, le=90)  # Lingang New Area
    longitude_deg: float = Field(121.93, ge=-180, le=180)
    altitude_m: float = Field(4.0, ge=-500, le=9000)
    # Linke turbidity of the clear sky: None uses the monthly climatology of Remund et
    # al. (2003) that ships with pvlib; a number holds it fixed (clear-sky studies). [-]
    linke_turbidity: float | None = Field(None, gt=0, le=10)


class WindRegime(_Section):
    """A wind climate: Weibull marginal, persistence and diurnal cycle.

    ``mean_speed_m_s`` is the annual mean at ``ref_height_m``; fleets
    extrapolate to their hub height with their own shear model.
    """

    mean_speed_m_s: float = Field(gt=0, le=30)
    ref_height_m: float = Field(gt=0, le=300)
    weibull_k: float = Field(2.0, gt=0.5, le=5)
    autocorrelation_h: float = Field(10.0, gt=0)
    diurnal_amplitude_frac: float = Field(0.10, ge=0, lt=1)
    diurnal_peak_hour: float = Field(15.0, ge=0, lt=24)
    seasonal_amplitude_frac: float = Field(0.10, ge=0, lt=1)
    seasonal_peak_month: int = Field(1, ge=1, le=12)
    synoptic_correlation: float = Field(0.7, ge=0, le=1)


def _offshore() -> WindRegime:
    # Donghai Bridge offshore farm: mean 8.4 m/s at 90 m (docs/SOURCES.md, secondary).
    # East Asian winter monsoon: windier in winter (assumption).
    return WindRegime(mean_speed_m_s=8.4, ref_height_m=90.0, weibull_k=2.2,
                      autocorrelation_h=12.0, diurnal_amplitude_frac=0.05)


def _onshore() -> WindRegime:
    # Coastal onshore Shanghai, rougher terrain: 6.0 m/s at 90 m (assumption).
    return WindRegime(mean_speed_m_s=6.0, ref_height_m=90.0, weibull_k=2.0,
                      autocorrelation_h=8.0, diurnal_amplitude_frac=0.15)


# Climate normals for Shanghai (approximate monthly means, Xujiahui station,
# China Meteorological Administration 1991-2020; assumption-grade values).
SHANGHAI_TEMP_C = (4.8, 6.6, 10.3, 15.6, 20.9, 24.6, 28.9, 28.6, 24.9, 19.9, 14.0, 7.5)
SHANGHAI_TEMP_RANGE_K = (7.0, 7.0, 7.5, 8.0, 8.0, 6.5, 7.0, 7.0, 7.0, 7.5, 7.5, 7.0)
# Monthly mean daily global horizontal irradiation, kWh/m2/day (about
# 1,300 kWh/m2/yr; meiyu rains lower June; assumption-grade climatology).
SHANGHAI_GHI_KWH_M2_DAY = (2.4, 2.8, 3.3, 4.1, 4.6, 4.2, 5.0, 4.8, 3.9, 3.3, 2.6, 2.3)


class WeatherConfig(_Section):
    """Weather: synthetic Shanghai climate (seeded), a CSV of measurements, or an EPW
    or TMY3 file (:mod:`vpp.exogenous.weatherfiles`)."""

    source: Literal["synthetic", "csv", "epw", "tmy3"] = "synthetic"
    path: str | None = None
    clear_sky: bool = False
    monthly_ghi_kwh_m2_day: tuple[float, ...] = Field(SHANGHAI_GHI_KWH_M2_DAY, min_length=12, max_length=12)
    monthly_temp_c: tuple[float, ...] = Field(SHANGHAI_TEMP_C, min_length=12, max_length=12)
    monthly_temp_range_k: tuple[float, ...] = Field(SHANGHAI_TEMP_RANGE_K, min_length=12, max_length=12)
    temp_anomaly_std_k: float = Field(1.5, ge=0)
    cloud_persistence_days: float = Field(1.5, gt=0)
    wind_regimes: dict[str, WindRegime] = Field(
        default_factory=lambda: {"offshore": _offshore(), "onshore": _onshore()})

    @model_validator(mode="after")
    def _csv_needs_path(self):
        if self.source != "synthetic" and not self.path:
            raise ValueError(f"source = {self.source!r} needs a path")
        for name, (lo, hi), unit in (("monthly_ghi_kwh_m2_day", (0.0, GHI_DAY_MAX_KWH_M2), "kWh/m2/day"),
                                     ("monthly_temp_c", TEMP_AIR_RANGE_C, "degC"),
                                     ("monthly_temp_range_k", (0.0, 30.0), "K")):
            for i, v in enumerate(getattr(self, name)):
                if not lo <= v <= hi:
                    raise FieldError((name, i), f"{v:g} is outside {lo:g}..{hi:g} {unit}")
        if not self.wind_regimes:
            raise ValueError("wind_regimes must name at least one regime")
        return self


class TariffConfig(_Section):
    """Electricity prices.

    ``shanghai_tou``: two-part general C&I time-of-use tariff, 沪发改价管〔2022〕50号,
    in force 2023-01-01 (official): multipliers on a flat price P.
    """

    source: Literal["shanghai_tou", "csv"] = "shanghai_tou"
    path: str | None = None
    flat_price_cny_per_kwh: float = Field(0.70, gt=0, le=PRICE_MAX_CNY_PER_KWH)  # agency purchase price (assumption)
    # Feed-in price: Shanghai coal-fired benchmark price, 0.4155 CNY/kWh (NDRC; secondary).
    export_price_cny_per_kwh: float = Field(0.4155, ge=0, le=PRICE_MAX_CNY_PER_KWH)
    # Maximum-demand charge of the two-part tariff (assumption, order of the
    # published Shanghai 1-10 kV demand price).
    demand_charge_cny_per_kw_month: float = Field(40.0, ge=0)

    @model_validator(mode="after")
    def _csv_needs_path(self):
        if self.source == "csv" and not self.path:
            raise ValueError("source = 'csv' needs a path")
        return self


class CarbonConfig(_Section):
    """Carbon intensity of grid electricity.

    ``profile``: a daily profile around the annual factor. Shanghai 2022
    average 0.5849 kg/kWh (secondary); fossil-only 2022 factor 0.8325 kg/kWh
    (official) as a marginal proxy (assumption).  No official hourly series
    exists: the diurnal shape (lower at midday with East China's solar,
    higher in the evening) is a stated modelling choice.
    """

    source: Literal["profile", "csv"] = "profile"
    path: str | None = None
    factor: Literal["average", "marginal"] = "average"
    average_kg_per_kwh: float = Field(0.5849, ge=0, le=CO2_MAX_KG_PER_KWH)
    marginal_kg_per_kwh: float = Field(0.8325, ge=0, le=CO2_MAX_KG_PER_KWH)
    diurnal_amplitude_frac: float = Field(0.10, ge=0, lt=1)

    @model_validator(mode="after")
    def _csv_needs_path(self):
        if self.source == "csv" and not self.path:
            raise ValueError("source = 'csv' needs a path")
        return self


class ForecastConfig(_Section):
    """Forecast errors seen by strategies (the physics uses the actuals).

    Errors follow a random walk in lead time, so their standard deviation
    grows with the square root of the lead time and is zero at lead zero;
    each value here is the standard deviation at 24 h lead.
    """

    perfect: bool = False
    ghi_error_frac_24h: float = Field(0.35, ge=0)      # clear-sky index, relative
    temp_error_k_24h: float = Field(1.5, ge=0)
    wind_error_frac_24h: float = Field(0.25, ge=0)
    load_error_frac_24h: float = Field(0.05, ge=0)
