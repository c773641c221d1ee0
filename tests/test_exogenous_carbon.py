"""Carbon-intensity profile: daily mean equals the configured factor exactly."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.exogenous.carbon import HIGH_HOUR, LOW_HOUR, carbon_profile
from vpp.exogenous.config import CarbonConfig

MEAN_TOL = 1e-12  # kg/kWh, round-off only
DIVISORS_OF_DAY_MIN = [d for d in range(1, 1441) if 1440 % d == 0]


@pytest.mark.parametrize("factor, expected", [("average", 0.5849), ("marginal", 0.8325)])
def test_daily_mean_equals_the_factor(factor, expected):
    idx = pd.date_range("2024-07-01", periods=96 * 3, freq="15min", tz="Asia/Shanghai")
    co2 = carbon_profile(idx, 900, CarbonConfig(factor=factor))
    daily = co2.reshape(3, 96).mean(axis=1)
    np.testing.assert_allclose(daily, expected, atol=MEAN_TOL)


def test_lowest_around_midday_highest_in_the_evening():
    idx = pd.date_range("2024-07-01", periods=96, freq="15min", tz="Asia/Shanghai")
    cfg = CarbonConfig(diurnal_amplitude_frac=0.2)
    co2 = carbon_profile(idx, 900, cfg)
    hour = idx.hour + idx.minute / 60
    assert 11.0 <= hour[np.argmin(co2)] <= 14.0
    assert 18.0 <= hour[np.argmax(co2)] <= 21.0
    # amplitude: interval means of a cosine peak are a little below F (1 + A)
    assert co2.max() == pytest.approx(0.5849 * 1.2, rel=1e-3)
    assert co2.min() == pytest.approx(0.5849 * 0.8, rel=1e-3)
    assert LOW_HOUR < HIGH_HOUR


def test_zero_amplitude_is_flat():
    idx = pd.date_range("2024-01-01", periods=50, freq="1h", tz="Asia/Shanghai")
    np.testing.assert_allclose(
        carbon_profile(idx, 3600, CarbonConfig(diurnal_amplitude_frac=0.0)), 0.5849, atol=MEAN_TOL
    )


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(DIVISORS_OF_DAY_MIN),
    st.integers(0, 1439),
    st.floats(0.0, 0.99),
    st.floats(0.01, 2.0),
)
def test_any_24h_of_steps_averages_to_the_factor(step_min, offset_min, amplitude, factor):
    start = pd.Timestamp("2024-03-05", tz="Asia/Shanghai") + pd.Timedelta(minutes=offset_min)
    idx = pd.date_range(start, periods=1440 // step_min, freq=f"{step_min}min")
    cfg = CarbonConfig(average_kg_per_kwh=factor, diurnal_amplitude_frac=amplitude)
    co2 = carbon_profile(idx, 60 * step_min, cfg)
    assert co2.mean() == pytest.approx(factor, abs=MEAN_TOL * 10)
    assert (co2 >= factor * (1 - amplitude) - MEAN_TOL).all()
    assert (co2 <= factor * (1 + amplitude) + MEAN_TOL).all()
