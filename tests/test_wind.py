"""Wind fleet: shear, density, power curves and losses against hand values; the
annual capacity factor offshore against Donghai Bridge; limits; flexibility; outages."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _exo_helpers import make_context, make_exogenous, shanghai_year
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import vpp
from vpp.assets import FleetContext, fleet_type
from vpp.assets.wind import (
    TURBINES,
    WIND_LOSS_FIELDS,
    WindFleet,
    WindParams,
    air_density_at_height,
    combined_loss_frac,
    density_corrected_speed,
    hub_wind_speed_log_law,
    hub_wind_speed_power_law,
    power_curve,
    rescaled_power_curve,
    turbine_power_kw,
)
from vpp.flex import CurtailableSource, HorizonGrid

HAND_RTOL = 1e-8  # hand values below are given to 10 significant digits
ISA_RTOL = 2e-4  # ISA table densities are printed to 4-5 digits
FLEX_RTOL = 1e-12
FLEX_ATOL_KW = 1e-9
AVAILABILITY_ATOL = 0.005  # sampling error of the outage share (about 1,000 cycles)
LOG_POWER_RTOL = 5e-3  # the power law with the log law's local exponent, across a rotor-sized span
# Donghai Bridge: 267 GWh/yr from 102 MW, capacity factor 29.9 % (docs/SOURCES.md);
# single synthetic years scatter by about +-2.5 points, the mean of five by about 1.
DONGHAI_CF_BAND = (0.27, 0.33)
CF_SEEDS = range(5)  # five synthetic years

NREL5_V, NREL5_P = power_curve("nrel_5mw_offshore")
NO_LOSSES = {f: 0.0 for f in WIND_LOSS_FIELDS} | {"availability_frac": 1.0}
WIND_TOML = Path(__file__).resolve().parents[1] / "scenarios" / "wind.toml"


# -- physics functions against hand-computed values ----------------------------
def test_power_law_shear():
    # 8 m/s at 90 m to 110 m, alpha 0.14: 8 (110/90)^0.14 = 8.227938021
    assert np.isclose(hub_wind_speed_power_law(8.0, 90.0, 110.0, 0.14), 8.227938021, rtol=HAND_RTOL)
    # same height: unchanged
    assert np.isclose(hub_wind_speed_power_law(8.0, 90.0, 90.0, 0.14), 8.0, rtol=HAND_RTOL)


def test_log_law_shear():
    # 8 m/s at 90 m to 110 m, z0 = 0.03 m: 8 ln(110/0.03) / ln(90/0.03) = 8.200511099
    assert np.isclose(hub_wind_speed_log_law(8.0, 90.0, 110.0, 0.03), 8.200511099, rtol=HAND_RTOL)


def test_log_law_is_a_power_law_with_its_own_exponent():
    # 8 m/s at 90 m to 150 m over open sea (z0 = 0.0002 m): the log law gives
    # 8 ln(150/z0) / ln(90/z0) = 8.313943619 m/s, which the power law matches with
    # alpha = ln(1.039242952) / ln(150/90) = 0.07535353732 (hand)
    assert np.isclose(hub_wind_speed_log_law(8.0, 90.0, 150.0, 0.0002), 8.313943619, rtol=HAND_RTOL)
    assert np.isclose(hub_wind_speed_power_law(8.0, 90.0, 150.0, 0.07535353732), 8.313943619, rtol=HAND_RTOL)


@pytest.mark.parametrize("z0", [0.0002, 0.03, 0.3])
def test_log_law_local_shear_exponent(z0):
    # d ln v / d ln z = 1 / ln(z / z0) for the log law (Manwell et al. 2009, sec. 2.3.3):
    # the power law with that exponent at the geometric mean height agrees across 80-120 m
    h_ref, hub = 80.0, 120.0
    alpha = 1.0 / np.log(np.sqrt(h_ref * hub) / z0)
    v_log = hub_wind_speed_log_law(7.0, h_ref, hub, z0)
    assert np.isclose(hub_wind_speed_power_law(7.0, h_ref, hub, alpha), v_log, rtol=LOG_POWER_RTOL)


@pytest.mark.parametrize(
    ("height_m", "rho_isa"),
    [
        (0.0, 1.2250),  # ISO 2533 / US Standard Atmosphere 1976, sea level
        (1000.0, 1.1117),  # same tables, 1,000 m
    ],
)
def test_air_density_matches_standard_atmosphere(height_m, rho_isa):
    assert np.isclose(air_density_at_height(15.0, 101_325.0, height_m), rho_isa, rtol=ISA_RTOL)


def test_density_is_lower_when_hot():
    assert air_density_at_height(35.0, 100_500.0, 90.0) < air_density_at_height(
        0.0, 100_500.0, 90.0
    )


def test_iec_density_correction():
    # 10 m/s at 1.1 kg/m3: 10 (1.1 / 1.225)^(1/3) = 9.647590595
    assert np.isclose(density_corrected_speed(10.0, 1.1), 9.647590595, rtol=HAND_RTOL)


def test_power_curve_linear_interpolation():
    # NREL 5 MW table: 7.4 m/s -> 1403.26 kW, 7.5 m/s -> 1460.70 kW; midway 1431.98 kW
    assert np.isclose(turbine_power_kw(7.45, 1.225, NREL5_V, NREL5_P), 1431.98, rtol=HAND_RTOL)
    # exactly on a table point
    assert np.isclose(turbine_power_kw(9.0, 1.225, NREL5_V, NREL5_P), 2518.55, rtol=HAND_RTOL)


@pytest.mark.parametrize(
    ("v", "rho", "expected_kw"),
    [
        (2.99, 1.225, 0.0),  # below cut-in
        (3.0, 1.225, 40.52),  # cut-in: first table point
        (3.05, 1.10, 0.0),  # light air: v_eq = 2.945 m/s is below cut-in
        (25.0, 1.225, 5000.04),  # last table point still runs
        (25.01, 1.225, 0.0),  # cut-out
        (
            24.9,
            1.35,
            5000.04,
        ),  # dense air: v_eq = 25.72 m/s beyond the table, actual speed below cut-out
        (25.5, 1.10, 0.0),  # cut-out on the actual speed although v_eq = 24.6 m/s is tabulated
        (0.0, 1.225, 0.0),
    ],
)
def test_cut_in_and_cut_out(v, rho, expected_kw):
    assert np.isclose(
        turbine_power_kw(v, rho, NREL5_V, NREL5_P), expected_kw, rtol=HAND_RTOL, atol=0
    )


@pytest.mark.parametrize("name", sorted(TURBINES))
def test_shipped_power_curves(name):
    v, p = power_curve(name)
    assert (np.diff(v) > 0).all() and (p >= 0).all()
    assert np.isclose(p.max(), TURBINES[name].rated_kw, rtol=1e-3)
    assert 2.5 <= v[0] <= 3.5 and 22.0 <= v[-1] <= 25.0  # cut-in and cut-out of the sources


@pytest.mark.parametrize(
    ("name", "v", "expected_kw"),
    [
        ("iea_15mw_offshore", 8.0, 6481.116995),  # table point (Gaertner et al. 2020)
        ("iea_15mw_offshore", 12.99999949, 14994.76256),
        ("nrel_2.3mw_onshore", 8.0, 1250.56),  # table point (Stehly et al. 2018)
        ("nrel_2.3mw_onshore", 7.6, 1068.326),  # 1024.59 + 0.4 (1133.93 - 1024.59)
        ("nrel_2.3mw_onshore", 3.0, 0.0),  # cut-in at 3 m/s: the table's first row
        ("nrel_2.3mw_onshore", 24.75, 2320.0),  # last row before the 25 m/s cut-out
        ("nrel_2.3mw_onshore", 24.8, 0.0),
    ],
)
def test_new_turbines_hand_values(name, v, expected_kw):
    cv, cp = power_curve(name)
    assert np.isclose(turbine_power_kw(v, 1.225, cv, cp), expected_kw, rtol=HAND_RTOL, atol=0)


def test_specific_power():
    # NREL 5 MW: 5e6 W / (pi 63^2 m2) = 400.99507 W/m2; SL3000/90 size: 3e6 / (pi 45^2) = 471.57020
    assert np.isclose(TURBINES["nrel_5mw_offshore"].specific_power_w_m2, 400.99507, rtol=1e-7)
    assert np.isclose(TURBINES["generic_3mw_offshore"].specific_power_w_m2, 471.57020, rtol=1e-7)


def test_rescaled_curve_keeps_the_power_coefficient():
    v, p = power_curve("generic_3mw_offshore")
    # below the NREL 5 MW's rating: power scales with the swept area, 1771.17 (90/126)^2 at 8 m/s
    assert np.isclose(turbine_power_kw(8.0, 1.225, v, p), 903.6581633, rtol=HAND_RTOL)
    # beyond 11.3 m/s (the 5 MW's last point below rating) the cubic law continues:
    # 4929.93 (90/126)^2 (11.6/11.3)^3 = 2720.967276 kW
    assert np.isclose(turbine_power_kw(11.6, 1.225, v, p), 2720.967276, rtol=HAND_RTOL)
    # rated where 2515.270408 (v/11.3)^3 = 3000: v = 11.98369189 m/s; cut-in, cut-out unchanged
    knee = v[np.argmax(p >= 3000.0)]
    assert np.isclose(knee, 11.98369189, rtol=HAND_RTOL)
    assert np.isclose(v[0], NREL5_V[0]) and np.isclose(v[-1], NREL5_V[-1])
    # the same rotor and rating give back the reference: exactly below rating, and
    # within the table's own ripple above it (4999.96 to 5000.92 kW)
    v_same, p_same = rescaled_power_curve(NREL5_V, NREL5_P, 126.0, 126.0, NREL5_P.max())
    back = np.interp(NREL5_V, v_same, p_same)
    region2 = NREL5_V <= 11.3
    np.testing.assert_allclose(back[region2], NREL5_P[region2], rtol=HAND_RTOL)
    np.testing.assert_allclose(back[~region2], NREL5_P[~region2], rtol=2e-4)


def test_rescaled_curve_rated_inside_the_table():
    # a big rotor on a small rating: rated on a straight segment of the table
    v, p = rescaled_power_curve([3.0, 5.0, 7.0, 9.0], [0.0, 100.0, 300.0, 500.0], 100.0, 200.0, 1000.0)
    # 4 x table: 0, 400, 1200 at 3, 5, 7 m/s; 1000 kW is reached at 5 + 2 * 600/800 = 6.5 m/s
    np.testing.assert_allclose(v, [3.0, 5.0, 6.5, 7.0, 9.0], rtol=HAND_RTOL)
    np.testing.assert_allclose(p, [0.0, 400.0, 1000.0, 1000.0, 1000.0], rtol=HAND_RTOL)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 0.5), min_size=1, max_size=6))
def test_losses_combine_multiplicatively(items):
    kept = 1.0
    for x in items:
        kept *= 1.0 - x
    assert np.isclose(combined_loss_frac(*items), 1.0 - kept, rtol=HAND_RTOL, atol=1e-15)


def test_unknown_turbine():
    with pytest.raises(KeyError, match="unknown turbine"):
        power_curve("nope")


# -- the fleet end to end --------------------------------------------------------
def test_fleet_power_law_offshore_hand_value():
    # 8 m/s at 90 m, hub 90 m, 15 degC, 101325 Pa:
    #   rho(90 m) = 1.214462646 kg/m3, v_eq = 7.976995453 m/s,
    #   curve: 1705.76 + 0.76995453 * (1771.17 - 1705.76) = 1756.122726 kW,
    #   default losses: wake 0.10, electrical 0.02, turbine 0.02, environment 0.01,
    #   availability 0.97: 1756.122726 * 0.90 * 0.98 * 0.98 * 0.99 * 0.97 = 1457.660727 kW
    exo = make_exogenous(8, wind_speed_m_s={"offshore": 8.0})
    fleet = WindFleet(make_context(exo, 3), WindParams())
    np.testing.assert_allclose(fleet.available_kw(5), 1457.660727, rtol=HAND_RTOL)
    # without losses: the curve itself
    gross = WindFleet(make_context(exo, 1), WindParams(**NO_LOSSES))
    np.testing.assert_allclose(gross.available_kw(5), 1756.122726, rtol=HAND_RTOL)


def test_fleet_log_law_onshore_hand_value():
    # 6 m/s at 90 m to 110 m, z0 = 0.03 m: 6.150383325 m/s; 25 degC, 100800 Pa:
    #   rho(110 m) = 1.165816851 kg/m3, v_eq = 6.049696637 m/s,
    #   IEA 3.4 MW curve between 5.7654 m/s (688.906312 kW) and 6.1098 m/s (819.1257759 kW):
    #   796.4003759 kW, times wake (1 - 0.05), default electrical, turbine and
    #   environmental losses 0.98 * 0.98 * 0.99, availability 0.95: 683.3858984 kW
    exo = make_exogenous(4, temp_air_c=25.0, pressure_pa=100_800.0, wind_speed_m_s={"onshore": 6.0})
    params = WindParams(
        turbine="iea_3.4mw_onshore",
        wind_regime="onshore",
        shear="log_law",
        roughness_length_m=0.03,
        array_loss_frac=0.05,
        availability_frac=0.95,
    )
    fleet = WindFleet(make_context(exo, 2), params)
    np.testing.assert_allclose(fleet.available_kw(0), 683.3858984, rtol=HAND_RTOL)


def test_default_shear_follows_siting():
    exo = make_exogenous(2)
    off = WindFleet(make_context(exo, 1), WindParams())
    on = WindFleet(
        make_context(exo, 1), WindParams(turbine="iea_3.4mw_onshore", wind_regime="onshore")
    )
    assert np.isclose(off.shear_exponent, 0.10) and np.isclose(on.shear_exponent, 0.14)
    assert np.isclose(on.hub_height_m[0], 110.0) and np.isclose(off.hub_height_m[0], 90.0)


def test_fleet_cut_out_and_calm():
    exo = make_exogenous(3, wind_speed_m_s={"offshore": [0.0, 30.0, 12.0]})
    fleet = WindFleet(make_context(exo, 2), WindParams())
    assert not fleet.available_kw(0).any()  # calm
    assert not fleet.available_kw(1).any()  # cut-out
    # 12 m/s: rated (5000 kW at and above 12 m/s), times 0.9 * 0.98 * 0.98 * 0.99 * 0.97
    np.testing.assert_allclose(fleet.available_kw(2), 4150.22454, rtol=1e-5)


def _gusty(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).weibull(2.2, n) * 9.5


@cache
def _fleet_for_limits() -> WindFleet:
    exo = make_exogenous(96, wind_speed_m_s={"offshore": _gusty(96)})
    return WindFleet(make_context(exo, 4, seed=1), WindParams(outage_mttr_h=24))


def test_baseline_is_uncurtailed():
    fleet = _fleet_for_limits()
    assert np.isposinf(fleet.baseline_setpoint(3)).all()
    np.testing.assert_allclose(fleet.step(7, None), fleet.available_kw(7), rtol=0, atol=0)


def _block_means(x: np.ndarray, grid: HorizonGrid) -> np.ndarray:
    out, j = [], 0
    for n in grid.steps_per_block:
        out.append(x[:, j : j + n].mean(axis=1))
        j += n
    return np.column_stack(out)


def test_flexibility_from_perfect_forecast_is_block_mean_of_available():
    n = 200
    exo = make_exogenous(
        n, wind_speed_m_s={"offshore": _gusty(n)}, temp_air_c=np.linspace(5, 30, n)
    )
    params = WindParams(hub_height_m={"dist": "uniform", "low": 80, "high": 110})
    fleet = WindFleet(make_context(exo, 5, seed=2, pad_steps=96), params)
    grid = HorizonGrid.build(k0=17, step_h=0.25, fine_steps=4, total_steps=96, coarse_steps=8)
    (form,) = fleet.flexibility(grid, exo.window(grid.k0, grid.n_steps))
    assert isinstance(form, CurtailableSource)
    actual = np.array([fleet.available_kw(k) for k in range(grid.k0, grid.k0 + grid.n_steps)]).T
    np.testing.assert_allclose(
        form.p_max_kw, _block_means(actual, grid), rtol=FLEX_RTOL, atol=FLEX_ATOL_KW
    )


def test_flexibility_with_outages_knows_who_is_down():
    n = 400
    exo = make_exogenous(n, wind_speed_m_s={"offshore": 10.0})
    fleet = WindFleet(
        make_context(exo, 60, seed=4), WindParams(outage_mttr_h=100, availability_frac=0.8)
    )
    k0 = 200
    grid = HorizonGrid.build(k0=k0, step_h=0.25, fine_steps=1, total_steps=96, coarse_steps=95)
    (form,) = fleet.flexibility(grid, exo.window(k0, grid.n_steps))
    down = fleet.available_kw(k0) <= 0
    assert down.any() and not down.all()
    # first block is step k0 itself: down turbines offer nothing, up ones everything
    np.testing.assert_allclose(form.p_max_kw[down, 0], 0.0, atol=FLEX_ATOL_KW)
    np.testing.assert_allclose(
        form.p_max_kw[~down, 0], fleet.available_kw(k0)[~down], rtol=FLEX_RTOL
    )
    # later: down turbines expected partly back, up ones partly lost, both below full output
    full_kw = fleet._per_turbine_kw(exo, k0, 1)[:, 0]
    assert (form.p_max_kw[:, 1] < full_kw).all() and (form.p_max_kw[down, 1] > 0).all()


def test_outages_reach_the_availability_share():
    exo = make_exogenous(24 * 365, step_min=60, wind_speed_m_s={"offshore": 12.0})
    fleet = WindFleet(
        make_context(exo, 200, seed=9), WindParams(outage_mttr_h=48, availability_frac=0.97)
    )
    up = fleet._up_mask(0, len(exo))
    assert abs(up.mean() - 0.97) < AVAILABILITY_ATOL
    p = fleet._per_turbine_kw(exo, 0, 1)[:, 0]
    np.testing.assert_allclose(
        fleet.available_kw(100), np.where(up[:, 100], p, 0.0), rtol=FLEX_RTOL
    )


def test_chunking_does_not_change_results(monkeypatch):
    n = 300
    exo = make_exogenous(n, wind_speed_m_s={"offshore": _gusty(n)})
    whole = WindFleet(
        make_context(exo, 3, seed=5), WindParams(outage_mttr_h=10, availability_frac=0.9)
    )
    monkeypatch.setattr(WindFleet, "cells_per_chunk", 7)  # 2 steps per chunk for 3 turbines
    small = WindFleet(
        make_context(exo, 3, seed=5), WindParams(outage_mttr_h=10, availability_frac=0.9)
    )
    assert small._chunk < whole._chunk
    for k in [250, 3, 95, 96, 299, 40]:  # out of order, across chunk boundaries
        np.testing.assert_allclose(small.available_kw(k), whole.available_kw(k), rtol=0, atol=0)


def test_deterministic_with_seed():
    n = 300
    exo = make_exogenous(n, wind_speed_m_s={"offshore": _gusty(n)})
    params = WindParams(
        hub_height_m={"dist": "uniform", "low": 80, "high": 110},
        outage_mttr_h=10,
        availability_frac=0.9,
    )

    def run(seed):
        f = WindFleet(make_context(exo, 10, seed=seed), params)
        return f.hub_height_m, np.array([f.step(k, None) for k in range(n)])

    a, b, c = run(42), run(42), run(43)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[1], c[1])


def test_info_and_registry():
    fleet = WindFleet(make_context(make_exogenous(2), 40), WindParams())
    assert np.isclose(fleet.info()["p_rated_kw"], 200_000.0)
    assert fleet_type("wind") is WindFleet
    assert set(fleet.state()) == set(WindFleet.state_columns)
    assert WindFleet.role == "source" and WindFleet.green and WindFleet.curtailable


def test_unknown_wind_regime_is_rejected():
    exo = make_exogenous(2, wind_speed_m_s={"onshore": 6.0})
    with pytest.raises(ValueError, match="'offshore' is not a wind regime of the weather.*onshore"):
        WindFleet(make_context(exo, 1), WindParams())


def test_roughness_above_hub_is_rejected():
    with pytest.raises(ValueError, match="must be below the regime's reference height and the hub height") as err:
        WindFleet(
            make_context(make_exogenous(2), 1),
            WindParams(shear="log_law", roughness_length_m=1.5, hub_height_m=1.0),
        )
    assert err.value.loc == ("roughness_length_m",)


@pytest.mark.parametrize(
    "bad",
    [
        {"turbine": "vestas_v999"},
        {"availability_frac": 0},
        {"array_loss_frac": 1.0},
        {"electrical_loss_frac": -0.01},
        {"turbine_performance_loss_frac": 1.0},
        {"environmental_loss_frac": 2},
        {"hub_height_m": {"dist": "normal", "mean": 90, "std": 5}},  # unbounded support
        {"outage_mttr_h": 24, "availability_frac": 1.0},
        {"shear": "cubic"},
    ],
)
def test_bad_params_are_rejected(bad):
    with pytest.raises(ValidationError):
        WindParams.model_validate(bad)


# -- a year offshore: capacity factor against Donghai Bridge ---------------------------
@cache
def _years():
    """Five synthetic years of the default weather at hourly steps."""
    return [shanghai_year(seed) for seed in CF_SEEDS]


def _capacity_factors(params: WindParams) -> np.ndarray:
    """Annual capacity factor of one turbine in each synthetic year. [-]"""
    out = []
    for timeline, exo in _years():
        fleet = WindFleet(FleetContext("wind", "n1", 1, np.random.default_rng(0), timeline, exo), params)
        # the uncurtailed output is the available power (test_baseline_is_uncurtailed): one call for the year
        p_kw = fleet._available_chunk_kw(0, timeline.n_steps)[0]
        out.append(p_kw.mean() / fleet.turbine.rated_kw)
    return np.array(out)


def _wind_toml_fleet(name: str) -> WindParams:
    fleets = tomllib.loads(WIND_TOML.read_text(encoding="utf-8"))["fleets"]
    return WindParams.model_validate(next(f for f in fleets if f["name"] == name)["params"])


def test_donghai_bridge_like_farm_lands_near_its_design_capacity_factor():
    # the offshore farm of scenarios/wind.toml: SL3000/90-sized turbines, Chinese design reductions
    cf = _capacity_factors(_wind_toml_fleet("offshore_wind"))
    low, high = DONGHAI_CF_BAND
    assert low <= cf.mean() <= high


def test_what_separates_the_default_fleet_from_donghai_bridge():
    gross_5mw = _capacity_factors(WindParams(**NO_LOSSES))
    gross_3mw = _capacity_factors(WindParams(turbine="generic_3mw_offshore", **NO_LOSSES))
    default = _capacity_factors(WindParams())
    # a rotor small for its rating (472 against 401 W/m2) produces less at the same wind ...
    assert (gross_3mw < gross_5mw - 0.02).all()
    # ... and the default losses are exactly the itemised product (17 %)
    np.testing.assert_allclose(default, gross_5mw * 0.9 * 0.98 * 0.98 * 0.99 * 0.97, rtol=1e-9)
    # so the default NREL 5 MW fleet sits above the Donghai Bridge design figure
    assert default.mean() > DONGHAI_CF_BAND[1]


def test_varying_exponent_density_correction_matches_windpowerlib():
    """tests/data/windpowerlib_density_correction.csv: windpowerlib 0.2.2's
    power_curve_density_correction on the NREL 5 MW curve (made by the script beside it)."""
    from vpp.assets.wind import power_curve, turbine_power_kw_varying_exponent

    ref = pd.read_csv(Path(__file__).parent / "data" / "windpowerlib_density_correction.csv")
    v, p = power_curve("nrel_5mw_offshore")
    ours = turbine_power_kw_varying_exponent(ref["wind_speed_m_s"].to_numpy(), ref["density_kg_m3"].to_numpy(), v, p)
    np.testing.assert_allclose(ours, ref["power_kw"].to_numpy(), rtol=1e-12, atol=1e-9)


def test_the_two_density_corrections_by_hand():
    """A made-up curve; at rho = 1.225 both read the curve; below 7.5 m/s both use 1/3;
    at 10 m/s and rho = 1.0 the varying exponent (0.433 at 9 m/s, 0.567 at 11 m/s) moves
    the curve further than IEC's 1/3, so it gives less power."""
    from vpp.assets.wind import turbine_power_kw, turbine_power_kw_varying_exponent

    cv = np.array([3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 25.0])
    cp = np.array([0.0, 100.0, 300.0, 600.0, 900.0, 1000.0, 1000.0, 1000.0])
    for f in (turbine_power_kw, turbine_power_kw_varying_exponent):
        assert float(f(10.0, 1.225, cv, cp)) == pytest.approx(750.0)
    iec = float(turbine_power_kw(10.0, 1.0, cv, cp))
    x9, x11 = 1 / 3 + 1.5 / 5 / 3, 1 / 3 + 3.5 / 5 / 3
    s9, s11 = 9 * 1.225 ** x9, 11 * 1.225 ** x11
    varying = float(turbine_power_kw_varying_exponent(10.0, 1.0, cv, cp))
    assert varying == pytest.approx(600 + (10 - s9) / (s11 - s9) * 300, rel=1e-12)
    assert iec == pytest.approx(600 + (10 * (1 / 1.225) ** (1 / 3) - 9) / 2 * 300, rel=1e-12)
    assert varying < iec
    # below 7.5 m/s the exponent is 1/3 in both: same power
    assert float(turbine_power_kw_varying_exponent(6.0, 1.0, cv, cp)) == pytest.approx(
        float(turbine_power_kw(6.0, 1.0, cv, cp)), rel=1e-12)


def test_a_power_curve_of_ones_own_and_the_hub_speed_in_the_records(tmp_path):
    curve = tmp_path / "curve.csv"
    curve.write_text("wind_speed_m_s,power_kw\n3,0\n12,2000\n25,2000\n")
    fleet = WindFleet(make_context(make_exogenous(4), 2), WindParams(power_curve_csv=str(curve)))
    assert fleet.info()["p_rated_kw"] == pytest.approx(4000.0)
    fleet.step(0, None)
    v_hub = fleet.state()["v_hub_m_s"]
    assert v_hub > 0 and np.isfinite(v_hub)
    bad = tmp_path / "bad.csv"
    bad.write_text("wind_speed_m_s,power_kw\n5,0\n4,100\n")
    with pytest.raises(vpp.ScenarioError, match="increase"):
        WindParams(power_curve_csv=str(bad))
