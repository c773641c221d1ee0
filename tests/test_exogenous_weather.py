"""Synthetic weather: clear sky against pvlib, cloud/temperature/wind statistics, determinism."""

import numpy as np
import pandas as pd
import pvlib
import pytest
from scipy.special import gamma

from vpp.exogenous import build_exogenous
from vpp.exogenous.config import SiteConfig, WeatherConfig, WindRegime
from vpp.exogenous.weather import K_CAP, monthly_cycle, synthetic_weather, wind_speeds
from vpp.scenario import scenario_from_dict

# pvlib 0.16 reads DatetimeIndex.dayofyear, deprecated in pandas 3 (third-party; our code avoids it)
PVLIB_DOY = "ignore:.*dayofyear is deprecated:DeprecationWarning"

IRRADIANCE_TOL_W_M2 = 1e-6  # same model evaluated twice: round-off only
CLOSURE_TOL_W_M2 = 1e-6  # GHI = DNI cos(z) + DHI
MONTHLY_GHI_REL_TOL = 0.05  # 40 Julys: standard error of the mean ~1.3 %, so ~4 sigma
TEMP_MEAN_TOL_K = 0.05  # deterministic part (no anomaly): spline mean-preservation, sampling
TEMP_MEAN_STOCHASTIC_TOL_K = 0.4  # 40 Julys with the anomaly: standard error ~0.065 K, so ~6 sigma
WIND_MEAN_REL_TOL = 0.03  # 20 years hourly, tau 10 h: standard error ~0.6 %
CALM_FRACTION_TOL = 0.02  # standard error ~0.004
PERSISTENCE_TOL = 0.1  # lag-1 correlation of the daily index, 3 years: standard error ~0.03

SITE = SiteConfig()
NODES = [{"name": "n", "import_limit_kw": 1.0, "export_limit_kw": 1.0}]
FLEETS = [{"name": "f", "type": "any", "node": "n", "count": 1}]


def make_scenario(start, end, **sections):
    data = {
        "name": "t",
        "time": {"start": start, "end": end},
        "nodes": NODES,
        "fleets": FLEETS,
        **sections,
    }
    return scenario_from_dict(data, "test.toml")


@pytest.fixture(scope="module")
def year():
    """One default year at 15 min (built once for the module)."""
    return build_exogenous(make_scenario("2024-01-01T00:00:00", "2025-01-01T00:00:00", seed=1))


@pytest.fixture(scope="module")
def julys():
    """40 simulated Julys (different seeds) at 15 min."""
    idx = pd.date_range("2023-07-01", periods=96 * 31, freq="15min", tz="Asia/Shanghai")
    return [synthetic_weather(idx, 900, SITE, WeatherConfig(), seed) for seed in range(40)]


@pytest.mark.filterwarnings(PVLIB_DOY)
def test_clear_sky_equals_pvlib_location_get_clearsky():
    sc = make_scenario("2024-07-10T00:00:00", "2024-07-11T00:00:00", weather={"clear_sky": True})
    ex = build_exogenous(sc)
    mid = ex.index + pd.Timedelta(minutes=7.5)
    loc = pvlib.location.Location(
        SITE.latitude_deg, SITE.longitude_deg, "Asia/Shanghai", SITE.altitude_m
    )
    ref = loc.get_clearsky(mid)
    np.testing.assert_allclose(ex.ghi_w_m2, ref["ghi"], atol=IRRADIANCE_TOL_W_M2)
    np.testing.assert_allclose(ex.dni_w_m2, ref["dni"], atol=IRRADIANCE_TOL_W_M2)
    np.testing.assert_allclose(ex.dhi_w_m2, ref["dhi"], atol=IRRADIANCE_TOL_W_M2)
    np.testing.assert_allclose(ex.ghi_clear_w_m2, ref["ghi"], atol=IRRADIANCE_TOL_W_M2)
    sp = loc.get_solarposition(mid)
    np.testing.assert_allclose(ex.solar_apparent_zenith_deg, sp["apparent_zenith"], atol=1e-9)
    np.testing.assert_allclose(ex.solar_azimuth_deg, sp["azimuth"], atol=1e-9)
    assert ref["ghi"].max() > 900  # a real July day, not an all-night window
    np.testing.assert_allclose(ex.pressure_pa, pvlib.atmosphere.alt2pres(SITE.altitude_m))


def test_cloudy_irradiance_is_physical(year):
    ghi, cs = year.ghi_w_m2, year.ghi_clear_w_m2
    cosz = np.cos(np.radians(year.solar_apparent_zenith_deg))
    assert (ghi >= 0).all() and (year.dni_w_m2 >= 0).all() and (year.dhi_w_m2 >= 0).all()
    assert (ghi <= K_CAP * cs + CLOSURE_TOL_W_M2).all()  # cap: 1.2 x clear-sky (cloud enhancement)
    night = year.solar_apparent_zenith_deg >= 90
    assert night.sum() > 10_000
    assert (ghi[night] == 0).all() and (year.dni_w_m2[night] == 0).all()
    np.testing.assert_allclose(year.dni_w_m2 * cosz + year.dhi_w_m2, ghi, atol=CLOSURE_TOL_W_M2)


def test_annual_ghi_is_shanghai_like(year):
    n = len(year) - 96  # without the one-day dispatch padding
    annual_kwh_m2 = year.ghi_w_m2[:n].sum() * 0.25 / 1000
    normals = np.array(WeatherConfig().monthly_ghi_kwh_m2_day)
    days = np.array([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    # one year's draw: inter-annual standard deviation ~45 kWh/m2 (~3.4 %); allow 4 sigma
    assert annual_kwh_m2 == pytest.approx((normals * days).sum(), rel=0.14)


def test_mean_daily_ghi_matches_the_monthly_normal(julys):
    daily = np.mean([w.ghi_w_m2.sum() * 0.25 / 1000 / 31 for w in julys])
    assert daily == pytest.approx(
        WeatherConfig().monthly_ghi_kwh_m2_day[6], rel=MONTHLY_GHI_REL_TOL
    )


def test_intraday_variability_is_largest_on_partly_cloudy_days():
    idx = pd.date_range("2023-01-01", periods=24 * 365 * 2, freq="1h", tz="Asia/Shanghai")
    w = synthetic_weather(idx, 3600, SITE, WeatherConfig(), 5)
    k_day = w.ghi_w_m2.reshape(-1, 24).sum(1) / w.solar.ghi_clear_w_m2.reshape(-1, 24).sum(1)
    day = w.solar.apparent_zenith_deg < 70
    k = np.divide(w.ghi_w_m2, w.solar.ghi_clear_w_m2, out=np.full(len(idx), np.nan), where=day)
    spread = np.nanstd(k.reshape(-1, 24), axis=1)
    partly = spread[(k_day > 0.4) & (k_day < 0.7)].mean()
    assert partly > 2 * spread[k_day > 0.9].mean()
    assert partly > 2 * spread[k_day < 0.2].mean()


@pytest.mark.parametrize("persistence_days", [0.5, 1.5, 4.0])
def test_daily_index_persistence(persistence_days):
    idx = pd.date_range("2023-01-01", periods=24 * 365 * 3, freq="1h", tz="Asia/Shanghai")
    w = synthetic_weather(
        idx, 3600, SITE, WeatherConfig(cloud_persistence_days=persistence_days), 3
    )
    k_day = w.ghi_w_m2.reshape(-1, 24).sum(1) / w.solar.ghi_clear_w_m2.reshape(-1, 24).sum(1)
    lag1 = np.corrcoef(k_day[:-1], k_day[1:])[0, 1]
    # Gaussian AR(1) lag-1 correlation exp(-1/tau); the Beta copula keeps it approximately
    assert lag1 == pytest.approx(np.exp(-1 / persistence_days), abs=PERSISTENCE_TOL)


def test_temperature_monthly_mean_and_diurnal_cycle(julys):
    idx = pd.date_range("2023-07-01", periods=96 * 31, freq="15min", tz="Asia/Shanghai")
    normal = WeatherConfig().monthly_temp_c[6]
    calm = synthetic_weather(
        idx, 900, SITE, WeatherConfig(temp_anomaly_std_k=0.0, clear_sky=True), 0
    )
    assert calm.temp_air_c.mean() == pytest.approx(normal, abs=TEMP_MEAN_TOL_K)
    profile = calm.temp_air_c.reshape(31, 96).mean(axis=0)
    hour = np.arange(96) / 4 + 0.125
    assert 13.5 <= hour[np.argmax(profile)] <= 15.5  # maximum about 14-15 h
    assert 4.0 <= hour[np.argmin(profile)] <= 6.0  # minimum near sunrise (~05:00 in July)
    # on clear days the range is the monthly normal range
    assert profile.max() - profile.min() == pytest.approx(
        WeatherConfig().monthly_temp_range_k[6], abs=0.3
    )
    stochastic = np.mean([w.temp_air_c.mean() for w in julys])
    assert stochastic == pytest.approx(normal, abs=TEMP_MEAN_STOCHASTIC_TOL_K)


def test_cloudy_days_have_a_smaller_temperature_range():
    idx = pd.date_range("2023-04-01", periods=24 * 365, freq="1h", tz="Asia/Shanghai")
    w = synthetic_weather(idx, 3600, SITE, WeatherConfig(temp_anomaly_std_k=0.0), 9)
    k_day = w.ghi_w_m2.reshape(-1, 24).sum(1) / w.solar.ghi_clear_w_m2.reshape(-1, 24).sum(1)
    t = w.temp_air_c.reshape(-1, 24)
    dtr = t.max(1) - t.min(1)
    assert dtr[k_day > 0.8].mean() > 1.5 * dtr[k_day < 0.3].mean()


@pytest.mark.parametrize("means", [WeatherConfig().monthly_temp_c, (0.0,) * 11 + (12.0,)])
def test_monthly_cycle_preserves_monthly_means(means):
    ends = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    t = (np.arange(365 * 96) + 0.5) / (365 * 96)
    y = monthly_cycle(t, means)
    day = np.floor(t * 365)
    got = [y[(day >= ends[i]) & (day < ends[i + 1])].mean() for i in range(12)]
    np.testing.assert_allclose(got, means, atol=1e-3)


def _hourly_years(n_years):
    t_h = np.arange(24 * 365 * n_years) + 0.5
    return np.mod(t_h / (24 * 365), 1.0), np.mod(t_h, 24.0)


def test_wind_is_weibull_with_the_configured_mean_and_calms():
    year_frac, hour = _hourly_years(20)
    reg = WindRegime(
        mean_speed_m_s=6.0,
        ref_height_m=90,
        weibull_k=2.0,
        autocorrelation_h=10.0,
        diurnal_amplitude_frac=0.0,
        seasonal_amplitude_frac=0.0,
    )
    v = wind_speeds({"site": reg}, year_frac, hour, 1.0, seed=11)["site"]
    assert v.mean() == pytest.approx(6.0, rel=WIND_MEAN_REL_TOL)
    scale = 6.0 / gamma(1 + 1 / 2.0)
    for calm in (2.0, 3.0, 4.0):
        assert (v < calm).mean() == pytest.approx(
            1 - np.exp(-((calm / scale) ** 2.0)), abs=CALM_FRACTION_TOL
        )
    assert (v >= 0).all()


def test_wind_annual_mean_survives_seasonal_and_diurnal_cycles():
    year_frac, hour = _hourly_years(20)
    reg = WindRegime(
        mean_speed_m_s=8.4,
        ref_height_m=90,
        weibull_k=2.2,
        seasonal_amplitude_frac=0.3,
        seasonal_peak_month=1,
        diurnal_amplitude_frac=0.2,
        diurnal_peak_hour=15,
    )
    v = wind_speeds({"offshore": reg}, year_frac, hour, 1.0, seed=2)["offshore"]
    assert v.mean() == pytest.approx(8.4, rel=WIND_MEAN_REL_TOL)
    january, july = v[year_frac < 31 / 365], v[(year_frac > 181 / 365) & (year_frac < 212 / 365)]
    assert january.mean() > 1.3 * july.mean()  # 1.3 vs 0.7 of the mean, by construction
    assert v[np.floor(hour) == 15].mean() > 1.25 * v[np.floor(hour) == 3].mean()  # 1.2 vs 0.8


def test_synoptic_component_correlates_regimes():
    year_frac, hour = _hourly_years(3)
    common = {"mean_speed_m_s": 7.0, "ref_height_m": 90, "autocorrelation_h": 10.0}
    v = wind_speeds(
        {
            "a": WindRegime(**common, synoptic_correlation=0.9),
            "b": WindRegime(**common, synoptic_correlation=0.9),
            "c": WindRegime(**common, synoptic_correlation=0.0),
        },
        year_frac,
        hour,
        1.0,
        seed=4,
    )
    assert np.corrcoef(v["a"], v["b"])[0, 1] > 0.75
    assert abs(np.corrcoef(v["a"], v["c"])[0, 1]) < 0.1


def test_same_seed_same_weather_other_seed_other_weather():
    sc = make_scenario("2024-03-01T00:00:00", "2024-03-04T00:00:00", seed=7)
    a, b = build_exogenous(sc).to_frame(), build_exogenous(sc).to_frame()
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    c = build_exogenous(sc.model_copy(update={"seed": 8})).to_frame()
    for col in ("ghi_w_m2", "temp_air_c", "wind_speed_offshore_m_s", "wind_speed_onshore_m_s"):
        assert not np.allclose(a[col], c[col])
    pd.testing.assert_series_equal(a["ghi_clear_w_m2"], c["ghi_clear_w_m2"], check_exact=True)


def test_adding_a_wind_regime_changes_no_other_series():
    base = make_scenario("2024-03-01T00:00:00", "2024-03-03T00:00:00", seed=3)
    regimes = {
        **base.weather.wind_regimes,
        "aaa_inland": WindRegime(mean_speed_m_s=4.0, ref_height_m=10.0),
    }
    more = base.model_copy(
        update={"weather": base.weather.model_copy(update={"wind_regimes": regimes})}
    )
    a, b = build_exogenous(base).to_frame(), build_exogenous(more).to_frame()
    assert "wind_speed_aaa_inland_m_s" in b
    pd.testing.assert_frame_equal(a, b[a.columns], check_exact=True)


def test_extending_the_period_keeps_the_earlier_weather():
    short = build_exogenous(
        make_scenario("2024-05-01T00:00:00", "2024-05-03T00:00:00", seed=5)
    ).to_frame()
    long = build_exogenous(
        make_scenario("2024-05-01T00:00:00", "2024-05-09T00:00:00", seed=5)
    ).to_frame()
    pd.testing.assert_frame_equal(short, long.iloc[: len(short)], check_exact=True)


def test_starting_mid_day_is_supported():
    sc = make_scenario("2024-06-01T13:45:00", "2024-06-02T06:00:00", seed=2)
    ex = build_exogenous(sc)
    assert ex.index[0] == pd.Timestamp("2024-06-01 13:45", tz="Asia/Shanghai")
    assert len(ex) == sc.timeline().n_total
    assert np.isfinite(ex.to_frame().to_numpy()).all()


def test_a_fixed_linke_turbidity_sets_the_clear_sky():
    """Ineichen-Perez: a clearer atmosphere (lower Linke turbidity) gives more clear-sky
    irradiance; a fixed value replaces the monthly climatology, as pvlib's ineichen with it."""
    import numpy as np
    import pandas as pd
    import pvlib

    from vpp.exogenous.config import SiteConfig
    from vpp.exogenous.weather import solar_geometry

    index = pd.date_range("2024-07-22", periods=96, freq="15min", tz="Asia/Shanghai")
    clear, hazy = (solar_geometry(index, 900.0, SiteConfig(linke_turbidity=t)) for t in (2.0, 6.0))
    noon = 48
    assert clear.ghi_clear_w_m2[noon] > hazy.ghi_clear_w_m2[noon] > 0
    site = SiteConfig(linke_turbidity=3.0)
    sky = solar_geometry(index, 900.0, site)
    with np.errstate(divide="ignore", invalid="ignore"):               # night: air mass undefined
        am = pvlib.atmosphere.get_absolute_airmass(
            pvlib.atmosphere.get_relative_airmass(sky.apparent_zenith_deg), pvlib.atmosphere.alt2pres(site.altitude_m))
        ref = pvlib.clearsky.ineichen(sky.apparent_zenith_deg, am, 3.0, altitude=site.altitude_m,
                                      dni_extra=sky.dni_extra_w_m2)
    np.testing.assert_allclose(sky.ghi_clear_w_m2, ref["ghi"], rtol=1e-12, atol=1e-9)
    default = solar_geometry(index, 900.0, SiteConfig())
    assert not np.allclose(default.ghi_clear_w_m2, sky.ghi_clear_w_m2)
