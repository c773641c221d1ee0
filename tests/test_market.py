"""The two-settlement market's settlement and generated prices against hand values."""

import numpy as np
import pandas as pd
import pytest

from vpp.market import PriceShape, generate_prices, settle_market


def test_a_position_kept_costs_the_day_ahead_price_only():
    s = settle_market([100.0, 50.0], [100.0, 50.0], np.array([0.4, 0.8]), np.array([1.0, -1.0]), 0.25, 0.1, 0.5)
    assert s.day_ahead_cny == pytest.approx((100 * 0.4 + 50 * 0.8) * 0.25)
    assert s.real_time_cny == 0.0 and s.penalty_cny == 0.0 and s.deviation_kwh == 0.0


def test_deviations_pay_the_real_time_price_and_beyond_the_band_a_penalty():
    """Position 100 kW in both steps, tolerance 10 %; metered 105 (inside the band) and
    70 (30 kW short, 20 kW beyond the band); one hour each."""
    s = settle_market([100.0, 100.0], [105.0, 70.0], np.array([0.5, 0.5]), np.array([0.9, 0.3]), 1.0, 0.1, 0.2)
    assert s.day_ahead_cny == pytest.approx(100.0)
    assert s.real_time_cny == pytest.approx(5 * 0.9 - 30 * 0.3)         # buy 5 more, sell 30 back
    assert s.penalty_cny == pytest.approx(20 * 0.2)
    assert s.deviation_kwh == pytest.approx(35.0)
    assert s.penalised_kwh == pytest.approx(20.0)
    assert s.net_cny == pytest.approx(100.0 + 4.5 - 9.0 + 4.0)


def test_an_exporting_position_earns_the_day_ahead_price():
    s = settle_market([-40.0], [-40.0], np.array([0.3]), np.array([0.9]), 1.0, 0.0, 1.0)
    assert s.day_ahead_cny == pytest.approx(-12.0)


def test_generated_prices_follow_the_stated_shape():
    """Without real-time noise: the level at night, a dip with the sun (negative at
    full sun with solar_dip_frac > 1), the evening peak and the heat term."""
    idx = pd.date_range("2024-07-22", periods=96, freq="15min", tz="Asia/Shanghai")
    ghi = np.where((idx.hour >= 11) & (idx.hour < 14), 1000.0, 0.0)
    temp = np.where(idx.hour == 15, 30.0, 20.0)
    shape = PriceShape(mean_cny_per_kwh=0.4, evening_peak_frac=0.5, solar_dip_frac=1.2, heat_frac_per_k=0.05,
                       rt_noise_frac=0.0)
    da, rt = generate_prices(idx, ghi, temp, shape, np.random.default_rng(0))
    at = {h: da[idx.hour * 4 + idx.minute // 15 == h * 4][0] for h in (3, 12, 15, 20)}
    assert at[3] == pytest.approx(0.4)
    assert at[12] == pytest.approx(0.4 * (1 - 1.2))                     # negative at noon
    assert at[15] == pytest.approx(0.4 * (1 + 0.05 * 4))
    assert at[20] == pytest.approx(0.4 * 1.5)
    np.testing.assert_array_equal(rt, da)


def test_real_time_noise_has_the_stated_spread_and_memory():
    idx = pd.date_range("2024-01-01", periods=96 * 400, freq="15min", tz="Asia/Shanghai")
    shape = PriceShape(mean_cny_per_kwh=0.5, evening_peak_frac=0.0, solar_dip_frac=0.0, heat_frac_per_k=0.0,
                       rt_noise_frac=0.2, rt_noise_h=2.0)
    da, rt = generate_prices(idx, np.zeros(len(idx)), np.zeros(len(idx)), shape, np.random.default_rng(1))
    e = (rt - da) / (0.5 * 0.2)
    assert e.std() == pytest.approx(1.0, rel=0.05)
    lag = np.corrcoef(e[:-8], e[8:])[0, 1]                              # 2 h later: exp(-1)
    assert lag == pytest.approx(np.exp(-1.0), abs=0.05)
