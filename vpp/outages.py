"""Random outages of assets (``[outages.<fleet>]``): a site's inverter trips, a battery's
converter fails, a building's chiller breaks down.

Each asset alternates between working and down periods of exponential length
(means ``mtbf_h`` and ``mttr_h``: an alternating renewal process, as the wind
fleet's turbine outages), starting in the stationary distribution (down at the
start with probability ``mttr / (mtbf + mttr)``), drawn once per run from
``component_rng(seed, "outages:<fleet>")``.  A step's asset is down when an
outage covers the step's start.

While an asset is down the fleet's :meth:`~vpp.assets.base.Fleet.set_outage`
takes away what the outage stops: a battery's converter (no charge or
discharge; its energy only self-discharges), a building's HVAC plant (the room
drifts; the base load runs on), a PV system's output.  The strategy learns of
an outage through telemetry: at the first dispatch after it starts, or
``[comms] telemetry_delay_min`` later, and plans with the asset out for the
rest of its horizon (it does not know when the repair ends).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["OutageDraw"]


class OutageDraw:
    """The down periods of *n* assets over *n_steps* steps.

    Parameters
    ----------
    n : int
        Assets.
    mtbf_h, mttr_h : float
        Mean working and down periods. [h]
    step_h : float
        Step length. [h]
    n_steps : int
        Steps of the run.
    rng : numpy.random.Generator
    """

    def __init__(self, n: int, mtbf_h: float, mttr_h: float, step_h: float, n_steps: int,
                 rng: np.random.Generator):
        self.n = n
        mtbf, mttr = mtbf_h / step_h, mttr_h / step_h                       # in steps
        down_first = rng.random(n) < mttr / (mtbf + mttr)
        assets, starts, ends = [], [], []
        for i in range(n):
            t, up = 0.0, not down_first[i]
            while t < n_steps:
                d = rng.exponential(mtbf if up else mttr)
                if not up:
                    assets.append(i)
                    starts.append(t)
                    ends.append(t + d)
                t, up = t + d, not up
        self.asset = np.asarray(assets, dtype=np.int64)
        self.start_step = np.ceil(np.asarray(starts, dtype=float)).astype(np.int64)   # down at a step's start
        self.end_step = np.ceil(np.asarray(ends, dtype=float)).astype(np.int64)
        keep = self.end_step > self.start_step
        self.asset, self.start_step, self.end_step = self.asset[keep], self.start_step[keep], self.end_step[keep]

    def down(self, k: int) -> np.ndarray:
        """Whether each asset is down at step *k*, shape (n,)."""
        active = (self.start_step <= k) & (k < self.end_step)
        mask = np.zeros(self.n, dtype=bool)
        mask[self.asset[active]] = True
        return mask

    def table(self, fleet: str, index: pd.DatetimeIndex) -> pd.DataFrame:
        """Every outage that started before the run's end: fleet, asset, start and end times."""
        n_steps = len(index)
        step = index[1] - index[0] if n_steps > 1 else pd.Timedelta(0)
        within = self.start_step < n_steps
        start = index[0] + step * self.start_step[within]
        return pd.DataFrame({"fleet": fleet, "asset": self.asset[within], "start": start,
                             "end": index[0] + step * self.end_step[within]})
