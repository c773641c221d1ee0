"""Shanghai C&I time-of-use tariff (沪发改价管〔2022〕50号) against hand-computed prices."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.exogenous.config import TariffConfig
from vpp.exogenous.tariff import TOU_PERIODS, shanghai_tou_prices, tou_period

PRICE_TOL = 1e-12  # CNY/kWh
P = 0.70  # flat price used below [CNY/kWh]

# (local Shanghai time, period, import price = multiplier x 0.70, worked out by hand from docs/SOURCES.md)
CASES = [
    # July: peak 08-15 and 18-21, critical 12-14, flat 06-08/15-18/21-22, valley 22-06; 1.8/0.4/2.25
    ("2024-07-15 05:59", "valley", 0.28),
    ("2024-07-15 06:00", "flat", 0.70),
    ("2024-07-15 07:59", "flat", 0.70),
    ("2024-07-15 08:00", "peak", 1.26),
    ("2024-07-15 11:59", "peak", 1.26),
    ("2024-07-15 12:00", "critical", 1.575),
    ("2024-07-15 13:59", "critical", 1.575),
    ("2024-07-15 14:00", "peak", 1.26),
    ("2024-07-15 14:59", "peak", 1.26),
    ("2024-07-15 15:00", "flat", 0.70),
    ("2024-07-15 17:59", "flat", 0.70),
    ("2024-07-15 18:00", "peak", 1.26),
    ("2024-07-15 20:59", "peak", 1.26),
    ("2024-07-15 21:00", "flat", 0.70),
    ("2024-07-15 21:59", "flat", 0.70),
    ("2024-07-15 22:00", "valley", 0.28),
    ("2024-07-15 00:00", "valley", 0.28),
    # August: same as July
    ("2024-08-31 13:45", "critical", 1.575),
    # September: summer hours, high multipliers, no critical peak
    ("2024-09-10 12:30", "peak", 1.26),
    ("2024-09-10 14:45", "peak", 1.26),
    ("2024-09-10 15:00", "flat", 0.70),
    ("2024-09-10 23:00", "valley", 0.28),
    # January: peak 08-11 and 18-21, critical 19-21; 1.8/0.4/2.25
    ("2024-01-10 10:59", "peak", 1.26),
    ("2024-01-10 11:00", "flat", 0.70),
    ("2024-01-10 18:30", "peak", 1.26),
    ("2024-01-10 19:00", "critical", 1.575),
    ("2024-01-10 20:59", "critical", 1.575),
    ("2024-01-10 21:00", "flat", 0.70),
    ("2024-01-10 03:00", "valley", 0.28),
    # December: as January
    ("2024-12-24 20:45", "critical", 1.575),
    ("2024-12-24 08:00", "peak", 1.26),
    # April and June: other months, 1.6/0.5, no critical peak
    ("2024-04-02 07:59", "flat", 0.70),
    ("2024-04-02 08:00", "peak", 1.6 * P),
    ("2024-04-02 12:00", "flat", 0.70),
    ("2024-04-02 19:30", "peak", 1.6 * P),
    ("2024-04-02 21:59", "flat", 0.70),
    ("2024-04-02 22:00", "valley", 0.35),
    ("2024-06-20 13:00", "flat", 0.70),
    ("2024-11-05 09:15", "peak", 1.12),
    ("2024-02-29 20:00", "peak", 1.12),
]


def _index(stamps):
    return pd.DatetimeIndex(pd.to_datetime(stamps)).tz_localize("Asia/Shanghai")


def test_hand_checked_prices_and_periods():
    idx = _index([c[0] for c in CASES])
    price_import, price_export = shanghai_tou_prices(idx, TariffConfig(flat_price_cny_per_kwh=P))
    expected = np.array([c[2] for c in CASES])
    for (stamp, period, price), got_period, got_price in zip(
        CASES, tou_period(idx), price_import, strict=True
    ):
        assert got_period == period, stamp
        assert got_price == pytest.approx(price, abs=PRICE_TOL), stamp
    np.testing.assert_allclose(price_import, expected, atol=PRICE_TOL)
    np.testing.assert_allclose(price_export, 0.4155, atol=PRICE_TOL)


def test_hours_are_shanghai_wall_clock_whatever_the_index_zone():
    # 04:00 UTC = 12:00 Shanghai (July critical peak); 13:59 UTC = 21:59 (flat);
    # 14:00 UTC = 22:00 (valley)
    idx = pd.DatetimeIndex(
        pd.to_datetime(["2024-07-15 04:00", "2024-07-15 13:59", "2024-07-15 14:00"])
    ).tz_localize("UTC")
    assert list(tou_period(idx)) == ["critical", "flat", "valley"]


def test_naive_index_is_rejected():
    with pytest.raises(ValueError, match="tz-aware"):
        tou_period(pd.date_range("2024-07-01", periods=4, freq="h"))


# hours per period in a day and the day's mean multiplier, counted by hand from docs/SOURCES.md
DAYS = [
    (
        "2024-07-02",
        {"valley": 8, "flat": 6, "peak": 8, "critical": 2},
        (8 * 0.4 + 6 + 8 * 1.8 + 2 * 2.25) / 24,
    ),
    (
        "2024-09-02",
        {"valley": 8, "flat": 6, "peak": 10, "critical": 0},
        (8 * 0.4 + 6 + 10 * 1.8) / 24,
    ),
    (
        "2024-01-02",
        {"valley": 8, "flat": 10, "peak": 4, "critical": 2},
        (8 * 0.4 + 10 + 4 * 1.8 + 2 * 2.25) / 24,
    ),
    (
        "2024-04-02",
        {"valley": 8, "flat": 10, "peak": 6, "critical": 0},
        (8 * 0.5 + 10 + 6 * 1.6) / 24,
    ),
]


@pytest.mark.parametrize("day, hours, mean_multiplier", DAYS)
def test_whole_day_at_15_minutes(day, hours, mean_multiplier):
    idx = pd.date_range(day, periods=96, freq="15min", tz="Asia/Shanghai")
    periods = tou_period(idx)
    assert {p: int((periods == p).sum()) for p in TOU_PERIODS} == {
        p: 4 * h for p, h in hours.items()
    }
    price_import, _ = shanghai_tou_prices(idx, TariffConfig(flat_price_cny_per_kwh=1.0))
    assert price_import.mean() == pytest.approx(mean_multiplier, abs=PRICE_TOL)


@settings(max_examples=50, deadline=None)
@given(
    st.datetimes(
        min_value=pd.Timestamp("2023-01-01").to_pydatetime(),
        max_value=pd.Timestamp("2030-12-31").to_pydatetime(),
    ),
    st.floats(0.1, 2.0),
)
def test_price_is_a_published_multiplier_of_the_flat_price(when, flat):
    idx = pd.DatetimeIndex([pd.Timestamp(when)]).tz_localize("Asia/Shanghai")
    price, _ = shanghai_tou_prices(idx, TariffConfig(flat_price_cny_per_kwh=flat))
    high = idx.month[0] in (1, 7, 8, 9, 12)
    allowed = (0.4, 1.0, 1.8, 2.25) if high else (0.5, 1.0, 1.6)
    assert min(abs(price[0] / flat - m) for m in allowed) < 1e-9
