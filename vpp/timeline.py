"""Simulation time: a regular grid of steps with tz-aware timestamps.

Convention: a step's value is the mean over the interval that *starts* at its
timestamp.  Engine time is seconds from the scenario start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Timeline", "calendar_months"]


@dataclass(frozen=True)
class Timeline:
    """Steps ``start, start + step, ...`` up to (excluding) ``end``, plus padding.

    The padding (``pad_steps``) extends exogenous series beyond ``end`` so that
    the dispatcher's rolling horizon has forecasts for its last windows.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    step_s: int
    pad_steps: int = 0

    def __post_init__(self):
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Timeline needs tz-aware start and end")

    @property
    def dt_h(self) -> float:
        """Step length [h]."""
        return self.step_s / 3600.0

    @property
    def n_steps(self) -> int:
        """Number of simulated steps (without padding)."""
        return int((self.end - self.start).total_seconds() // self.step_s)

    @property
    def n_total(self) -> int:
        """Simulated steps plus horizon padding."""
        return self.n_steps + self.pad_steps

    @property
    def index(self) -> pd.DatetimeIndex:
        """Timestamps of the simulated steps (interval starts), tz-aware."""
        return pd.date_range(self.start, periods=self.n_steps, freq=pd.Timedelta(seconds=self.step_s))

    @property
    def padded_index(self) -> pd.DatetimeIndex:
        """Timestamps of simulated and padding steps."""
        return pd.date_range(self.start, periods=self.n_total, freq=pd.Timedelta(seconds=self.step_s))

    def step_of(self, t_s: float) -> int:
        """Index of the step containing engine time *t_s* [s]."""
        return int(np.floor(t_s / self.step_s + 1e-9))

    def time_of(self, k: int) -> pd.Timestamp:
        """Timestamp at the start of step *k*."""
        return self.start + pd.Timedelta(seconds=k * self.step_s)


def calendar_months(index: pd.DatetimeIndex, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
    """The local calendar months a run's steps fall in, for a monthly bill.

    Returns ``(month, share)``: per step, the number of its month in the run
    (0, 1, ...); per month, the share of that calendar month the run covers
    (1 for a whole month; a week of July is 168 / 744).  [-]"""
    periods = index.tz_localize(None).to_period("M") if index.tz is not None else index.to_period("M")
    month, uniques = pd.factorize(periods)
    covered_h = np.bincount(month, minlength=len(uniques)) * dt_h
    return month, covered_h / (np.asarray(uniques.days_in_month, dtype=float) * 24.0)
