"""Synthetic, seeded weather for one site: sun, clouds, air temperature, wind.

Every quantity is a value per simulation step, the mean over the interval
that starts at the step's timestamp; instantaneous quantities (solar
position, clear-sky irradiance) are evaluated at the interval's midpoint,
which approximates the interval mean well for steps up to about an hour (for
longer steps irradiance is the midpoint value, not the mean).

The pieces, each a plain vectorised function:

* :func:`solar_geometry` -- solar position (NREL SPA, Reda & Andreas 2004),
  extraterrestrial irradiance (Spencer 1971) and Ineichen-Perez clear-sky
  irradiance (Ineichen & Perez 2002) with the Linke turbidity climatology of
  Remund et al. (2003) that ships with pvlib.
* :func:`split_ghi` -- DNI and DHI from GHI with the Erbs et al. (1982)
  diffuse-fraction correlation.
* :func:`cloud_index` -- a daily clear-sky index (Gaussian AR(1) mapped to a
  Beta marginal, calibrated to the monthly normal GHI) times intraday AR(1)
  fluctuations.
* :func:`air_temperature` -- annual cycle through the monthly normals, a
  diurnal cycle damped on cloudy days, and an AR(1) day-to-day anomaly.
* :func:`wind_speeds` -- per wind regime, a Gaussian AR(1) with a shared
  synoptic component, mapped to a Weibull marginal (Brown, Katz & Murphy 1984).
* :func:`synthetic_weather` -- all of the above on a simulation index.

Time of day in the diurnal shapes (temperature, wind) and the grouping of
steps into days (daily cloud index, daily temperature range) use *local
solar time* at the site's longitude, so the weather at an instant does not
depend on the time zone a scenario is displayed in.

Randomness: each stream draws from its own generator,
``component_rng(seed, "weather/cloud/daily")``, ``".../cloud/intraday"``,
``"weather/temperature"``, ``"weather/wind/synoptic"`` and
``"weather/wind/<regime>"``; every stream draws its values in time order
starting at the (solar-day-aligned) start of the simulation, so extending a
simulation's end does not change the weather of its earlier steps, and
adding a wind regime does not change another regime's wind.

References
----------
Reda, I., Andreas, A. (2004). Solar position algorithm for solar radiation
applications. Solar Energy 76(5), 577-589. doi:10.1016/j.solener.2003.12.003

Spencer, J. W. (1971). Fourier series representation of the position of the
sun. Search 2(5), 172.

Ineichen, P., Perez, R. (2002). A new airmass independent formulation for
the Linke turbidity coefficient. Solar Energy 73(3), 151-157.
doi:10.1016/S0038-092X(02)00045-2

Remund, J., Wald, L., Lefevre, M., Ranchin, T., Page, J. (2003). Worldwide
Linke turbidity information. ISES Solar World Congress, Goteborg.

Kasten, F., Young, A. T. (1989). Revised optical air mass tables and
approximation formula. Applied Optics 28(22), 4735-4738.
doi:10.1364/AO.28.004735

Erbs, D. G., Klein, S. A., Duffie, J. A. (1982). Estimation of the diffuse
radiation fraction for hourly, daily and monthly-average global radiation.
Solar Energy 28(4), 293-302. doi:10.1016/0038-092X(82)90302-4

Graham, V. A., Hollands, K. G. T., Unny, T. E. (1988). A time series model
for Kt with application to global synthetic weather generation. Solar
Energy 40(2), 83-92. doi:10.1016/0038-092X(88)90075-8

Parton, W. J., Logan, J. A. (1981). A model for diurnal variation in soil
and air temperature. Agricultural Meteorology 23, 205-216.
doi:10.1016/0002-1571(81)90105-9

Brown, B. G., Katz, R. W., Murphy, A. H. (1984). Time series models to
simulate and forecast wind speed and wind power. Journal of Climate and
Applied Meteorology 23(8), 1184-1195.
doi:10.1175/1520-0450(1984)023<1184:TSMTSA>2.0.CO;2
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib
from scipy.interpolate import CubicSpline
from scipy.signal import lfilter
from scipy.special import betaincinv, gamma, log_ndtr, ndtr

from vpp.exogenous.config import SiteConfig, WeatherConfig, WindRegime
from vpp.rng import component_rng

__all__ = [
    "SolarGeometry",
    "SolarDays",
    "Weather",
    "K_CAP",
    "solar_geometry",
    "split_ghi",
    "solar_time_h",
    "solar_days",
    "cloud_index",
    "monthly_cycle",
    "air_temperature",
    "wind_speeds",
    "synthetic_weather",
]

# --- modelling constants (assumptions, stated once) --------------------------
#: Cap on the interval-mean clear-sky index GHI / GHI_clear [-].  Cloud-edge
#: enhancement lifts short-interval GHI above the clear-sky value (Gueymard
#: 2017, Solar Energy 153, 755-765); we assume 15-min means stay within 20 %.
K_CAP = 1.2
#: Support of the daily clear-sky index (ratio of daily GHI to daily
#: clear-sky GHI) [-] (assumption: a day is never darker than 3 % of clear sky
#: nor brighter than the clear-sky model).
_KD_MIN, _KD_MAX = 0.03, 1.0
#: Highest mean daily clear-sky index a month may ask for [-] (a monthly
#: normal above it is capped: not every day of a month can be cloudless).
_KD_MEAN_MAX = 0.9
#: Concentration a + b of the daily Beta marginal [-] (assumption: gives a
#: daily-index standard deviation of about 0.2).
_KD_CONCENTRATION = 4.0
#: Intraday cloud fluctuations: autocorrelation time [h] and the largest
#: log-standard deviation, reached on half-cloudy days [-] (assumption).
_INTRADAY_TAU_H = 1.0
_INTRADAY_SIGMA_MAX = 0.5
#: Rescale-and-cap passes that restore each day's GHI after capping at K_CAP.
_RENORMALISE_ITERATIONS = 4
#: Local solar time of the daily temperature maximum [h] (assumption; the
#: minimum is at sunrise, as in Parton & Logan 1981).
_TEMP_MAX_SOLAR_H = 14.5
#: Autocorrelation time of the day-to-day temperature anomaly [day] (assumption).
_TEMP_ANOMALY_TAU_DAYS = 3.0
#: Daily temperature range on a day with daily clear-sky index K, relative to
#: the monthly normal range: (_RANGE_BASE + K') / (_RANGE_BASE + E[K']) with K'
#: the index scaled to 0..1 (assumption: overcast days have about half the
#: normal range, clear days about 1.5 times).
_RANGE_BASE = 0.3

_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True, eq=False)
class SolarGeometry:
    """Solar position and clear-sky irradiance at interval midpoints.

    Attributes
    ----------
    zenith_deg, apparent_zenith_deg, azimuth_deg : ndarray
        True and refraction-corrected solar zenith, solar azimuth. [deg]
    dni_extra_w_m2 : ndarray
        Extraterrestrial normal irradiance. [W/m2]
    ghi_clear_w_m2, dni_clear_w_m2, dhi_clear_w_m2 : ndarray
        Ineichen-Perez clear-sky irradiance. [W/m2]
    pressure_pa : float
        Surface pressure from the site's altitude. [Pa]
    """

    zenith_deg: np.ndarray
    apparent_zenith_deg: np.ndarray
    azimuth_deg: np.ndarray
    dni_extra_w_m2: np.ndarray
    ghi_clear_w_m2: np.ndarray
    dni_clear_w_m2: np.ndarray
    dhi_clear_w_m2: np.ndarray
    pressure_pa: float

    def __getitem__(self, s: slice) -> SolarGeometry:
        arrays = {k: v[s] for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        return SolarGeometry(pressure_pa=self.pressure_pa, **arrays)


@dataclass(frozen=True, eq=False)
class Weather:
    """Weather per step: solar geometry plus the meteorological series.

    Attributes
    ----------
    solar : SolarGeometry
        Solar position and clear-sky irradiance.
    ghi_w_m2, dni_w_m2, dhi_w_m2 : ndarray
        Global horizontal, direct normal and diffuse horizontal irradiance;
        ``ghi = dni * cos(apparent_zenith) + dhi``. [W/m2]
    temp_air_c : ndarray
        Air temperature. [degC]
    pressure_pa : ndarray
        Surface pressure. [Pa]
    wind_speed_m_s : dict of str to ndarray
        Wind speed per regime at the regime's reference height. [m/s]
    """

    solar: SolarGeometry
    ghi_w_m2: np.ndarray
    dni_w_m2: np.ndarray
    dhi_w_m2: np.ndarray
    temp_air_c: np.ndarray
    pressure_pa: np.ndarray
    wind_speed_m_s: dict[str, np.ndarray]


# --- sun ------------------------------------------------------------------------


def _midpoints(index: pd.DatetimeIndex, step_s: float) -> pd.DatetimeIndex:
    return index + pd.Timedelta(seconds=step_s / 2)


def _utc_day_of_year(times: pd.DatetimeIndex) -> np.ndarray:
    # pvlib's convention for day-of-year inputs: the UTC day
    return times.tz_convert("UTC").day_of_year.to_numpy()


def solar_geometry(index: pd.DatetimeIndex, step_s: float, site: SiteConfig) -> SolarGeometry:
    """Solar position and Ineichen-Perez clear sky at each interval's midpoint.

    Parameters
    ----------
    index : DatetimeIndex
        Interval starts, tz-aware.
    step_s : float
        Interval length. [s]
    site : SiteConfig
        Latitude, longitude [deg] and altitude [m].

    Returns
    -------
    SolarGeometry

    Notes
    -----
    Solar position: NREL SPA (Reda & Andreas 2004) via
    :func:`pvlib.solarposition.get_solarposition` with the site's altitude
    and the pressure of the standard atmosphere at that altitude
    (:func:`pvlib.atmosphere.alt2pres`).  Absolute air mass from the
    Kasten & Young (1989) relative air mass.  Clear sky:
    :func:`pvlib.clearsky.ineichen` (Ineichen & Perez 2002) with the monthly
    Linke turbidity climatology of Remund et al. (2003), interpolated to days
    (the data file ships inside pvlib), or the site's fixed ``linke_turbidity``.
    This is what :meth:`pvlib.location.Location.get_clearsky` computes.
    """
    mid = _midpoints(index, step_s)
    pressure = float(pvlib.atmosphere.alt2pres(site.altitude_m))
    sp = pvlib.solarposition.get_solarposition(
        mid, site.latitude_deg, site.longitude_deg, altitude=site.altitude_m, pressure=pressure
    )
    dni_extra = pvlib.irradiance.get_extra_radiation(_utc_day_of_year(mid))
    with warnings.catch_warnings():
        # pvlib 0.16 reads DatetimeIndex.dayofyear, deprecated in pandas 3 (third-party; harmless)
        warnings.filterwarnings(
            "ignore", message=r".*dayofyear is deprecated", category=DeprecationWarning
        )
        linke = (pvlib.clearsky.lookup_linke_turbidity(mid, site.latitude_deg, site.longitude_deg)
                 if site.linke_turbidity is None else site.linke_turbidity)
    am_rel = pvlib.atmosphere.get_relative_airmass(sp["apparent_zenith"])
    am_abs = pvlib.atmosphere.get_absolute_airmass(am_rel, pressure)
    cs = pvlib.clearsky.ineichen(
        sp["apparent_zenith"], am_abs, linke, altitude=site.altitude_m, dni_extra=dni_extra
    )
    return SolarGeometry(
        zenith_deg=sp["zenith"].to_numpy(float),
        apparent_zenith_deg=sp["apparent_zenith"].to_numpy(float),
        azimuth_deg=sp["azimuth"].to_numpy(float),
        dni_extra_w_m2=np.asarray(dni_extra, dtype=float),
        ghi_clear_w_m2=cs["ghi"].to_numpy(float),
        dni_clear_w_m2=cs["dni"].to_numpy(float),
        dhi_clear_w_m2=cs["dhi"].to_numpy(float),
        pressure_pa=pressure,
    )


def split_ghi(
    ghi_w_m2: np.ndarray, apparent_zenith_deg: np.ndarray, index: pd.DatetimeIndex, step_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Direct normal and diffuse horizontal irradiance from GHI (Erbs et al. 1982).

    Parameters
    ----------
    ghi_w_m2 : ndarray
        Global horizontal irradiance. [W/m2]
    apparent_zenith_deg : ndarray
        Refraction-corrected solar zenith at the interval midpoints. [deg]
    index : DatetimeIndex
        Interval starts (the day of year sets the extraterrestrial irradiance).
    step_s : float
        Interval length. [s]

    Returns
    -------
    dni_w_m2, dhi_w_m2 : ndarray
        With ``ghi = dni * cos(apparent_zenith) + dhi`` exactly; ``dni = 0``
        and ``dhi = ghi`` below 3 deg of solar elevation. [W/m2]

    Notes
    -----
    :func:`pvlib.irradiance.erbs`.  The apparent zenith is used (pvlib's
    docstring asks for the true zenith; the two differ by less than 0.6 deg
    and only near the horizon) so that the closure holds with the same angle
    as in the Ineichen clear-sky model and in pvlib's ModelChain
    transposition.
    """
    out = pvlib.irradiance.erbs(
        np.asarray(ghi_w_m2, float),
        np.asarray(apparent_zenith_deg, float),
        _utc_day_of_year(_midpoints(index, step_s)),
    )
    return np.asarray(out["dni"], float), np.asarray(out["dhi"], float)


def solar_time_h(index: pd.DatetimeIndex, longitude_deg: float) -> np.ndarray:
    """Local apparent solar time of each timestamp. [h, 0..24)

    Mean solar time (UTC + longitude / 15) plus the equation of time
    (Spencer 1971, :func:`pvlib.solarposition.equation_of_time_spencer71`).
    """
    utc = index.tz_convert("UTC")
    hours = (utc - utc.normalize()).total_seconds().to_numpy() / 3600.0
    eot_min = pvlib.solarposition.equation_of_time_spencer71(utc.day_of_year.to_numpy())
    return np.mod(hours + longitude_deg / 15.0 + eot_min / 60.0, 24.0)


# --- days -------------------------------------------------------------------------


@dataclass(frozen=True)
class SolarDays:
    """Grouping of steps into local days (midnight to midnight, mean solar time).

    Attributes
    ----------
    day : ndarray of int
        Day number of each step, ``0 .. n_days - 1``.
    n_days : int
        Number of days.
    month : ndarray of int
        Calendar month (1..12) of each day.
    year_frac : ndarray
        Position in the year of each step's midpoint, 0..1 (0 = 1 January 00:00). [-]
    """

    day: np.ndarray
    n_days: int
    month: np.ndarray
    year_frac: np.ndarray


def solar_days(index: pd.DatetimeIndex, step_s: float, longitude_deg: float) -> SolarDays:
    """Group the steps of *index* (by their midpoints) into local mean-solar days."""
    shift = pd.Timedelta(hours=longitude_deg / 15.0)
    local = (_midpoints(index, step_s).tz_convert("UTC") + shift).tz_localize(None)
    dates = local.normalize()
    first = dates[0]
    day = ((dates - first) // _DAY).to_numpy().astype(np.int64)
    n_days = int(day[-1]) + 1
    day_dates = pd.date_range(first, periods=n_days, freq="D")
    year_len = np.where(local.is_leap_year, 366.0, 365.0)
    frac = (
        local.day_of_year.to_numpy() - 1 + (local - dates).total_seconds().to_numpy() / 86400.0
    ) / year_len
    return SolarDays(day=day, n_days=n_days, month=day_dates.month.to_numpy(), year_frac=frac)


def _extended(
    index: pd.DatetimeIndex, step_s: float, longitude_deg: float
) -> tuple[pd.DatetimeIndex, int]:
    """The index extended on the same grid to whole local solar days; offset of index[0]."""
    step = pd.Timedelta(seconds=step_s)
    shift = pd.Timedelta(hours=longitude_deg / 15.0)
    t0 = index[0].tz_convert("UTC") + shift
    t1 = index[-1].tz_convert("UTC") + step + shift
    day0 = t0.normalize()
    day1 = t1.normalize() + (_DAY if t1 > t1.normalize() else pd.Timedelta(0))
    before = int(np.ceil((t0 - day0) / step))
    after = int(np.ceil((day1 - t1) / step))
    ext = pd.date_range(index[0] - before * step, periods=len(index) + before + after, freq=step)
    return ext, before


def _ar1(white: np.ndarray, phi: float) -> np.ndarray:
    """Stationary unit-variance AR(1): x0 = w0, x_k = phi x_(k-1) + sqrt(1 - phi^2) w_k."""
    if len(white) < 2:
        return np.array(white, dtype=float)
    s = np.sqrt(1.0 - phi * phi)
    y, _ = lfilter([s], [1.0, -phi], white[1:], zi=[phi * white[0]])
    return np.concatenate([white[:1], y])


# --- clouds ---------------------------------------------------------------------


def cloud_index(
    ghi_clear_w_m2: np.ndarray,
    days: SolarDays,
    step_h: float,
    monthly_ghi_kwh_m2_day,
    persistence_days: float,
    rng_daily: np.random.Generator,
    rng_intraday: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clear-sky index per step and the daily index, calibrated to monthly normals.

    Parameters
    ----------
    ghi_clear_w_m2 : ndarray
        Clear-sky GHI per step, covering whole days. [W/m2]
    days : SolarDays
        Grouping of the steps into days.
    step_h : float
        Step length. [h]
    monthly_ghi_kwh_m2_day : sequence of 12 float
        Normal mean daily GHI per calendar month. [kWh/(m2 day)]
    persistence_days : float
        Autocorrelation time of the daily index's Gaussian process. [day]
    rng_daily, rng_intraday : Generator
        Streams for the daily and the intraday fluctuations.

    Returns
    -------
    k : ndarray
        Clear-sky index per step, 0 <= k <= ``K_CAP``. [-]
    k_day : ndarray
        Daily clear-sky index (daily GHI / daily clear-sky GHI). [-]
    k_day_mean : ndarray
        Its expected value for each day. [-]

    Notes
    -----
    Daily: a stationary Gaussian AR(1) with lag-one correlation
    ``exp(-1 / persistence_days)`` is mapped through the normal CDF (a
    Gaussian copula) to a Beta marginal on [0.03, 1.0] (the transformed-AR(1)
    approach of Graham, Hollands & Unny 1988; the Beta marginal is our
    choice).  The Beta mean of each day is the month's normal daily GHI over
    that day's clear-sky daily GHI (capped at 0.9), so the expected daily GHI
    equals the monthly normal.

    Intraday: a unit-variance AR(1) at the step (autocorrelation time 1 h)
    enters as a log-normal factor whose log-standard deviation is
    ``0.5 * 4 K' (1 - K')`` (K' the daily index scaled to 0..1): largest on
    half-cloudy days, small on clear and on overcast days.  The factor is
    renormalised within each day so that the day's GHI equals the daily
    index times the day's clear-sky GHI; the index is capped at ``K_CAP``
    and the day rescaled again a few times, so that the energy the cap
    removes moves to the day's other steps (the daily index never exceeds
    1, so the day's total is reached to within a fraction of a percent).
    """
    ghi_cs = np.asarray(ghi_clear_w_m2, float)
    h_cs = np.bincount(days.day, weights=ghi_cs, minlength=days.n_days) * step_h / 1000.0
    normal = np.asarray(monthly_ghi_kwh_m2_day, float)[days.month - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(h_cs > 0, normal / h_cs, _KD_MEAN_MAX)
    mean = np.clip(mean, _KD_MIN + 0.01, _KD_MEAN_MAX)
    m = (mean - _KD_MIN) / (_KD_MAX - _KD_MIN)
    z = _ar1(rng_daily.standard_normal(days.n_days), float(np.exp(-1.0 / persistence_days)))
    k_unit = betaincinv(m * _KD_CONCENTRATION, (1.0 - m) * _KD_CONCENTRATION, ndtr(z))
    k_day = _KD_MIN + (_KD_MAX - _KD_MIN) * k_unit

    sigma = _INTRADAY_SIGMA_MAX * 4.0 * k_unit * (1.0 - k_unit)
    x = _ar1(rng_intraday.standard_normal(len(ghi_cs)), float(np.exp(-step_h / _INTRADAY_TAU_H)))
    s = sigma[days.day]
    f = np.exp(s * x - 0.5 * s * s)
    target = k_day * np.bincount(days.day, weights=ghi_cs, minlength=days.n_days)
    k = k_day[days.day] * f
    for _ in range(_RENORMALISE_ITERATIONS):
        got = np.bincount(days.day, weights=k * ghi_cs, minlength=days.n_days)
        scale = np.divide(target, got, out=np.ones(days.n_days), where=got > 0)
        k = np.minimum(k * scale[days.day], K_CAP)
    return k, k_day, mean


# --- temperature ---------------------------------------------------------------


def monthly_cycle(year_frac: np.ndarray, monthly_means) -> np.ndarray:
    """A smooth periodic annual cycle whose monthly means equal *monthly_means*.

    Parameters
    ----------
    year_frac : ndarray
        Position in the year, 0..1 (0 = 1 January 00:00).
    monthly_means : sequence of 12 float
        Target mean of each calendar month.

    Notes
    -----
    A periodic cubic spline through 12 nodes at mid-month; the node values
    are solved (a 12 x 12 linear system) so that the spline's mean over each
    month of a 365-day year equals the target, rather than passing through
    the targets (which would bias the months at the extremes of the cycle).
    """
    ends = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]) / 365.0
    mids = 0.5 * (ends[:-1] + ends[1:])
    knots = np.concatenate([mids, [mids[0] + 1.0]])
    unit = np.vstack([np.eye(12), np.eye(12)[:1]])
    basis = CubicSpline(knots, unit, bc_type="periodic")
    grid = (np.arange(365 * 24) + 0.5) / (365 * 24)
    wrap = np.where(grid < mids[0], grid + 1.0, grid)
    month_of = np.searchsorted(ends, grid, side="right") - 1
    b = basis(wrap)  # (n_grid, 12): node j's influence at each grid point
    a = np.vstack([b[month_of == i].mean(axis=0) for i in range(12)])
    nodes = np.linalg.solve(a, np.asarray(monthly_means, float))
    spline = CubicSpline(knots, np.concatenate([nodes, nodes[:1]]), bc_type="periodic")
    yf = np.asarray(year_frac, float)
    return spline(np.where(yf < mids[0], yf + 1.0, yf))


def _diurnal_shape(solar_h: np.ndarray, sunrise_h: np.ndarray, peak_h: float) -> np.ndarray:
    """Two half-cosines: -0.5 at sunrise, +0.5 at *peak_h*, zero daily mean. [-]"""
    h = np.where(solar_h < sunrise_h, solar_h + 24.0, solar_h)
    rise = peak_h - sunrise_h
    fall = 24.0 - rise
    up = -0.5 * np.cos(np.pi * (h - sunrise_h) / rise)
    down = 0.5 * np.cos(np.pi * (h - peak_h) / fall)
    return np.where(h <= peak_h, up, down)


def _sunrise_solar_h(index: pd.DatetimeIndex, latitude_deg: float) -> np.ndarray:
    doy = index.day_of_year.to_numpy()
    decl = pvlib.solarposition.declination_spencer71(doy)
    cos_ws = np.clip(-np.tan(np.radians(latitude_deg)) * np.tan(decl), -1.0, 1.0)
    return 12.0 - np.degrees(np.arccos(cos_ws)) / 15.0


def air_temperature(
    index: pd.DatetimeIndex,
    step_s: float,
    site: SiteConfig,
    config: WeatherConfig,
    days: SolarDays,
    range_factor: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Air temperature per step. [degC]

    Parameters
    ----------
    index : DatetimeIndex
        Interval starts covering whole days.
    step_s : float
        Step length. [s]
    site : SiteConfig
    config : WeatherConfig
        ``monthly_temp_c``, ``monthly_temp_range_k``, ``temp_anomaly_std_k``.
    days : SolarDays
        Grouping of the steps into days.
    range_factor : ndarray
        Daily temperature range relative to the monthly normal, per day. [-]
    rng : Generator
        Stream for the day-to-day anomaly.

    Notes
    -----
    ``T = T_year(t) + R(t) g_d s(t) + a(t)``: the annual cycle ``T_year`` and
    the normal daily range ``R`` are mean-preserving periodic splines through
    the monthly normals (:func:`monthly_cycle`); ``s`` is a two-piece cosine
    in local solar time, -0.5 at sunrise and +0.5 at 14:30, with zero daily
    mean (after the shape of Parton & Logan 1981, simplified; assumption);
    ``g_d`` damps the range on cloudy days; ``a`` is a daily Gaussian AR(1)
    anomaly (autocorrelation time 3 days, standard deviation
    ``temp_anomaly_std_k``) interpolated linearly between solar noons.
    """
    mid = _midpoints(index, step_s)
    t_year = monthly_cycle(days.year_frac, config.monthly_temp_c)
    t_range = monthly_cycle(days.year_frac, config.monthly_temp_range_k)
    shape = _diurnal_shape(
        solar_time_h(mid, site.longitude_deg),
        _sunrise_solar_h(mid, site.latitude_deg),
        _TEMP_MAX_SOLAR_H,
    )
    daily = _ar1(rng.standard_normal(days.n_days), float(np.exp(-1.0 / _TEMP_ANOMALY_TAU_DAYS)))
    t_days = (np.arange(len(index)) + 0.5) * step_s / 86400.0
    anomaly = config.temp_anomaly_std_k * np.interp(t_days, np.arange(days.n_days) + 0.5, daily)
    return t_year + t_range * range_factor[days.day] * shape + anomaly


# --- wind ------------------------------------------------------------------------


def _wind_mean(regime: WindRegime, year_frac: np.ndarray, solar_h: np.ndarray) -> np.ndarray:
    ends = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]) / 365.0
    peak = 0.5 * (ends[regime.seasonal_peak_month - 1] + ends[regime.seasonal_peak_month])
    seasonal = 1.0 + regime.seasonal_amplitude_frac * np.cos(2 * np.pi * (year_frac - peak))
    diurnal = 1.0 + regime.diurnal_amplitude_frac * np.cos(
        2 * np.pi * (solar_h - regime.diurnal_peak_hour) / 24.0
    )
    return regime.mean_speed_m_s * seasonal * diurnal


def wind_speeds(
    regimes: Mapping[str, WindRegime],
    year_frac: np.ndarray,
    solar_h: np.ndarray,
    step_h: float,
    seed: int,
) -> dict[str, np.ndarray]:
    """Wind speed per regime at its reference height. [m/s]

    Parameters
    ----------
    regimes : mapping of str to WindRegime
    year_frac : ndarray
        Position in the year of each step's midpoint, 0..1.
    solar_h : ndarray
        Local solar time of each step's midpoint. [h]
    step_h : float
        Step length. [h]
    seed : int
        Scenario seed; streams ``"weather/wind/synoptic"`` and
        ``"weather/wind/<regime>"``.

    Notes
    -----
    For regime r with lag-one correlation ``phi = exp(-step_h / tau_r)`` and
    synoptic share ``c_r``::

        x_r = sqrt(c_r) AR1_phi(w_synoptic) + sqrt(1 - c_r) AR1_phi(w_r)

    is a stationary unit-variance Gaussian AR(1); two regimes with equal
    persistence and share c are correlated by c.  It is mapped through the
    normal CDF to a Weibull marginal with shape k and scale
    ``mu(t) / Gamma(1 + 1/k)`` (Brown, Katz & Murphy 1984), where
    ``mu(t) = mean (1 + a_s cos(2 pi (year_frac - peak))) (1 + a_d cos(2 pi (h - h_peak) / 24))``
    peaks at the middle of ``seasonal_peak_month`` and at
    ``diurnal_peak_hour`` local solar time; both cosines average to zero, so
    the annual mean is ``mean_speed_m_s``.
    """
    n = len(year_frac)
    synoptic = component_rng(seed, "weather/wind/synoptic").standard_normal(n)
    out = {}
    for name, reg in regimes.items():
        phi = float(np.exp(-step_h / reg.autocorrelation_h))
        own = component_rng(seed, f"weather/wind/{name}").standard_normal(n)
        c = reg.synoptic_correlation
        x = np.sqrt(c) * _ar1(synoptic, phi) + np.sqrt(1.0 - c) * _ar1(own, phi)
        scale = _wind_mean(reg, year_frac, solar_h) / gamma(1.0 + 1.0 / reg.weibull_k)
        # Weibull quantile of u = Phi(x): -ln(1 - u) = -ln Phi(-x), accurate in both tails
        out[name] = scale * (-log_ndtr(-x)) ** (1.0 / reg.weibull_k)
    return out


# --- all together ----------------------------------------------------------------


def synthetic_weather(
    index: pd.DatetimeIndex, step_s: float, site: SiteConfig, config: WeatherConfig, seed: int
) -> Weather:
    """Synthetic weather on *index* (interval starts), seeded.

    Parameters
    ----------
    index : DatetimeIndex
        Interval starts, tz-aware, regular with spacing *step_s*.
    step_s : float
        Step length. [s]
    site : SiteConfig
    config : WeatherConfig
        With ``clear_sky = true`` there are no clouds: GHI, DNI and DHI are
        pvlib's Ineichen clear-sky values and the temperature range is the
        monthly normal every day.
    seed : int
        Scenario seed.

    Returns
    -------
    Weather
        Irradiance [W/m2] (zero at night), temperature [degC], pressure [Pa]
        and wind speed per regime [m/s]; see the module notes for the models.
    """
    step_h = step_s / 3600.0
    ext, off = _extended(index, step_s, site.longitude_deg)
    sl = slice(off, off + len(index))
    days = solar_days(ext, step_s, site.longitude_deg)
    sun = solar_geometry(ext, step_s, site)
    if config.clear_sky:
        ghi, dni, dhi = sun.ghi_clear_w_m2, sun.dni_clear_w_m2, sun.dhi_clear_w_m2
        range_factor = np.ones(days.n_days)
    else:
        k, k_day, k_mean = cloud_index(
            sun.ghi_clear_w_m2,
            days,
            step_h,
            config.monthly_ghi_kwh_m2_day,
            config.cloud_persistence_days,
            component_rng(seed, "weather/cloud/daily"),
            component_rng(seed, "weather/cloud/intraday"),
        )
        ghi = k * sun.ghi_clear_w_m2
        dni, dhi = split_ghi(ghi, sun.apparent_zenith_deg, ext, step_s)
        unit = (k_day - _KD_MIN) / (_KD_MAX - _KD_MIN)
        unit_mean = (k_mean - _KD_MIN) / (_KD_MAX - _KD_MIN)
        range_factor = (_RANGE_BASE + unit) / (_RANGE_BASE + unit_mean)
    temp = air_temperature(
        ext, step_s, site, config, days, range_factor, component_rng(seed, "weather/temperature")
    )
    solar_h = solar_time_h(_midpoints(ext, step_s), site.longitude_deg)
    wind = wind_speeds(config.wind_regimes, days.year_frac, solar_h, step_h, seed)
    return Weather(
        solar=sun[sl],
        ghi_w_m2=ghi[sl].copy(),
        dni_w_m2=dni[sl].copy(),
        dhi_w_m2=dhi[sl].copy(),
        temp_air_c=temp[sl].copy(),
        pressure_pa=np.full(len(index), sun.pressure_pa),
        wind_speed_m_s={name: v[sl].copy() for name, v in wind.items()},
    )
