"""PV fleet: physics against pvlib's ModelChain, limits, flexibility, determinism."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from _exo_helpers import DATA, clear_sky_exogenous, make_context, make_exogenous, reference_day
from pydantic import ValidationError

from vpp.assets import fleet_type
from vpp.assets.pv import PV_WIND_SHEAR_EXPONENT, PVFleet, PVParams
from vpp.assets.wind import hub_wind_speed_power_law
from vpp.flex import CurtailableSource, HorizonGrid

# The fleet and ModelChain run the same pvlib functions on the same inputs;
# what is left is the CSV's 10 significant digits.
REFERENCE_ATOL_KW_PER_KWP = 1e-6
NIGHT_ATOL_KW = 1e-12
FLEX_RTOL = 1e-12
FLEX_ATOL_KW = 1e-9
HAND_RTOL = 1e-9

SYSTEMS = pd.read_csv(DATA / "pv_modelchain_systems.csv", comment="#")
N_DAY = 96


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
        losses_frac=row.losses_frac,
        iam_model="physical",
        wind_regime="onshore",
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
    with pytest.raises(ValueError, match="wind_regime 'onshore' is not in the weather.*offshore"):
        PVFleet(make_context(exo, 1), PVParams())


@pytest.mark.parametrize(
    "bad",
    [
        {"p_dc_kwp": -1},
        {"tilt_deg": {"dist": "normal", "mean": 20, "std": 5}},  # unbounded support
        {"temperature_model": "on_the_moon"},
        {"losses_frac": 1.5},
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
