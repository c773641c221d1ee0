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

    latitude_deg: float = Field(30.90, ge=-90, le=90)
    """Latitude, north positive, for the sun's position and the clear sky (default Lingang New Area)."""
    longitude_deg: float = Field(121.93, ge=-180, le=180)
    """Longitude, east positive: the sun's position, and the local solar time the synthetic weather's
    days and daily cycles follow (default Lingang New Area)."""
    altitude_m: float = Field(4.0, ge=-500, le=9000)
    """Height above sea level; sets the standard-atmosphere pressure used for the sun's position, the
    clear sky and, where the weather has no pressure, the wind's air density (default 4 m, assumption)."""
    # Linke turbidity of the clear sky: None uses the monthly climatology of Remund et
    # al. (2003) that ships with pvlib; a number holds it fixed (clear-sky studies). [-]
    linke_turbidity: float | None = Field(None, gt=0, le=10)


class WindRegime(_Section):
    """A wind climate: Weibull marginal, persistence and diurnal cycle.

    ``mean_speed_m_s`` is the annual mean at ``ref_height_m``; fleets
    extrapolate to their hub height with their own shear model.
    """

    mean_speed_m_s: float = Field(gt=0, le=30)
    """Annual mean wind speed at ``ref_height_m`` (synthetic weather)."""
    ref_height_m: float = Field(gt=0, le=300)
    """Height of the regime's wind speeds (synthetic, or a weather CSV's ``wind_speed_<regime>_m_s``);
    fleets carry them to hub height with their shear law.  A weather file sets its own (10 m; NSRDB 2 m)."""
    weibull_k: float = Field(2.0, gt=0.5, le=5)
    """Shape of the Weibull distribution of wind speeds, larger for steadier winds; 2 (default,
    assumption) is the Rayleigh distribution. [-]"""
    autocorrelation_h: float = Field(10.0, gt=0)
    """Time after which the correlation of the wind's Gaussian AR(1) process has fallen to 1/e: how long
    windy and calm spells last (default 10 h, assumption)."""
    diurnal_amplitude_frac: float = Field(0.10, ge=0, lt=1)
    """Amplitude of the daily cosine cycle of the mean wind speed, as a share of the mean (default 0.10,
    assumption)."""
    diurnal_peak_hour: float = Field(15.0, ge=0, lt=24)
    """Local solar time of the daily cycle's highest mean speed (default 15 h, assumption)."""
    seasonal_amplitude_frac: float = Field(0.10, ge=0, lt=1)
    """Amplitude of the annual cosine cycle of the mean wind speed, as a share of the mean (default 0.10,
    assumption)."""
    seasonal_peak_month: int = Field(1, ge=1, le=12)
    """Month whose middle has the highest mean speed (default January: the East Asian winter monsoon
    makes winter windier; assumption)."""
    synoptic_correlation: float = Field(0.7, ge=0, le=1)
    """Share of the wind's Gaussian process that every regime has in common (weather systems); two
    regimes of equal ``autocorrelation_h`` are correlated by it (default 0.7, assumption). [-]"""


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

    source: Literal["synthetic", "csv", "epw", "tmy3", "pvgis_tmy", "nsrdb"] = "synthetic"
    """``"synthetic"`` (default): Shanghai's climate from the monthly normals below, seeded; ``"csv"``:
    measurements from ``path`` (columns in :mod:`vpp.exogenous.csvsource`); ``"epw"``, ``"tmy3"``,
    ``"pvgis_tmy"`` or ``"nsrdb"``: a weather file of that format, read by pvlib and laid on each
    simulated year (:mod:`vpp.exogenous.weatherfiles`)."""
    path: str | None = None
    """The weather file, relative to the scenario file; required unless ``source = "synthetic"``."""
    clear_sky: bool = False
    """Synthetic weather without clouds: irradiance is pvlib's Ineichen clear sky, and every day has its
    month's normal temperature range (default false)."""
    monthly_ghi_kwh_m2_day: tuple[float, ...] = Field(SHANGHAI_GHI_KWH_M2_DAY, min_length=12, max_length=12)
    """Normal mean daily global horizontal irradiation of each month from January, which the synthetic
    clouds are calibrated to; default Shanghai's, about 1,300 kWh/m² a year (assumption-grade)."""
    monthly_temp_c: tuple[float, ...] = Field(SHANGHAI_TEMP_C, min_length=12, max_length=12)
    """Normal mean air temperature of each month from January (synthetic weather); default Shanghai's,
    approximately Xujiahui station's 1991-2020 normals (China Meteorological Administration;
    assumption-grade)."""
    monthly_temp_range_k: tuple[float, ...] = Field(SHANGHAI_TEMP_RANGE_K, min_length=12, max_length=12)
    """Normal daily temperature range (maximum minus minimum) of each month from January, damped on
    cloudy days (synthetic weather); default Shanghai's, approximate (assumption-grade)."""
    temp_anomaly_std_k: float = Field(1.5, ge=0)
    """Standard deviation of the day-to-day air-temperature anomaly, an AR(1) with a 3-day
    autocorrelation time (synthetic weather; default 1.5 K, assumption)."""
    cloud_persistence_days: float = Field(1.5, gt=0)
    """Autocorrelation time of the daily clear-sky index: how long cloudy and sunny spells last
    (synthetic weather; default 1.5 days, assumption)."""
    wind_regimes: dict[str, WindRegime] = Field(
        default_factory=lambda: {"offshore": _offshore(), "onshore": _onshore()})
    """Wind climates by name, which wind and PV fleets pick by ``wind_regime``; default ``offshore``
    (Donghai Bridge farm, 8.4 m/s at 90 m, secondary) and ``onshore`` (6.0 m/s at 90 m, assumption),
    whose other values differ from a new regime's defaults; see [weather.wind_regimes.NAME]."""

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
    """``"shanghai_tou"`` (default): the Shanghai time-of-use multipliers on ``flat_price_cny_per_kwh``
    (official); ``"csv"``: ``price_import_cny_per_kwh`` (and optionally ``price_export_cny_per_kwh``) per
    time from ``path``.  The demand charge applies either way; ``[market]`` can replace the energy prices."""
    path: str | None = None
    """The tariff CSV, relative to the scenario file; required with ``source = "csv"``."""
    flat_price_cny_per_kwh: float = Field(0.70, gt=0, le=PRICE_MAX_CNY_PER_KWH)
    """The flat price P that the time-of-use multipliers scale: the grid company's monthly agency
    purchase price, 0.70 here (assumption)."""
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
    """``"profile"`` (default): the annual ``factor`` with a stated daily shape; ``"csv"``:
    ``co2_kg_per_kwh`` per time from ``path``."""
    path: str | None = None
    """The carbon-intensity CSV, relative to the scenario file; required with ``source = "csv"``."""
    factor: Literal["average", "marginal"] = "average"
    """Which annual factor the profile varies around: ``"average"`` (default) or ``"marginal"``."""
    average_kg_per_kwh: float = Field(0.5849, ge=0, le=CO2_MAX_KG_PER_KWH)
    """Average emission factor of grid electricity: Shanghai 2022, 0.5849 (secondary)."""
    marginal_kg_per_kwh: float = Field(0.8325, ge=0, le=CO2_MAX_KG_PER_KWH)
    """Marginal emission factor: the fossil-only 2022 factor, 0.8325 (official), as a proxy for displaced
    thermal generation (assumption that it is marginal)."""
    diurnal_amplitude_frac: float = Field(0.10, ge=0, lt=1)
    """Amplitude of the daily shape, lowest at 13:00 and highest at 20:00 local time, as a share of the
    factor; each day's mean stays the factor (default 0.10, assumption: no official hourly series)."""

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
    """Every forecast exact: no errors, and each fleet forecasts its own noise, outages and base loads by
    the values its physics will realise; future EV arrivals stay unknown (default false)."""
    ghi_error_frac_24h: float = Field(0.35, ge=0)
    """Standard deviation at 24 h lead of the relative error of the forecast clear-sky index (so of GHI);
    DNI and DHI follow from the forecast GHI (default 0.35, assumption; for day-ahead GHI errors see
    Lorenz et al. 2009). [-]"""
    temp_error_k_24h: float = Field(1.5, ge=0)
    """Standard deviation at 24 h lead of the air-temperature forecast's error, added to the actual
    (default 1.5 K, assumption). [K]"""
    wind_error_frac_24h: float = Field(0.25, ge=0)
    """Standard deviation at 24 h lead of the relative error of each wind regime's forecast speed,
    independent per regime (default 0.25, assumption). [-]"""
    load_error_frac_24h: float = Field(0.05, ge=0)
    """Standard deviation at 24 h lead of the relative error the fleets apply to their own load
    forecasts (default 0.05, assumption). [-]"""
    dropout_frac: float = Field(0.0, ge=0, lt=1)
    """Long-run share of time the weather forecast feed is down (default 0: never); while it is
    down the strategy plans on persistence, each step's weather as at the same time on the last
    day before the decision. [-]"""
    dropout_mean_h: float = Field(6.0, ge=0.25, le=24 * 30)
    """Mean length of a feed outage; outages and the times between them are exponential, seeded
    (default 6 h, assumption). [h]"""
