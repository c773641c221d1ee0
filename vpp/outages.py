"""Random outages of assets (``[outages.<fleet>]``): a site's inverter trips, a battery's
converter fails, a building's chiller breaks down.

Each asset alternates between working and down periods of exponential length
(means ``mtbf_h`` and ``mttr_h``: an alternating renewal process, the one the
wind fleet's turbine outages draw too), starting in the stationary distribution
(up at the start with probability ``mtbf / (mtbf + mttr)``), drawn once per
run from ``component_rng(seed, "outages:<fleet>")``.  A step's asset is down when an
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


FEW_PERIODS = 64     # draws per asset below which drawing one by one is faster than in blocks


def _one_by_one(up_first: np.ndarray, mtbf: float, mttr: float, horizon: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_alternating_periods`, one draw at a time (few periods per asset)."""
    assets, starts, ends = [], [], []
    for i, up in enumerate(up_first):
        t, up = 0.0, bool(up)
        while t < horizon:
            d = rng.exponential(mtbf if up else mttr)
            if not up:
                assets.append(i)
                starts.append(t)
                ends.append(t + d)
            t, up = t + d, not up
    return np.asarray(assets, dtype=np.int64), np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)


def _alternating_periods(up_first: np.ndarray, mtbf: float, mttr: float, horizon: float,
                         rng: np.random.Generator, few: int = FEW_PERIODS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each asset's down periods ``(asset, start, end)`` over ``[0, horizon)``, in steps.

    Asset by asset, periods alternate from its first state, each exponential with
    mean *mtbf* (up) or *mttr* (down), until one ends at or after *horizon* (the
    residual life of an exponential is exponential: the same draws at t = 0).
    The draws are taken from a copy of *rng* in blocks, then *rng* is advanced by
    exactly the draws used: the same periods and the same stream as drawing them
    one by one (:func:`_one_by_one`, used up to *few* draws per asset), without a
    Python step per period: an asset failing hourly for a year has 7,000.
    """
    first = int(2 * horizon / (mtbf + mttr)) + 4                          # draws tried first per asset
    if first <= few:
        return _one_by_one(up_first, mtbf, mttr, horizon, rng)
    probe = np.random.Generator(type(rng.bit_generator)())
    probe.bit_generator.state = rng.bit_generator.state
    block = max(4096, 16 * first)                                          # draws taken from the copy at once
    pool, used = probe.standard_exponential(block), 0
    assets, starts, ends = [], [], []
    for i, up in enumerate(up_first):
        m = first
        while True:
            if used + m > len(pool):
                pool = np.concatenate([pool[used:], probe.standard_exponential(max(block, m))])
                rng.standard_exponential(used)                               # what was used, consumed
                used = 0
            is_up = (np.arange(m) % 2 == 0) == up
            t = np.cumsum(pool[used:used + m] * np.where(is_up, mtbf, mttr))  # sequential, as t += d
            k = int(np.searchsorted(t, horizon, side="left"))               # the draw that reaches it
            if k < m:
                break
            m *= 2
        down = ~is_up[:k + 1]
        assets.append(np.full(int(down.sum()), i, dtype=np.int64))
        starts.append(np.concatenate([[0.0], t[:k]])[down])
        ends.append(t[:k + 1][down])
        used += k + 1
    rng.standard_exponential(used)
    cat = (lambda xs, dtype: np.concatenate(xs) if xs else np.zeros(0, dtype=dtype))  # noqa: E731
    return cat(assets, np.int64), cat(starts, float), cat(ends, float)


class OutageDraw:
    """The down periods of *n* assets over *n_steps* steps.

    Parameters
    ----------
    n : int
        Assets.
    mtbf_steps, mttr_steps : float
        Mean working and down periods, in steps.
    n_steps : int
        Steps to draw.
    rng : numpy.random.Generator
        Drawn in this order: the start states, then each asset's periods.
    availability : float, optional
        The probability of starting up (default ``mtbf / (mtbf + mttr)``, the
        long-run share; the wind fleet gives its ``availability_frac``).
    """

    def __init__(self, n: int, mtbf_steps: float, mttr_steps: float, n_steps: int, rng: np.random.Generator,
                 availability: float | None = None):
        self.n = n
        a = mtbf_steps / (mtbf_steps + mttr_steps) if availability is None else availability
        up_first = rng.random(n) < a                                       # the stationary distribution
        self.asset, starts, ends = _alternating_periods(up_first, mtbf_steps, mttr_steps, n_steps, rng)
        self.start_step = np.ceil(starts).astype(np.int64)                # down at a step's start
        self.end_step = np.ceil(ends).astype(np.int64)
        keep = self.end_step > self.start_step
        self.asset, self.start_step, self.end_step = self.asset[keep], self.start_step[keep], self.end_step[keep]

    def up_mask(self, k0: int, n: int) -> np.ndarray:
        """Whether each asset is up at each step ``k0 .. k0+n-1``, shape (assets, n)."""
        up = np.ones((self.n, n), dtype=bool)
        hit = (self.end_step > k0) & (self.start_step < k0 + n)
        for i, s, e in zip(self.asset[hit], self.start_step[hit], self.end_step[hit], strict=True):
            up[i, max(s, k0) - k0: min(e, k0 + n) - k0] = False
        return up

    def down(self, k: int) -> np.ndarray:
        """Whether each asset is down at step *k*, shape (assets,)."""
        return ~self.up_mask(k, 1)[:, 0]

    def table(self, fleet: str, index: pd.DatetimeIndex) -> pd.DataFrame:
        """Every outage that started before the run's end: fleet, asset, start and end times."""
        n_steps = len(index)
        step = index[1] - index[0] if n_steps > 1 else pd.Timedelta(0)
        within = self.start_step < n_steps
        start = index[0] + step * self.start_step[within]
        return pd.DataFrame({"fleet": fleet, "asset": self.asset[within], "start": start,
                             "end": index[0] + step * self.end_step[within]})
