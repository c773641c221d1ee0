"""Forecast feed dropouts ([forecast] dropout_frac): the strategy plans on persistence, stated."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import scenario

import vpp
from vpp.api import build_exogenous
from vpp.exogenous.config import ForecastConfig
from vpp.exogenous.forecast import Forecaster


@pytest.fixture(scope="module")
def exo():
    return build_exogenous(scenario({}))


def down_forecaster(**kw) -> Forecaster:
    f = Forecaster(ForecastConfig(dropout_frac=0.5, **kw), seed=1)
    f.feed_down = lambda t_h: True                                        # the feed is down throughout
    return f


def test_persistence_is_the_same_time_on_the_last_day(exo):
    """Decided at step 100 of 15-min steps (day 2, 01:00): lead L copies step 100 + L - 96 for
    L < 96 and 100 + L - 192 for 96 <= L < 192; lead zero is measured."""
    n, k0 = 120, 100
    w = down_forecaster().forecast(exo, k0, n)
    src = np.array([k0] + [k0 + L - 96 * int(np.ceil((L + 1) / 96)) for L in range(1, n)])
    np.testing.assert_array_equal(w.ghi_w_m2, exo.ghi_w_m2[src])
    np.testing.assert_array_equal(w.temp_air_c, exo.temp_air_c[src])
    for name, v in exo.wind_speed_m_s.items():
        np.testing.assert_array_equal(w.wind_speed_m_s[name], v[src])


def test_before_the_run_there_is_no_day_to_copy_so_the_sky_persists(exo):
    """Decided at noon of the first day: the afternoon is the clear sky times the clear-sky
    index measured now, temperature and wind as now."""
    k0, n = 48, 40
    w = down_forecaster().forecast(exo, k0, n)
    index_now = exo.ghi_w_m2[k0] / exo.ghi_clear_w_m2[k0]
    np.testing.assert_allclose(w.ghi_w_m2[1:], exo.ghi_clear_w_m2[k0 + 1:k0 + n] * index_now)
    assert (w.temp_air_c[1:] == exo.temp_air_c[k0]).all() and w.ghi_w_m2[0] == exo.ghi_w_m2[k0]


def test_no_dropout_is_the_forecast_without_one(exo):
    a = Forecaster(ForecastConfig(), seed=3).forecast(exo, 40, 96)
    b = Forecaster(ForecastConfig(dropout_frac=0.0, dropout_mean_h=2.0), seed=3).forecast(exo, 40, 96)
    np.testing.assert_array_equal(a.ghi_w_m2, b.ghi_w_m2)
    np.testing.assert_array_equal(a.temp_air_c, b.temp_air_c)


def test_the_feed_is_down_for_the_share_of_time_asked():
    """Alternating renewal: long-run share down = MTTR / (MTTF + MTTR) = dropout_frac."""
    f = Forecaster(ForecastConfig(dropout_frac=0.2, dropout_mean_h=6.0), seed=5)
    hours = np.arange(0, 200_000, 0.5)
    share = np.mean([f.feed_down(h) for h in hours])
    assert share == pytest.approx(0.2, abs=0.02)
    again = Forecaster(ForecastConfig(dropout_frac=0.2, dropout_mean_h=6.0), seed=5)
    assert [again.feed_down(h) for h in hours[::-1][:2000]][::-1] == [f.feed_down(h) for h in hours[-2000:]]


def test_a_run_states_its_dispatches_on_persistence():
    r = vpp.run(scenario({"forecast": {"dropout_frac": 0.3}}), strategy="virtual_battery")
    events = r.events[r.events["kind"] == "forecast_dropout"]
    assert len(events) > 0 and "persistence" in events["detail"].iloc[0]
    assert r.kpis.loc["forecast_persistence_frac", "value"] == len(events) / len(r.dispatch)
    assert np.isfinite(r.kpis.loc["total_cost_cny", "value"])
