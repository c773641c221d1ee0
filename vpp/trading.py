"""A run's day-ahead trading (orchestration): prices, gate closures and the
committed position, tabled for the settlement after the run (:mod:`vpp.market`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from vpp.exogenous import Exogenous
from vpp.exogenous.csvsource import read_market_csv
from vpp.market import PriceShape, generate_prices
from vpp.rng import component_rng
from vpp.scenario import Scenario

__all__ = ["Trading"]


class Trading:
    """Day-ahead trading of one run.

    Parameters
    ----------
    scenario : Scenario
        With ``market.mode = "two_settlement"``.
    exogenous : Exogenous
        The run's weather (prices are generated from it), on the padded timeline.
    """

    def __init__(self, scenario: Scenario, exogenous: Exogenous):
        cfg, self.timeline = scenario.market, scenario.timeline()
        self.cfg = cfg
        shape = PriceShape(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(PriceShape)})
        if cfg.price_csv is not None:
            self.da, self.rt = read_market_csv(scenario.resolve_path(cfg.price_csv), exogenous.index,
                                               self.timeline.step_s)
        else:
            self.da, self.rt = generate_prices(exogenous.index, exogenous.ghi_w_m2, exogenous.temp_air_c, shape,
                                               component_rng(scenario.seed, "market/prices"))
        self.position_kw = np.full(self.timeline.n_total, np.nan)

    def gates(self) -> list[tuple[int, int, int]]:
        """(gate-closure step, first and end step of the day it commits), in order:
        each day of the run is committed at ``gate_closure_hour`` the day before,
        or at the run's start if that is earlier."""
        tl, out = self.timeline, []
        step = pd.Timedelta(seconds=tl.step_s)
        for day in tl.index.normalize().unique():
            d0 = int((max(day, tl.start) - tl.start) / step)
            d1 = min(int((day + pd.Timedelta(days=1) - tl.start) / step), tl.n_steps)
            gate = day - pd.Timedelta(days=1) + pd.Timedelta(hours=self.cfg.gate_closure_hour)
            out.append((max(int(np.ceil((gate - tl.start) / step)), 0), d0, d1))
        return out

    def commit(self, d0: int, d1: int, schedule_kw: np.ndarray) -> None:
        """Fix the position of steps ``d0 .. d1 - 1`` (VPP net import). [kW]"""
        if np.isfinite(self.position_kw[d0:d1]).any():
            raise RuntimeError(f"steps {d0}..{d1 - 1} are already committed: a position is fixed at gate closure")
        self.position_kw[d0:d1] = np.asarray(schedule_kw, dtype=float)

    def table(self, import_kw: np.ndarray) -> pd.DataFrame:
        """Per step of the run: prices, position, metered net import, and the
        band's tolerance and penalty (constant columns, so the table settles alone)."""
        n = len(import_kw)
        return pd.DataFrame({"da_cny_per_kwh": self.da[:n], "rt_cny_per_kwh": self.rt[:n],
                             "position_kw": self.position_kw[:n], "metered_kw": np.asarray(import_kw, dtype=float),
                             "tolerance_frac": self.cfg.tolerance_frac,
                             "penalty_cny_per_kwh": self.cfg.penalty_cny_per_kwh},
                            index=self.timeline.index[:n])
