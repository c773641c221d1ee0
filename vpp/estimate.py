"""How long a run will take on this machine, measured before it starts.

A run's time depends on the machine, the fleets and the strategy (an LP per
dispatch, or a rule), so no table of constants predicts it well.
:func:`estimate_run_time` measures it instead.  It times the scenario's first
day and its first three days, without demand-response calls, once with the
baseline alone and once with the strategy (which :func:`vpp.run` runs with
the baseline), and fits ``t(d) = setup + per_day * d`` through each pair.
The fits are extrapolated to the run's length, and the simulations that
demand response adds are costed at the same pace: ``history_days`` before
the run (by the baseline, or with ``history = "strategy"`` by both) and,
with ``counterfactual = "strategy"``, the strategy's run once more without
the calls.  A scenario with a call generator is costed as if it made calls.
A run of three days or less is simply timed: the probe would be the run.

What the estimate leaves out: writing the results and the report (``vpp
run`` after the simulation); days that cost more than the first three (a
summer of air conditioners after a spring, outages that start later).  The
probes clear the baseline cache (:func:`vpp.clear_cache`).
``benchmarks/run_time_estimate.py`` compares estimates with the runs they
estimate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from vpp.progresslog import duration
from vpp.scenario import DRConfig, Scenario

__all__ = ["RunTimeEstimate", "estimate_run_time", "PROBE_DAYS"]

PROBE_DAYS = (1, 3)      # the two probes' lengths [d]


@dataclasses.dataclass(frozen=True)
class RunTimeEstimate:
    """A run's wall time on this machine, from probes of its first days.

    Attributes
    ----------
    total_s : float
        Estimated wall time of :func:`vpp.run`. [s]
    setup_s : float
        Fixed part: building the weather, fleets and strategies. [s]
    per_day_s : float
        Each simulated day of the run, the strategy's and the baseline's. [s/d]
    dr_s : float
        The simulations demand response adds (history days, counterfactual). [s]
    days : float
        Simulated days of the run. [d]
    timed_whole : bool
        The run was short enough to be timed whole (``total_s`` measured).
    """

    total_s: float
    setup_s: float
    per_day_s: float
    dr_s: float
    days: float
    timed_whole: bool = False

    def __str__(self) -> str:
        if self.timed_whole:
            return f"{duration(self.total_s)} (the whole run, timed)"
        dr = f", {duration(self.dr_s)} for demand response's extra simulations" if self.dr_s else ""
        return (f"about {duration(self.total_s)} for {self.days:g} days ({duration(self.setup_s)} to set up, "
                f"{duration(self.per_day_s)} per simulated day{dr})")


def _first_days(scenario: Scenario, days: float) -> Scenario:
    """*scenario* cut to its first *days* (a whole number of steps: a step divides a
    day), without demand-response calls."""
    time_ = scenario.time.model_copy(update={"end": scenario.time.start + dt.timedelta(days=days)})
    return scenario.model_copy(update={"time": time_, "dr": DRConfig()})


def _fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """``(setup, per_day)`` of the line through two ``(days, seconds)`` points, neither negative."""
    (d1, t1), (d2, t2) = points
    per_day = max((t2 - t1) / (d2 - d1), 0.0)
    return max(t1 - per_day * d1, 0.0), per_day


def estimate_run_time(scenario: str | Path | Scenario | None = None, strategy: str | None = None, *,
                      clock: Callable[[], float] = time.perf_counter) -> RunTimeEstimate:
    """Estimate how long ``vpp.run(scenario, strategy)`` takes here, by timing its first days.

    Parameters
    ----------
    scenario, strategy
        As for :func:`vpp.run` (a strategy given by name).
    clock : callable
        Wall clock (for tests).

    Raises
    ------
    ScenarioError
        For whatever :func:`vpp.validate` refuses, before anything is timed.
    """
    from vpp import api

    sc = api.validate(scenario, strategy)
    days = (sc.time.end_ts - sc.time.start_ts) / dt.timedelta(days=1)

    def timed(s: Scenario, name: str | None) -> float:
        api.clear_cache()
        t0 = clock()
        api.run(s, name)
        return clock() - t0

    if days <= PROBE_DAYS[-1]:
        return RunTimeEstimate(timed(sc, strategy), 0.0, 0.0, 0.0, days, timed_whole=True)
    name = strategy or sc.strategy.name
    probes = [_first_days(sc, d) for d in PROBE_DAYS]
    setup_b, baseline = _fit([(d, timed(p, api.BASELINE)) for d, p in zip(PROBE_DAYS, probes, strict=True)])
    if name == api.BASELINE:
        setup, both, own = setup_b, baseline, 0.0
    else:
        setup, both = _fit([(d, timed(p, name)) for d, p in zip(PROBE_DAYS, probes, strict=True)])
        own = max(both - baseline, 0.0)                         # the strategy's own part of a day
    dr = _dr_extra_s(sc.dr, days, own, baseline, setup_b)
    return RunTimeEstimate(setup + both * days + dr, setup, both, dr, days)


def _dr_extra_s(dr: DRConfig, days: float, own: float, baseline: float, setup: float) -> float:
    """The simulations demand response adds, at the probes' pace: history days
    and the strategy's counterfactual run (see the module docstring). [s]"""
    if not (dr.events or dr.events_csv or dr.generator):
        return 0.0
    extra = 0.0
    if dr.history in ("baseline", "strategy"):
        extra += setup + baseline * dr.history_days
    if dr.history == "strategy" and own:
        extra += setup + own * dr.history_days
    if dr.counterfactual == "strategy" and own:
        extra += setup + own * days
    return extra
