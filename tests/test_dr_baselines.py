"""Customer baselines and settlement against hand-computed values.

The load history is hand-made: every step of day ``d`` holds ``day_value(d)`` plus
the step's index within the day, so a baseline is a mean of listed day values
(written out below from the calendar, holidays and weekends excluded as each rule
says) plus the window's step indices."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vpp.dr import (
    SettlementBand,
    WorkCalendar,
    caiso_10in10,
    last5_working_days,
    pre_event,
    settle,
    top5_of_10,
)

TZ = "Asia/Shanghai"


def day_value(d: pd.Timestamp) -> float:
    """A value per day that is neither monotone nor periodic in the week. [kW]"""
    return 1000.0 + 100.0 * ((d.day_of_year * 7) % 11)


def history(first="2024-05-01", last="2024-06-30"):
    idx = pd.date_range(first, last, freq="15min", tz=TZ, inclusive="left")
    steps = (idx.hour * 4 + idx.minute // 15).to_numpy()
    values = np.array([day_value(t.normalize()) for t in idx]) + steps
    s = pd.Series(values, index=idx)
    s.index.freq = "15min"
    return s


# An event on Wednesday 19 June 2024, 13:00-15:00; 17 June was an event day.
START, END = pd.Timestamp("2024-06-19 13:00", tz=TZ), pd.Timestamp("2024-06-19 15:00", tz=TZ)
WINDOW_STEPS = np.arange(52, 60)
EVENT_DAYS = [date(2024, 6, 17)]
# Prior working days, newest first: 18 (Tue); 17 skipped (event); 14, 13, 12, 11 (Fri-Tue);
# 10 June skipped (Dragon Boat Festival, a Monday holiday); 7, 6, 5, 4, 3 (Fri-Mon); 31 May ...
TEN = ["2024-06-18", "2024-06-14", "2024-06-13", "2024-06-12", "2024-06-11",
       "2024-06-07", "2024-06-06", "2024-06-05", "2024-06-04", "2024-06-03"]


def mean_of(days):
    return np.mean([day_value(pd.Timestamp(d, tz=TZ)) for d in days]) + WINDOW_STEPS


def test_last_five_working_days_skip_event_days_weekends_and_holidays():
    got = last5_working_days(history(), START, END, EVENT_DAYS)
    np.testing.assert_allclose(got, mean_of(TEN[:5]))


def test_ten_in_ten_without_adjustment_is_the_mean_of_ten_days():
    got = caiso_10in10(history(), START, END, EVENT_DAYS, adjust=False)
    np.testing.assert_allclose(got, mean_of(TEN))


def test_top_five_of_ten_takes_the_five_highest_days():
    values = {d: day_value(pd.Timestamp(d, tz=TZ)) for d in TEN}
    top = sorted(TEN, key=lambda d: values[d], reverse=True)[:5]
    assert set(top) != set(TEN[:5])                       # the hand-made history tells them apart
    np.testing.assert_allclose(top5_of_10(history(), START, END, EVENT_DAYS), mean_of(top))


@pytest.mark.parametrize("factor, applied", [(1.1, 1.1), (1.5, 1.2), (0.5, 0.8)])
def test_the_day_of_adjustment_scales_by_the_morning_ratio_capped_at_20_percent(factor, applied):
    """The 3 hours from 09:00 on the event day run at *factor* times the ten days' mean there."""
    load = history()
    morning = (load.index >= START - pd.Timedelta(hours=4)) & (load.index < START - pd.Timedelta(hours=1))
    ten_morning = np.mean([day_value(pd.Timestamp(d, tz=TZ)) for d in TEN]) + np.arange(36, 48)
    load[morning] = factor * ten_morning
    got = caiso_10in10(load, START, END, EVENT_DAYS)
    np.testing.assert_allclose(got, applied * mean_of(TEN))


def test_a_weekend_event_draws_on_weekends_and_holidays():
    """Saturday 22 June: prior non-working days, newest first: 16, 15 (weekend), 10 (holiday),
    9, 8 June (weekends)."""
    start, end = pd.Timestamp("2024-06-22 10:00", tz=TZ), pd.Timestamp("2024-06-22 11:00", tz=TZ)
    days = ["2024-06-16", "2024-06-15", "2024-06-10", "2024-06-09", "2024-06-08"]
    want = np.mean([day_value(pd.Timestamp(d, tz=TZ)) for d in days]) + np.arange(40, 44)
    np.testing.assert_allclose(last5_working_days(history(), start, end), want)


def test_make_up_working_days_count_as_working():
    cal = WorkCalendar()
    assert cal.is_working(date(2024, 5, 11))       # a Saturday worked in exchange for the May holiday
    assert not cal.is_working(date(2024, 5, 1))    # Labour Day, a Wednesday
    assert not cal.is_working(date(2024, 6, 10))   # Dragon Boat Festival, a Monday


def test_pre_event_holds_the_quarter_hour_before():
    load = history()
    want = load[pd.Timestamp("2024-06-19 12:45", tz=TZ)]
    np.testing.assert_allclose(pre_event(load, START, END), np.full(8, want))


def test_a_short_history_is_refused():
    with pytest.raises(ValueError, match="holds .* eligible days .* needs 10"):
        caiso_10in10(history(first="2024-06-10"), START, END)


BAND = SettlementBand(paid_min_frac=0.5, paid_max_frac=1.2, penalty_floor_frac=0.8, penalty_cny_per_kwh=2.0)


@pytest.mark.parametrize("delivered_kw, payment, penalty", [
    (45.0, 0.0, (160 - 90) * 2.0),      # ratio 0.45: below the paid band; shortfall to the 80 % floor
    (75.0, 150 * 1.5, (160 - 150) * 2.0),
    (100.0, 200 * 1.5, 0.0),
    (150.0, 240 * 1.5, 0.0),            # paid up to 120 % of the bid
])
def test_settlement_bands_by_hand(delivered_kw, payment, penalty):
    """A 100 kW bid over 2 h (8 steps of 15 min): 200 kWh; paid 1.5 CNY/kWh."""
    baseline = np.full(8, 1000.0)
    s = settle("peak_shaving", baseline, baseline - delivered_kw, 0.25, 100.0, 1.5, BAND)
    assert s.bid_kwh == pytest.approx(200.0)
    assert s.delivered_kwh == pytest.approx(delivered_kw * 2)
    assert s.payment_cny == pytest.approx(payment)
    assert s.penalty_cny == pytest.approx(penalty)


def test_valley_filling_delivers_by_raising_the_load():
    baseline = np.full(4, 500.0)
    s = settle("valley_filling", baseline, baseline + 80.0, 0.25, 100.0, 1.0, SettlementBand())
    assert s.delivered_kwh == pytest.approx(80.0)
    assert s.ratio == pytest.approx(0.8)
    assert s.payment_cny == pytest.approx(80.0)
