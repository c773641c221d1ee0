"""``source_load_interaction``: centralised optimal dispatch (源荷互动).

Every asset gets its own variables in one Pyomo LP (:mod:`.model`), solved
by HiGHS over a rolling horizon: the model is built and compiled once, and
each window updates forecasts, prices and initial states in the persistent
HiGHS model.  It minimises energy cost + CO2 cost + a curtailment premium,
subject to node limits and every asset's service constraints (comfort, EV
energy by departure, storage limits), with penalised slacks so that every
window is feasible.  A window that HiGHS does not solve to optimality falls
back to the uncontrolled baseline for that interval, and is recorded.
"""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Callable, Literal

import numpy as np
from pydantic import Field

from vpp.dispatch import Decision, DispatchProblem
from vpp.dr import DREvent, block_terms
from vpp.optimizer.base import Strategy, StrategyOptions, register
from vpp.optimizer.lp import SolverOptions
from vpp.optimizer.model import DispatchModel, Weights, signature

__all__ = ["InteractionOptions", "SourceLoadInteraction"]


class InteractionOptions(StrategyOptions):
    """Options of ``source_load_interaction``."""

    # China national ETS prices were about 90-100 CNY/t in 2024 (secondary; assumption).
    carbon_price_cny_per_t: float = Field(100.0, ge=0)
    curtailment_penalty_cny_per_kwh: float = Field(0.05, ge=0)
    """Premium the objective gives each kWh of PV and wind output used rather than curtailed, so green
    power is curtailed only where absorbing it would cost more than this, e.g. where an export limit
    binds (assumption)."""
    limit_violation_cny_per_kwh: float = Field(10.0, ge=0)
    """Penalty on exchange beyond a node's import or export limit, the VPP's exchange limits or its ramp
    limit: the slacks that keep every window feasible, reported per window.  Far above the default tariff's
    prices (critical peak 1.575 CNY/kWh), so limits give way only where nothing else can keep them
    (assumption)."""
    energy_cost_weight: float = Field(1.0, ge=0)          # 0: ignore the tariff
    peak_weight: float = Field(1.0, ge=0)                 # weight of the demand charge
    export_penalty_cny_per_kwh: float = Field(0.0, ge=0)  # green-power local consumption term
    solver: Literal["ipm", "simplex"] = "ipm"
    """HiGHS method: ``"ipm"``, interior point without crossover, the fastest setting measured
    (docs/SOLVER.md), retried with dual simplex where it ends without a proven optimum; ``"simplex"``,
    dual simplex (vertex solutions, warm-started between windows)."""
    time_limit_s: float = Field(60.0, gt=0)
    """HiGHS time limit for each solve; a window not solved to optimality falls back to the uncontrolled
    baseline for its interval, and is recorded (assumption)."""
    # where selling earns more than buying costs: a local search over the sign of
    # each account's exchange (fast), or HiGHS's MIP over it (global, many times slower)
    settlement_choice: Literal["sign_search", "mip"] = "sign_search"


@register
class SourceLoadInteraction(Strategy):
    """Centralised optimal dispatch of every asset (rolling horizon, Pyomo + HiGHS).

    Parameters
    ----------
    options : InteractionOptions
    extra_constraints : callable, optional
        ``extra_constraints(model, problem)``: add Pyomo constraints to the
        model before it is compiled.
    """

    name = "source_load_interaction"
    Options = InteractionOptions

    def __init__(self, options: InteractionOptions | None = None, extra_constraints: Callable | None = None):
        super().__init__(options)
        o = self.options
        # every Weights field from the option of the same name
        self.weights = Weights(**{w.name: getattr(o, w.name) for w in fields(Weights) if hasattr(o, w.name)})
        self.solver = SolverOptions(solver=o.solver, time_limit_s=o.time_limit_s,
                                    settlement_choice=o.settlement_choice)
        self.extra_constraints = extra_constraints
        self.model: DispatchModel | None = None

    def solve_window(self, problem: DispatchProblem) -> tuple[str, float, float]:
        """Build the persistent model (first window, or a new structure) or update it,
        then solve; returns (status, build seconds, solve seconds)."""
        t0 = time.perf_counter()
        if self.model is None or signature(problem) != self.model.signature:
            self.model = DispatchModel(problem, self.weights, self.solver, self.extra_constraints)
        else:
            self.model.update(problem)
        build_s = time.perf_counter() - t0
        status, solve_s = self.model.solve()
        return status, build_s, solve_s

    def decision(self, status: str, build_s: float, solve_s: float, setpoints=None, metrics=None) -> Decision:
        """The window's Decision: a fallback unless *status* is optimal."""
        lp = self.model.lp
        if not status.startswith("optimal"):
            return Decision(status=status, fallback=True, build_time_s=build_s, solve_time_s=solve_s,
                            n_variables=lp.n_cols, n_constraints=lp.n_rows)
        return Decision(setpoints=setpoints, status=status, build_time_s=build_s, solve_time_s=solve_s,
                        objective_cny=self.model.objective_cny, n_variables=lp.n_cols, n_constraints=lp.n_rows,
                        metrics=metrics or {})

    def planning_problem(self, problem: DispatchProblem) -> DispatchProblem:
        """The problem this strategy's model solves for *problem* (itself here)."""
        return problem

    def bid_kw(self, problem: DispatchProblem, event: DREvent) -> float | None:
        """Offer what the plan at the notice delivers: the window is solved with
        the call at its requested capacity, and the bid is the mean paid delivery
        the plan finds over the call's blocks in the horizon (so the planned ratio
        is 1, the middle of the paid band), at most the request.  ``None`` (the
        request) where the plan fails or the call lies beyond the horizon."""
        status, _, _ = self.solve_window(self.planning_problem(problem))
        g = problem.grid
        share = block_terms((event,), event.kind, g.k0, g.starts, g.steps_per_block).share
        if not status.startswith("optimal") or not share.any():
            return None
        delivered = self.model.dr_delivery_kw(event.kind)
        weight = share * g.dt_h
        planned = float((np.maximum(delivered, 0.0) * weight).sum() / weight.sum())
        return float(np.clip(planned, 0.0, event.capacity_kw))

    def commit_kw(self, problem: DispatchProblem, d0: int, d1: int) -> np.ndarray | None:
        """Commit what the plan at the gate imports: the window (priced at the
        day-ahead prices, the expected real-time ones) is solved and each step's
        position is the VPP's planned net import in its block.  ``None`` (the
        engine's persistence forecast) where the plan fails."""
        status, _, _ = self.solve_window(self.planning_problem(problem))
        if not status.startswith("optimal"):
            return None
        g = problem.grid
        block = np.searchsorted(g.starts, np.arange(d0, d1) - g.k0, side="right") - 1
        return self.model.net_import_kw()[block]

    def decide(self, problem: DispatchProblem) -> Decision:
        status, build_s, solve_s = self.solve_window(problem)
        if not status.startswith("optimal"):
            return self.decision(status, build_s, solve_s)
        return self.decision(status, build_s, solve_s, self.model.setpoints(problem.grid.n_fine),
                             self.model.window_metrics())
