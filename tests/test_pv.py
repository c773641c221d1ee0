"""PV fleet: physics against pvlib's ModelChain (a clear-sky day and a measured
TMY3 year shipped with pvlib), PVWatts losses, the annual yield in Shanghai,
limits, flexibility, determinism."""

from __future__ import annotations

import calendar
import inspect
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
import pytest
from _exo_helpers import DATA, clear_sky_exogenous, make_context, make_exogenous, reference_day, shanghai_year
from hypothesis import given, settings
from hypothesis import strategies as st
from pvlib.location import Location
from pvlib.modelchain import ModelChain
from pvlib.pvsystem import PVSystem
from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS
from pydantic import ValidationError

from vpp.assets import FleetContext, fleet_type
from vpp.assets.pv import (
    PV_WIND_SHEAR_EXPONENT,
    PVWATTS_DEFAULT_LOSSES_FRAC,
    PVWATTS_LOSS_FIELDS,
    PVFleet,
    PVParams,
    combined_losses_frac,
    pv_ac_power_kw,
)
from vpp.assets.wind import hub_wind_speed_power_law
from vpp.exogenous.config import SHANGHAI_GHI_KWH_M2_DAY, SiteConfig
from vpp.exogenous.series import Exogenous
from vpp.exogenous.weather import solar_geometry
from vpp.flex import CurtailableSource, HorizonGrid
from vpp.timeline import Timeline

# The fleet and ModelChain run the same pvlib functions on the same inputs;
# what is left is the CSV's 10 significant digits.
REFERENCE_ATOL_KW_PER_KWP = 1e-6
NIGHT_ATOL_KW = 1e-12
FLEX_RTOL = 1e-12
FLEX_ATOL_KW = 1e-9
HAND_RTOL = 1e-9
# TMY3 year: the Exogenous takes its solar position from vpp's solar_geometry
# (refraction at the standard pressure of the site's altitude and 12 degC),
# ModelChain from the file's measured pressure and temperature.  Apparent
# zeniths differ by up to 0.06 deg, near the horizon only: a few 1e-4 kW/kWp
# in a sunrise or sunset hour, and 1e-7 of the annual energy.
TMY_HOURLY_ATOL_KW_PER_KWP = 1e-3
TMY_ANNUAL_RTOL = 1e-5
# Published band of the annual specific yield in Shanghai (docs/SOURCES.md).
SHANGHAI_YIELD_BAND_KWH_PER_KWP = (1050.0, 1150.0)
YIELD_SEEDS = range(5)  # five synthetic years

SYSTEMS = pd.read_csv(DATA / "pv_modelchain_systems.csv", comment="#")
N_DAY = 96
# pvlib's names of the PVWatts loss items -> our parameter names
PVLIB_LOSS_NAMES = {f.removesuffix("_loss_frac"): f for f in PVWATTS_LOSS_FIELDS}
TMY3_FILE = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"  # Greensboro NC, ships with pvlib
# pvlib 0.16 reads DatetimeIndex.dayofyear, deprecated in pandas 3 (third-party; our code avoids it)
PVLIB_DOY = "ignore:.*dayofyear is deprecated:DeprecationWarning"


def _params(row) -> PVParams:
    return PVParams(
        p_dc_kwp=row.p_dc_kwp,
        tilt_deg=row.tilt_deg,
        azimuth_deg=row.azimuth_deg,
        gamma_pdc_per_k=row.gamma_pdc_per_k,
        dc_ac_ratio=row.dc_ac_ratio,
        inverter_eta_nom=row.inverter_eta_nom,
        albedo=row.albedo,
        temperature_model=row.temperature_model,
        iam_model="physical",
        wind_regime="onshore",
        **{f: getattr(row, f) for f in PVWATTS_LOSS_FIELDS},
    )


def _varied_params(**extra) -> PVParams:
    return PVParams.model_validate(
        {
            "p_dc_kwp": {"dist": "lognormal", "mean": 300, "std": 200, "low": 5, "high": 3000},
            "tilt_deg": {"dist": "uniform", "low": 0, "high": 40},
            "azimuth_deg": {"dist": "choice", "values": [90, 135, 180, 225, 270]},
            "dc_ac_ratio": {"dist": "uniform", "low": 1.0, "high": 1.6},
            **extra,
        }
    )


@cache
def _day_fleet() -> PVFleet:
    """Five varied systems on the clear-sky day (shared by the property tests)."""
    return PVFleet(make_context(clear_sky_exogenous(), 5, seed=7), _varied_params())


def _available(fleet, steps) -> np.ndarray:
    return np.array([fleet.available_kw(k) for k in steps]).T


@pytest.mark.parametrize("row", list(SYSTEMS.itertuples()), ids=list(SYSTEMS.system))
def test_matches_pvlib_modelchain(row):
    ref = reference_day()
    fleet = PVFleet(make_context(clear_sky_exogenous(), 2), _params(row))
    p = np.array([fleet.step(k, None) for k in range(len(ref))]).T
    expected = ref[f"p_ac_kw_{row.system}"].to_numpy()
    np.testing.assert_allclose(
        p[0], expected, rtol=0, atol=REFERENCE_ATOL_KW_PER_KWP * row.p_dc_kwp
    )
    np.testing.assert_allclose(p[1], p[0], rtol=0, atol=NIGHT_ATOL_KW)


def test_clipping_at_ac_rating():
    row = SYSTEMS.set_index("system").loc["se_clipping"]
    fleet = PVFleet(make_context(clear_sky_exogenous(), 1), _params(row))
    p = _available(fleet, range(N_DAY))[0]
    rating_kw = row.p_dc_kwp / row.dc_ac_ratio
    assert p.max() <= rating_kw * (1 + HAND_RTOL)
    assert np.isclose(p.max(), rating_kw, rtol=HAND_RTOL)  # this system does clip


def test_night_gives_zero():
    exo = clear_sky_exogenous()
    night = np.flatnonzero(exo.solar_zenith_deg > 90)
    assert night.size > 30
    fleet = PVFleet(
        make_context(exo, 50, seed=3),
        _varied_params(tilt_deg={"dist": "uniform", "low": 0, "high": 90}),
    )
    assert np.abs(_available(fleet, night)).max() <= NIGHT_ATOL_KW
    day = np.flatnonzero(exo.solar_zenith_deg < 60)
    assert (_available(fleet, day) > 0).all()


def test_baseline_is_uncurtailed():
    fleet = _day_fleet()
    assert np.isposinf(fleet.baseline_setpoint(40)).all()
    np.testing.assert_allclose(fleet.step(48, None), fleet.available_kw(48), rtol=0, atol=0)


def test_flexibility_from_perfect_forecast_is_block_mean_of_available():
    exo = clear_sky_exogenous(days=2)
    fleet = PVFleet(make_context(exo, 6, seed=11, pad_steps=N_DAY), _varied_params())
    grid = HorizonGrid.build(k0=30, step_h=0.25, fine_steps=4, total_steps=N_DAY, coarse_steps=4)
    (form,) = fleet.flexibility(grid, exo.window(grid.k0, grid.n_steps))
    assert isinstance(form, CurtailableSource)
    assert form.fleet == fleet.name and form.node == fleet.node
    actual = _available(fleet, range(grid.k0, grid.k0 + grid.n_steps))
    expected, j = [], 0
    for n in grid.steps_per_block:
        expected.append(actual[:, j : j + n].mean(axis=1))
        j += n
    np.testing.assert_allclose(
        form.p_max_kw, np.column_stack(expected), rtol=FLEX_RTOL, atol=FLEX_ATOL_KW
    )
    assert (form.p_max_kw >= 0).all()


def test_chunking_does_not_change_results(monkeypatch):
    exo = clear_sky_exogenous(days=2)
    whole = PVFleet(make_context(exo, 4, seed=5), _varied_params())
    monkeypatch.setattr(PVFleet, "cells_per_chunk", 7)  # 1 step per chunk for 4 systems
    small = PVFleet(make_context(exo, 4, seed=5), _varied_params())
    assert small._chunk < whole._chunk
    steps = [150, 3, 95, 96, 191, 40]  # out of order, across chunk and day boundaries
    np.testing.assert_allclose(
        _available(small, steps), _available(whole, steps), rtol=0, atol=NIGHT_ATOL_KW
    )


def test_deterministic_with_seed():
    exo = clear_sky_exogenous()

    def run(seed):
        f = PVFleet(make_context(exo, 20, seed=seed), _varied_params())
        return f.p_dc_kwp, f.tilt_deg, np.array([f.step(k, None) for k in range(N_DAY)])

    a, b, c = run(42), run(42), run(43)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[0], c[0])


def test_identical_systems_are_computed_once():
    fleet = PVFleet(
        make_context(clear_sky_exogenous(), 100),
        _varied_params(tilt_deg=20, azimuth_deg=180, dc_ac_ratio=1.2),
    )
    assert len(fleet._systems) == 1
    p = fleet.available_kw(48)
    np.testing.assert_allclose(p / fleet.p_dc_kwp, p[0] / fleet.p_dc_kwp[0], rtol=HAND_RTOL)


def test_info_and_state():
    fleet = PVFleet(
        make_context(clear_sky_exogenous(), 3), PVParams(p_dc_kwp=600, dc_ac_ratio=1.25)
    )
    assert np.isclose(fleet.info()["p_dc_kwp"], 1800.0, rtol=HAND_RTOL)
    assert np.isclose(fleet.info()["p_rated_kw"], 1440.0, rtol=HAND_RTOL)
    fleet.step(48, np.zeros(3))
    assert np.isclose(fleet.state()["p_available_kw"], fleet.available_kw(48).sum(), rtol=HAND_RTOL)
    assert fleet.state()["p_available_kw"] > 0
    assert set(fleet.state()) == set(PVFleet.state_columns)
    assert PVFleet.role == "source" and PVFleet.green and PVFleet.curtailable


def test_registered_as_pv():
    assert fleet_type("pv") is PVFleet


def test_wind_brought_to_10m_with_one_seventh_law():
    # 5 m/s at 90 m: 5 * (10/90)^(1/7) = 3.652999778 m/s (hand)
    assert np.isclose(hub_wind_speed_power_law(5.0, 90.0, 10.0, PV_WIND_SHEAR_EXPONENT), 3.652999778, rtol=HAND_RTOL)


def test_more_wind_cools_cells_and_raises_output():
    calm = clear_sky_exogenous(wind_10m_m_s=np.zeros(N_DAY))
    windy = clear_sky_exogenous(wind_10m_m_s=np.full(N_DAY, 8.0))
    p_calm = PVFleet(make_context(calm, 1), PVParams(dc_ac_ratio=1.0)).available_kw(48)
    p_windy = PVFleet(make_context(windy, 1), PVParams(dc_ac_ratio=1.0)).available_kw(48)
    assert p_windy[0] > p_calm[0]


def test_unknown_wind_regime_is_rejected():
    exo = make_exogenous(4, wind_speed_m_s={"offshore": 8.0})
    with pytest.raises(ValueError, match="'onshore' is not a wind regime of the weather.*offshore"):
        PVFleet(make_context(exo, 1), PVParams())


@pytest.mark.parametrize(
    "bad",
    [
        {"p_dc_kwp": -1},
        {"tilt_deg": {"dist": "normal", "mean": 20, "std": 5}},  # unbounded support
        {"temperature_model": "on_the_moon"},
        {"losses_frac": 1.5},
        {"soiling_loss_frac": -0.01},
        {"shading_loss_frac": {"dist": "uniform", "low": 0.0, "high": 1.2}},
        {"losses_frac": 0.1, "wiring_loss_frac": 0.01},  # a total and an item
        {"unknown": 1},
    ],
)
def test_bad_params_are_rejected(bad):
    with pytest.raises(ValidationError):
        PVParams.model_validate(bad)


def test_explicit_sapm_coefficients_equal_named_mounting():
    named = PVFleet(
        make_context(clear_sky_exogenous(), 1),
        PVParams(temperature_model="close_mount_glass_glass"),
    )
    # close_mount_glass_glass: a = -2.98, b = -0.0471, deltaT = 1 (King et al. 2004, table 2)
    explicit = PVFleet(
        make_context(clear_sky_exogenous(), 1),
        PVParams(temperature_model={"a": -2.98, "b": -0.0471, "delta_t_k": 1.0}),
    )
    np.testing.assert_allclose(
        _available(named, range(N_DAY)), _available(explicit, range(N_DAY)), rtol=HAND_RTOL
    )


# -- system losses: the PVWatts categories -----------------------------------------
def test_default_losses_are_pvwatts_default_total():
    # Dobos 2014 (PVWatts v5 manual, "System Losses"): the default items total 14.08 %
    assert np.isclose(PVWATTS_DEFAULT_LOSSES_FRAC, 0.1408, atol=5e-5)
    fleet = PVFleet(make_context(clear_sky_exogenous(), 2), PVParams())
    np.testing.assert_allclose(fleet.losses_frac, pvlib.pvsystem.pvwatts_losses() / 100, rtol=HAND_RTOL)


def test_pvlib_loss_items_match_our_parameters():
    assert set(inspect.signature(pvlib.pvsystem.pvwatts_losses).parameters) == set(PVLIB_LOSS_NAMES)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 0.5), min_size=len(PVWATTS_LOSS_FIELDS), max_size=len(PVWATTS_LOSS_FIELDS)))
def test_losses_combine_as_pvwatts(items):
    expected = pvlib.pvsystem.pvwatts_losses(**{k: 100 * v for k, v in zip(PVLIB_LOSS_NAMES, items, strict=True)}) / 100
    assert np.isclose(combined_losses_frac(*items), expected, rtol=HAND_RTOL, atol=1e-15)


def test_a_total_replaces_the_items():
    exo = clear_sky_exogenous()
    only_two = PVFleet(
        make_context(exo, 1),
        PVParams(**{f: 0.0 for f in PVWATTS_LOSS_FIELDS} | {"soiling_loss_frac": 0.05, "wiring_loss_frac": 0.03}),
    )
    assert np.isclose(only_two.losses_frac[0], 0.0785, rtol=HAND_RTOL)  # 1 - 0.95 * 0.97 (hand)
    total = PVFleet(make_context(exo, 1), PVParams(losses_frac=0.0785))
    np.testing.assert_allclose(
        _available(total, range(N_DAY)), _available(only_two, range(N_DAY)), rtol=HAND_RTOL, atol=NIGHT_ATOL_KW
    )
    # items not given keep their PVWatts defaults
    with_defaults = PVFleet(make_context(exo, 1), PVParams(soiling_loss_frac=0.05, wiring_loss_frac=0.03))
    assert with_defaults.losses_frac[0] > only_two.losses_frac[0]


def test_losses_may_vary_per_asset():
    fleet = PVFleet(
        make_context(clear_sky_exogenous(), 50, seed=2),
        PVParams(soiling_loss_frac={"dist": "uniform", "low": 0.01, "high": 0.08}),
    )
    assert np.unique(fleet.losses_frac).size == 50 and len(fleet._systems) == 50
    others = combined_losses_frac(
        *(PVParams.model_fields[f].default for f in PVWATTS_LOSS_FIELDS if f != "soiling_loss_frac")
    )
    soiling = 1 - (1 - fleet.losses_frac) / (1 - others)
    assert soiling.min() >= 0.01 - HAND_RTOL and soiling.max() <= 0.08 + HAND_RTOL


# -- a measured year: TMY3 Greensboro (ships with pvlib) against ModelChain ----------
@cache
def _tmy3() -> tuple[pd.DataFrame, dict]:
    """The TMY3 file on our time convention.

    TMY3 stamps are hour-ending (Wilcox & Marion 2008, NREL/TP-581-43156):
    the irradiance at 13:00 is the mean over 12:00-13:00.  Our step value is
    the mean over the interval that *starts* at its timestamp, so each row
    moves to its stamp minus one hour, and solar position is evaluated at
    the interval midpoint, stamp minus 30 minutes.  Temperature and wind
    (point readings at the stamp) stand in for the interval means.  Months
    come from different years: ``coerce_year`` puts them in one (1990).
    """
    data, meta = pvlib.iotools.read_tmy3(TMY3_FILE, coerce_year=1990)
    data.index = data.index - pd.Timedelta(hours=1)
    return data, meta


def _tmy3_exogenous(data: pd.DataFrame, meta: dict) -> Exogenous:
    site = SiteConfig(latitude_deg=meta["latitude"], longitude_deg=meta["longitude"], altitude_m=meta["altitude"])
    sun = solar_geometry(data.index, 3600, site)  # at the interval midpoints
    zeros = np.zeros(len(data))
    return Exogenous(
        index=data.index,
        step_h=1.0,
        latitude_deg=site.latitude_deg,
        longitude_deg=site.longitude_deg,
        altitude_m=site.altitude_m,
        solar_zenith_deg=sun.zenith_deg,
        solar_apparent_zenith_deg=sun.apparent_zenith_deg,
        solar_azimuth_deg=sun.azimuth_deg,
        dni_extra_w_m2=sun.dni_extra_w_m2,
        ghi_clear_w_m2=sun.ghi_clear_w_m2,
        ghi_w_m2=data["ghi"].to_numpy(float),
        dni_w_m2=data["dni"].to_numpy(float),
        dhi_w_m2=data["dhi"].to_numpy(float),
        temp_air_c=data["temp_air"].to_numpy(float),
        pressure_pa=100.0 * data["pressure"].to_numpy(float),  # TMY3 pressure is in mbar
        # TMY3 wind is measured at 10 m: a regime at 10 m reaches the cell model unchanged
        wind_speed_m_s={"onshore": data["wind_speed"].to_numpy(float)},
        wind_ref_height_m={"onshore": 10.0},
        price_import_cny_per_kwh=zeros,
        price_export_cny_per_kwh=zeros,
        co2_kg_per_kwh=zeros,
    )


def _modelchain_ac_kw(row, data: pd.DataFrame, meta: dict) -> np.ndarray:
    """ModelChain (PVWatts, Hay-Davies, physical IAM, SAPM) on the TMY3 year. [kW]"""
    pdc0_w = row.p_dc_kwp * 1000.0
    system = PVSystem(
        surface_tilt=row.tilt_deg,
        surface_azimuth=row.azimuth_deg,
        albedo=row.albedo,
        module_parameters={"pdc0": pdc0_w, "gamma_pdc": row.gamma_pdc_per_k},
        temperature_model_parameters=TEMPERATURE_MODEL_PARAMETERS["sapm"][row.temperature_model],
        # pvlib's inverter pdc0 is the DC input limit: P_ac0 = eta_nom * pdc0
        inverter_parameters={
            "pdc0": pdc0_w / row.dc_ac_ratio / row.inverter_eta_nom,
            "eta_inv_nom": row.inverter_eta_nom,
        },
        losses_parameters={k: 100.0 * getattr(row, f) for k, f in PVLIB_LOSS_NAMES.items()},
    )
    location = Location(meta["latitude"], meta["longitude"], tz=int(meta["TZ"]), altitude=meta["altitude"])
    mc = ModelChain(
        system,
        location,
        transposition_model="haydavies",
        dc_model="pvwatts",
        ac_model="pvwatts",
        aoi_model="physical",
        spectral_model="no_loss",
        temperature_model="sapm",
        losses_model="pvwatts",
    )
    weather = pd.DataFrame(
        {
            "ghi": data["ghi"].to_numpy(float),
            "dni": data["dni"].to_numpy(float),
            "dhi": data["dhi"].to_numpy(float),
            "temp_air": data["temp_air"].to_numpy(float),
            "wind_speed": data["wind_speed"].to_numpy(float),
            "pressure": 100.0 * data["pressure"].to_numpy(float),
        },
        index=data.index + pd.Timedelta(minutes=30),  # solar position at interval midpoints
    )
    mc.run_model(weather)
    return mc.results.ac.to_numpy(float) / 1000.0


@pytest.mark.filterwarnings(PVLIB_DOY)
@pytest.mark.parametrize("row", list(SYSTEMS.itertuples()), ids=list(SYSTEMS.system))
def test_measured_tmy3_year_matches_pvlib_modelchain(row):
    data, meta = _tmy3()
    exo = _tmy3_exogenous(data, meta)
    timeline = Timeline(exo.index[0], exo.index[-1] + pd.Timedelta(hours=1), 3600)
    fleet = PVFleet(FleetContext("pv", "n1", 1, np.random.default_rng(0), timeline, exo), _params(row))
    p_kw = np.array([fleet.step(k, None)[0] for k in range(len(exo))])
    ref_kw = _modelchain_ac_kw(row, data, meta)
    np.testing.assert_allclose(p_kw, ref_kw, rtol=0, atol=TMY_HOURLY_ATOL_KW_PER_KWP * row.p_dc_kwp)
    assert np.isclose(p_kw.sum(), ref_kw.sum(), rtol=TMY_ANNUAL_RTOL)


# -- the annual yield in Shanghai with the default synthetic weather ------------------
@cache
def _default_yield(seed: int) -> tuple[float, float]:
    """Specific yield [kWh/kWp] of the default system and the year's irradiation [kWh/m2]."""
    timeline, exo = shanghai_year(seed)
    fleet = PVFleet(FleetContext("pv", "n1", 1, np.random.default_rng(seed), timeline, exo), PVParams())
    n = timeline.n_steps
    e_kwh = sum(fleet.step(k, None)[0] for k in range(n)) * timeline.dt_h
    return e_kwh / fleet.p_dc_kwp[0], float(exo.ghi_w_m2[:n].sum()) * timeline.dt_h / 1000.0


def test_annual_yield_in_shanghai_lands_in_the_published_band():
    low, high = SHANGHAI_YIELD_BAND_KWH_PER_KWP
    yields, irradiation = np.array([_default_yield(s) for s in YIELD_SEEDS]).T
    # averaged over synthetic years, the default rooftop system lands in the band ...
    assert low <= yields.mean() <= high
    # ... and so does every year scaled to the climatological irradiation (single
    # years vary with their irradiation, by about 3 % from one seed to the next)
    normal_kwh_m2 = sum(
        g * calendar.monthrange(2024, m + 1)[1] for m, g in enumerate(SHANGHAI_GHI_KWH_M2_DAY)
    )
    per_normal_year = yields * normal_kwh_m2 / irradiation
    assert (low <= per_normal_year).all() and (per_normal_year <= high).all()


def _sky(dni_w_m2: float):
    """One step at solar noon in July at Lingang: the sun at ~7.5 deg zenith south; GHI from the parts."""
    zen, az = 20.0, 180.0
    dhi = 120.0
    ghi = dni_w_m2 * np.cos(np.radians(zen)) + dhi
    return dict(solar_apparent_zenith_deg=zen, solar_azimuth_deg=az, dni_extra_w_m2=1320.0, ghi_w_m2=ghi,
                dni_w_m2=dni_w_m2, dhi_w_m2=dhi, temp_air_c=25.0, wind_speed_10m_m_s=2.0)


@pytest.mark.parametrize("tilt", [20.0, 45.0])
def test_transposition_models_agree_under_an_overcast_sky_and_differ_under_sun(tilt):
    """With no beam (DNI 0) Hay-Davies' anisotropy index is 0 and it is the isotropic sky:
    POA diffuse = DHI (1 + cos tilt) / 2 for both.  With a bright sun in front of the array
    (sun 20 deg from zenith due south, so cos(aoi) / cos(zenith) = 1.06 and 0.96 exceed
    (1 + cos tilt) / 2 = 0.97 and 0.85) the circumsolar part makes Hay-Davies and Perez
    exceed the isotropic sky."""
    def p(model, dni):
        return float(pv_ac_power_kw(1.0, tilt, 180.0, **_sky(dni), transposition_model=model, iam_model="no_loss"))

    assert p("haydavies", 0.0) == pytest.approx(p("isotropic", 0.0), rel=1e-12)
    assert p("haydavies", 800.0) > p("isotropic", 800.0)
    assert p("perez", 800.0) > p("isotropic", 800.0)
    assert p("perez", 800.0) == pytest.approx(p("haydavies", 800.0), rel=0.1)
    with pytest.raises(ValidationError):
        PVParams(transposition_model="klucher")


def test_the_fleet_uses_its_transposition_model():
    exo = clear_sky_exogenous()
    runs = {m: np.array([PVFleet(make_context(exo, 1, seed=1), PVParams(tilt_deg=40.0, transposition_model=m,
                                                                        wind_regime="onshore")).step(k, None)
                         for k in range(N_DAY)]).sum() for m in ("haydavies", "isotropic")}
    # a steep array under July's high sun sees the circumsolar sky at a poor angle:
    # Hay-Davies gives less than the isotropic sky over the day, but not the same
    assert abs(runs["haydavies"] / runs["isotropic"] - 1.0) > 0.005
