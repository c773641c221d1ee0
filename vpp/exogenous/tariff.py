"""Shanghai time-of-use electricity tariff for general C&I users.

The two-part general commercial & industrial (and large industrial) tariff of
沪发改价管〔2022〕50号 (Shanghai Development and Reform Commission, in force
2023-01-01; official), as summarised in ``docs/SOURCES.md``:

==========================  =================================  ==================================
period                      July - September                   other months
==========================  =================================  ==================================
valley                      22-06                              22-06
flat                        06-08, 15-18, 21-22                06-08, 11-18, 21-22
peak                        08-15, 18-21                       08-11, 18-21
critical peak               12-14 in July and August           19-21 in January and December
==========================  =================================  ==================================

(the January/December critical peak is from a secondary source).  Prices
are multipliers on the flat price P: in January, July, August, September and
December peak 1.8 P, valley 0.4 P, critical peak 2.25 P; in the other months
peak 1.6 P, valley 0.5 P.  Hours are Shanghai wall-clock time (UTC+8) at the
start of each interval, whatever time zone the index carries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vpp.exogenous.config import TariffConfig

__all__ = ["TOU_PERIODS", "TARIFF_TZ", "tou_period", "tou_multiplier", "shanghai_tou_prices"]

#: Period names, cheapest first.
TOU_PERIODS = ("valley", "flat", "peak", "critical")
#: The tariff's clock.
TARIFF_TZ = "Asia/Shanghai"

_VALLEY, _FLAT, _PEAK, _CRITICAL = range(4)


def _hour_table() -> np.ndarray:
    """Period code per (month 1..12, hour 0..23), shape (13, 24); row 0 unused."""
    table = np.full((13, 24), _FLAT, dtype=np.int8)
    table[:, list(range(0, 6)) + [22, 23]] = _VALLEY
    for month in range(1, 13):
        summer = month in (7, 8, 9)
        table[month, list(range(8, 15 if summer else 11)) + [18, 19, 20]] = _PEAK
        if month in (7, 8):
            table[month, [12, 13]] = _CRITICAL
        if month in (1, 12):
            table[month, [19, 20]] = _CRITICAL
    return table


def _month_multipliers() -> np.ndarray:
    """Price multiplier per (month 1..12, period code), shape (13, 4); row 0 unused."""
    m = np.zeros((13, 4))
    for month in range(1, 13):
        high = month in (1, 7, 8, 9, 12)
        m[month] = (0.4, 1.0, 1.8, 2.25) if high else (0.5, 1.0, 1.6, np.nan)
    return m


def _codes(index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    if index.tz is None:
        raise ValueError("the tariff needs tz-aware timestamps")
    local = index.tz_convert(TARIFF_TZ)
    month = local.month.to_numpy()
    return month, _hour_table()[month, local.hour.to_numpy()]


def tou_period(index: pd.DatetimeIndex) -> np.ndarray:
    """Time-of-use period of each interval (by its start).

    Parameters
    ----------
    index : DatetimeIndex
        Interval starts, tz-aware.

    Returns
    -------
    ndarray of str
        One of ``"valley"``, ``"flat"``, ``"peak"``, ``"critical"`` per step.
    """
    _, codes = _codes(index)
    return np.asarray(TOU_PERIODS)[codes]


def tou_multiplier(index: pd.DatetimeIndex) -> np.ndarray:
    """Price multiplier on the flat price of each interval (by its start). [-]"""
    month, codes = _codes(index)
    return _month_multipliers()[month, codes]


def shanghai_tou_prices(
    index: pd.DatetimeIndex, config: TariffConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Import and export energy prices per step under the Shanghai C&I TOU tariff.

    Parameters
    ----------
    index : DatetimeIndex
        Interval starts, tz-aware.
    config : TariffConfig
        ``flat_price_cny_per_kwh`` (P) and ``export_price_cny_per_kwh``.

    Returns
    -------
    price_import_cny_per_kwh : ndarray
        Multiplier times P. [CNY/kWh]
    price_export_cny_per_kwh : ndarray
        The flat feed-in price. [CNY/kWh]
    """
    price_import = tou_multiplier(index) * config.flat_price_cny_per_kwh
    price_export = np.full(len(index), config.export_price_cny_per_kwh)
    return price_import, price_export
