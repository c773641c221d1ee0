"""Carbon intensity of grid electricity per step.

No official hourly emission-factor series exists for Shanghai or the East
China grid (``docs/SOURCES.md``).  The profile here is a stated **modelling
choice** (assumption): the annual factor (Shanghai 2022 average
0.5849 kg/kWh, secondary; or the fossil-only 2022 factor 0.8325 kg/kWh,
official, as a marginal proxy) times a daily shape that is lowest at 13:00,
when East China's solar output displaces thermal generation, and highest at
20:00, when the evening load is served by thermal units after sunset::

    c(t) = F (1 + A s(h))

with F the factor [kg/kWh], A = ``diurnal_amplitude_frac`` and s a periodic
shape of hour of day h made of two half-cosines, -1 at 13:00 and +1 at
20:00, whose integral over any 24 h is zero.  Each step's value is the exact
mean of c over its interval (the shape's integral is closed-form), so the mean
over any whole day of steps equals F exactly, whatever the step length.
Hours are wall-clock time in the index's time zone (the scenario's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vpp.exogenous.config import CarbonConfig

__all__ = ["LOW_HOUR", "HIGH_HOUR", "diurnal_shape_mean", "carbon_factor", "carbon_profile"]

#: Hour of day of the lowest and the highest intensity (assumption). [h]
LOW_HOUR = 13.0
HIGH_HOUR = 20.0


def _primitive(h: np.ndarray) -> np.ndarray:
    """Integral of the shape from LOW_HOUR to h, periodic in 24 h. [h]"""
    rise = HIGH_HOUR - LOW_HOUR
    fall = 24.0 - rise
    x = np.mod(np.asarray(h, float) - LOW_HOUR, 24.0)
    up = -rise / np.pi * np.sin(np.pi * x / rise)
    down = fall / np.pi * np.sin(np.pi * (x - rise) / fall)
    return np.where(x <= rise, up, down)


def diurnal_shape_mean(hour_start: np.ndarray, step_h: float) -> np.ndarray:
    """Mean of the daily shape s over ``[hour_start, hour_start + step_h)``. [-]

    Parameters
    ----------
    hour_start : ndarray
        Hour of day at the start of each interval, 0..24. [h]
    step_h : float
        Interval length, 0 < step_h <= 24. [h]

    Returns
    -------
    ndarray
        Values in [-1, 1]; the means over the steps of any whole day sum to zero.
    """
    if step_h >= 24.0:
        return np.zeros(np.shape(hour_start))
    h0 = np.asarray(hour_start, float)
    return (_primitive(h0 + step_h) - _primitive(h0)) / step_h


def carbon_factor(config: CarbonConfig) -> float:
    """The annual factor F the profile varies around. [kg/kWh]"""
    return config.average_kg_per_kwh if config.factor == "average" else config.marginal_kg_per_kwh


def carbon_profile(index: pd.DatetimeIndex, step_s: float, config: CarbonConfig) -> np.ndarray:
    """Carbon intensity per step, the mean over each interval. [kg/kWh]

    Parameters
    ----------
    index : DatetimeIndex
        Interval starts, tz-aware.
    step_s : float
        Interval length. [s]
    config : CarbonConfig
        ``factor`` ("average" or "marginal"), the two factors and
        ``diurnal_amplitude_frac``.

    Returns
    -------
    ndarray
        ``F (1 + A s)`` per step; see the module notes.
    """
    hour = index.hour.to_numpy() + index.minute.to_numpy() / 60.0 + index.second.to_numpy() / 3600.0
    shape = diurnal_shape_mean(hour, step_s / 3600.0)
    return carbon_factor(config) * (1.0 + config.diurnal_amplitude_frac * shape)
