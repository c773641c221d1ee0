"""A two-settlement electricity market: day-ahead position, real-time deviations (vocabulary).

The VPP commits a day-ahead schedule of its net import for each 15-minute step
of day D at gate closure on D-1; the position is settled at the day-ahead price
and every deviation of the metered net import from it at the real-time price,
plus a penalty on the part of the deviation outside a tolerance band -- the
structure of China's provincial spot-market pilots (DOMAIN.md; Shanghai's exact
parameters were not found, so every number is a parameter).

:func:`generate_prices` draws day-ahead and real-time prices with labelled
assumptions; :func:`settle_market` settles a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

__all__ = ["PriceShape", "MarketSettlement", "generate_prices", "settle_market", "market_steps"]


@dataclass(frozen=True)
class PriceShape:
    """How generated prices follow the net load (every default an assumption).

    Parameters
    ----------
    mean_cny_per_kwh : float
        Level of the day-ahead price (Shanghai's coal benchmark 0.4155 CNY/kWh
        is its reference). [CNY/kWh]
    evening_peak_frac : float
        Rise at the evening peak (18-22 h), as a share of the level. [-]
    solar_dip_frac : float
        Fall at 1,000 W/m2 of irradiance, as a share of the level; above 1 +
        the evening term a sunny midday price goes negative. [-]
    heat_frac_per_k : float
        Rise per kelvin of air temperature above 26 degC (cooling load). [1/K]
    rt_noise_frac : float
        Standard deviation of the real-time price around the day-ahead price,
        as a share of the level. [-]
    rt_noise_h : float
        Correlation time of the real-time deviation (AR(1)). [h]
    """

    mean_cny_per_kwh: float = 0.4155
    evening_peak_frac: float = 0.5
    solar_dip_frac: float = 0.9
    heat_frac_per_k: float = 0.03
    rt_noise_frac: float = 0.15
    rt_noise_h: float = 2.0


def _evening(hour: np.ndarray) -> np.ndarray:
    """1 from 18 to 22 h, ramps of an hour either side, 0 otherwise. [-]"""
    return np.clip(np.minimum(hour - 17.0, 23.0 - hour), 0.0, 1.0)


def generate_prices(index: pd.DatetimeIndex, ghi_w_m2: np.ndarray, temp_air_c: np.ndarray, shape: PriceShape,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Day-ahead and real-time prices per step, shaped by the net load.

    ``da = mean (1 + evening_peak evening(h) - solar_dip ghi/1000 + heat max(T - 26, 0))``;
    ``rt = da + mean rt_noise e`` with ``e`` a unit AR(1) series of correlation
    time ``rt_noise_h``.  Low or negative midday prices when the sun is high,
    dear evenings and hot afternoons: what net load does to spot prices.
    Returns ``(da, rt)``, each shape (len(index),). [CNY/kWh]
    """
    hour = (index.hour + index.minute / 60.0).to_numpy()
    ghi, temp = np.asarray(ghi_w_m2, dtype=float), np.asarray(temp_air_c, dtype=float)
    m = shape.mean_cny_per_kwh
    da = m * (1.0 + shape.evening_peak_frac * _evening(hour) - shape.solar_dip_frac * ghi / 1000.0
              + shape.heat_frac_per_k * np.maximum(temp - 26.0, 0.0))
    step_h = (index[1] - index[0]).total_seconds() / 3600.0 if len(index) > 1 else 1.0
    phi = np.exp(-step_h / shape.rt_noise_h)
    w = rng.standard_normal(len(index))
    w[1:] *= np.sqrt(1.0 - phi**2)                 # e[0] ~ N(0, 1): the series starts stationary
    e = lfilter([1.0], [1.0, -phi], w)
    return da, da + m * shape.rt_noise_frac * e


@dataclass(frozen=True)
class MarketSettlement:
    """A run's two-settlement result, totals over the steps [CNY, kWh]."""

    day_ahead_cny: float
    real_time_cny: float
    penalty_cny: float
    deviation_kwh: float
    penalised_kwh: float

    @property
    def net_cny(self) -> float:
        return self.day_ahead_cny + self.real_time_cny + self.penalty_cny


def market_steps(position_kw: np.ndarray, metered_kw: np.ndarray, da_cny_per_kwh: np.ndarray,
                 rt_cny_per_kwh: np.ndarray, dt_h: float, tolerance_frac: float,
                 penalty_cny_per_kwh: float) -> dict[str, np.ndarray]:
    """Each step's two-settlement items (both powers VPP import positive): ``position x da``,
    ``(metered - position) x rt``, ``penalty x max(|metered - position| - tolerance |position|, 0)``,
    each times the step length [CNY]; the deviation and its penalised part [kWh]."""
    p, q = np.asarray(position_kw, dtype=float), np.asarray(metered_kw, dtype=float)
    dev = q - p
    outside = np.maximum(np.abs(dev) - tolerance_frac * np.abs(p), 0.0)
    return {"day_ahead_cny": p * da_cny_per_kwh * dt_h, "real_time_cny": dev * rt_cny_per_kwh * dt_h,
            "penalty_cny": penalty_cny_per_kwh * outside * dt_h, "deviation_kwh": np.abs(dev) * dt_h,
            "penalised_kwh": outside * dt_h}


def settle_market(position_kw: np.ndarray, metered_kw: np.ndarray, da_cny_per_kwh: np.ndarray,
                  rt_cny_per_kwh: np.ndarray, dt_h: float, tolerance_frac: float,
                  penalty_cny_per_kwh: float) -> MarketSettlement:
    """Settle a day-ahead position and the metered net import over the run: the
    sums of :func:`market_steps`."""
    steps = market_steps(position_kw, metered_kw, da_cny_per_kwh, rt_cny_per_kwh, dt_h, tolerance_frac,
                         penalty_cny_per_kwh)
    return MarketSettlement(**{name: float(v.sum()) for name, v in steps.items()})
