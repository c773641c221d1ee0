"""Forecaster: zero error now, spread growing like sqrt(lead), perfect mode, order independence."""

import numpy as np
import pytest

from vpp.exogenous import Forecaster, build_exogenous
from vpp.exogenous.config import ForecastConfig
from vpp.exogenous.series import Exogenous
from vpp.exogenous.weather import K_CAP
from vpp.scenario import scenario_from_dict

N_WINDOWS = 400  # independent windows for the spread statistics
SPREAD_REL_TOL = 0.15  # sample std of 400 normals: standard error ~3.5 %, so ~4 sigma
CLOSURE_TOL_W_M2 = 1e-6

NODES = [{"name": "n", "import_limit_kw": 1.0, "export_limit_kw": 1.0}]
FLEETS = [{"name": "f", "type": "any", "node": "n", "count": 1}]


@pytest.fixture(scope="module")
def actual() -> Exogenous:
    data = {
        "name": "t",
        "seed": 4,
        "time": {"start": "2024-07-01T00:00:00", "end": "2024-07-08T00:00:00"},
        "nodes": NODES,
        "fleets": FLEETS,
    }
    return build_exogenous(scenario_from_dict(data, "test.toml"))


def _same(a: Exogenous, b: Exogenous):
    for name in Exogenous.array_fields():
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.wind_speed_m_s.keys() == b.wind_speed_m_s.keys()
    for k in a.wind_speed_m_s:
        np.testing.assert_array_equal(a.wind_speed_m_s[k], b.wind_speed_m_s[k])


def test_zero_error_at_lead_zero(actual):
    fc = Forecaster(ForecastConfig(), seed=1)
    for k0 in (0, 37, 50, 300):
        f = fc.forecast(actual, k0, 97)
        for name in Exogenous.array_fields():
            assert getattr(f, name)[0] == getattr(actual, name)[k0], name
        for k, v in f.wind_speed_m_s.items():
            assert v[0] == actual.wind_speed_m_s[k][k0]
        assert f.load_error_frac[0] == 0.0
        assert f.index[0] == actual.index[k0] and len(f) == 97


def test_spread_grows_like_the_square_root_of_lead(actual):
    # windows are consistent with each other (shared innovations), so independent
    # samples come from independent seeds, not from neighbouring windows
    cfg = ForecastConfig(temp_error_k_24h=1.5, load_error_frac_24h=0.05)
    lead_steps = np.array([4, 24, 96])  # 1 h, 6 h, 24 h at 15 min
    temp_err, load_err = [], []
    for seed in range(N_WINDOWS):
        k0 = seed % 8
        f = Forecaster(cfg, seed=seed).forecast(actual, k0, 97)
        temp_err.append(f.temp_air_c[lead_steps] - actual.temp_air_c[k0 + lead_steps])
        load_err.append(f.load_error_frac[lead_steps])
    expected = np.sqrt(lead_steps * 0.25 / 24)
    np.testing.assert_allclose(np.std(temp_err, axis=0), 1.5 * expected, rtol=SPREAD_REL_TOL)
    np.testing.assert_allclose(np.std(load_err, axis=0), 0.05 * expected, rtol=SPREAD_REL_TOL)


def test_ghi_and_wind_errors_are_relative_grow_and_stay_physical(actual):
    rel = {4: [], 96: []}
    for seed in range(N_WINDOWS):
        k0 = seed % 8
        f = Forecaster(ForecastConfig(), seed=seed).forecast(actual, k0, 97)
        assert (f.ghi_w_m2 >= 0).all()
        assert (
            f.ghi_w_m2
            <= np.maximum(K_CAP * f.ghi_clear_w_m2, actual.window(k0, 97).ghi_w_m2) + 1e-9
        ).all()
        cosz = np.cos(np.radians(f.solar_apparent_zenith_deg))
        np.testing.assert_allclose(
            f.dni_w_m2 * cosz + f.dhi_w_m2, f.ghi_w_m2, atol=CLOSURE_TOL_W_M2
        )
        for v in f.wind_speed_m_s.values():
            assert (v >= 0).all()
        np.testing.assert_array_equal(
            f.price_import_cny_per_kwh, actual.price_import_cny_per_kwh[k0 : k0 + 97]
        )
        np.testing.assert_array_equal(f.co2_kg_per_kwh, actual.co2_kg_per_kwh[k0 : k0 + 97])
        for lead in rel:
            a = actual.wind_speed_m_s["offshore"][k0 + lead]
            rel[lead].append(f.wind_speed_m_s["offshore"][lead] / a - 1)
    assert np.std(rel[96]) > 2 * np.std(rel[4])  # sqrt(96/4) = 4.9 before clipping


def test_perfect_forecast_is_the_actual_window(actual):
    f = Forecaster(ForecastConfig(perfect=True), seed=1).forecast(actual, 10, 96)
    _same(f, actual.window(10, 96))
    np.testing.assert_array_equal(f.load_error_frac, np.zeros(96))


def test_same_seed_and_step_give_the_same_forecast_in_any_call_order(actual):
    a, b = Forecaster(ForecastConfig(), 9), Forecaster(ForecastConfig(), 9)
    a10, a50 = a.forecast(actual, 10, 96), a.forecast(actual, 50, 96)
    b50, b10 = b.forecast(actual, 50, 96), b.forecast(actual, 10, 96)
    _same(a10, b10)
    _same(a50, b50)
    np.testing.assert_array_equal(a10.load_error_frac, b10.load_error_frac)
    other = Forecaster(ForecastConfig(), 10).forecast(actual, 10, 96)
    assert not np.allclose(other.temp_air_c, a10.temp_air_c)
    assert not np.allclose(a.forecast(actual, 11, 96).load_error_frac, a10.load_error_frac)


def test_actuals_are_not_modified(actual):
    before = actual.to_frame().copy()
    Forecaster(ForecastConfig(), 1).forecast(actual, 5, 96)
    assert before.equals(actual.to_frame())


def test_window_outside_the_series_is_an_index_error(actual):
    with pytest.raises(IndexError):
        Forecaster(ForecastConfig(), 1).forecast(actual, len(actual) - 10, 96)


def test_consecutive_forecasts_revise_rather_than_redraw(actual):
    """The forecast for a given step issued one hour later differs from the
    earlier one only by the innovations of that hour (martingale forecast
    evolution), so its revision is small next to the 24 h spread."""
    cfg = ForecastConfig(temp_error_k_24h=1.5)
    fc = Forecaster(cfg, seed=4)
    revisions, errors = [], []
    for k0 in range(0, 200, 4):
        early, late = fc.forecast(actual, k0, 97), fc.forecast(actual, k0 + 4, 97)
        target = 96  # step k0 + 96: lead 24 h early, 23 h late
        revisions.append(early.temp_air_c[target] - late.temp_air_c[target - 4])
        errors.append(early.temp_air_c[target] - actual.temp_air_c[k0 + target])
    # revision = the first hour's innovations: std 1.5 * sqrt(1/24) ~ 0.31 K, against ~1.5 K at 24 h
    assert np.std(revisions) == pytest.approx(1.5 * np.sqrt(1 / 24), rel=0.35)
    assert np.std(revisions) < 0.5 * np.std(errors)
