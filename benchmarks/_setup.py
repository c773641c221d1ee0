"""Shared set-up for benchmarks: an engine on a scenario, ready to step."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from vpp import api
from vpp.assets import FLEET_TYPES, FleetContext
from vpp.engine import Engine
from vpp.exogenous import Forecaster, build_exogenous
from vpp.rng import component_rng

__all__ = ["engine_for", "median_time", "scenario_over"]


def scenario_over(path, start: str, days: int):
    """The scenario file *path* with its time set to *days* days from *start*."""
    import pandas as pd

    from vpp.scenario import read_scenario_dict, scenario_from_dict

    path = Path(path)
    d = read_scenario_dict(path)
    t0 = pd.Timestamp(start)
    d["time"]["start"], d["time"]["end"] = t0.to_pydatetime(), (t0 + pd.Timedelta(days=days)).to_pydatetime()
    return scenario_from_dict(d, str(path), path.parent)


def engine_for(scenario, strategy: str = "source_follows_load") -> Engine:
    """An :class:`Engine` with freshly built fleets (nothing simulated yet)."""
    sc = api.load(scenario)
    prep = api._prepare(sc, "<benchmark>")
    exo = build_exogenous(sc)
    fleets = [FLEET_TYPES[f.type](FleetContext(f.name, f.node, f.count, component_rng(sc.seed, f"fleet/{f.name}"),
                                                sc.timeline(), exo), params)
              for f, params in zip(sc.fleets, prep.fleet_params, strict=True)]
    return Engine(sc, fleets, api._strategy(prep, strategy), exo, Forecaster(sc.forecast, sc.seed))


def median_time(fn, repeats: int = 3) -> tuple[float, object]:
    """Median wall time of *repeats* calls of *fn* and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out
