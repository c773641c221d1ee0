"""A Pyomo model compiled once into HiGHS, re-solved after in-place updates.

Pyomo is the formulation; the solve path follows ``docs/SOLVER.md``:
:func:`~vpp.optimizer.standard_form.standard_form` turns the model into sparse matrices once, the
matrices go to highspy in one ``passModel`` call, and each rolling-horizon
window only changes column bounds, row bounds, costs and (rarely)
coefficients of the persistent HiGHS model.  A window therefore costs one
HiGHS solve, not a Pyomo rebuild.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from itertools import repeat

import highspy
import numpy as np
from pyomo.common.gc_manager import PauseGC
from pyomo.environ import Suffix

from vpp.optimizer.standard_form import standard_form

__all__ = ["CompiledLP", "SolverOptions", "new_highs"]


@dataclass(frozen=True)
class SolverOptions:
    """HiGHS settings.  Interior point without crossover was the fastest here
    (``docs/SOLVER.md``); ``"simplex"`` gives vertex solutions.
    ``settlement_choice`` says how a window decides whether an account buys or
    sells where selling earns more than buying costs
    (:meth:`~vpp.optimizer.model.DispatchModel.solve`)."""

    solver: str = "ipm"
    time_limit_s: float = 60.0
    threads: int = 1
    settlement_choice: str = "sign_search"    # or "mip": see DispatchModel.solve

    def apply(self, h: highspy.Highs) -> None:
        h.setOptionValue("output_flag", False)
        h.setOptionValue("solver", self.solver)
        h.setOptionValue("run_crossover", "off" if self.solver == "ipm" else "on")
        h.setOptionValue("presolve", "on")
        h.setOptionValue("threads", self.threads)
        h.setOptionValue("time_limit", float(self.time_limit_s))


def new_highs() -> highspy.Highs:
    """A silent ``highspy.Highs``; HiGHS prints a banner on its first
    construction in a process, straight to file descriptor 1."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return highspy.Highs()
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            h = highspy.Highs()
    finally:
        os.dup2(saved, fd)
        os.close(saved)
    return h


class CompiledLP:
    """A linear Pyomo model held as a persistent HiGHS model.

    Parameters
    ----------
    model : pyomo.environ.ConcreteModel
        A linear model with one active objective, minimised or maximised
        (HiGHS is given its negation; :attr:`objective` and the duals keep the
        model's own sense).  Each active constraint is one row
        (:mod:`vpp.optimizer.standard_form`).  Integer and binary variables make
        it a MIP, solved as one by HiGHS (branch and bound to HiGHS's default
        relative gap, 1e-4), never relaxed; a MIP has no duals.
    options : SolverOptions
    """

    def __init__(self, model, options: SolverOptions | None = None):
        options = options or SolverOptions()
        with PauseGC():
            form = standard_form(model)
        self.model = model
        self.columns, self.row_data = form.columns, form.rows
        self._cols = _Positions(form.var_columns, form.columns)
        self._rows = _Positions(form.constraint_rows, form.rows)
        self.objective_offset, self.sense = form.offset, form.sense
        self.n_cols, self.n_rows = len(form.columns), len(form.rows)
        self.integer = form.integer.copy()
        self.highs = new_highs()
        self.options = options
        options.apply(self.highs)
        self._pass(form.a, form.cost, _inf(form.col_lo), _inf(form.col_hi), _inf(form.row_lo), _inf(form.row_hi))
        self.x = np.zeros(self.n_cols)
        self.y = np.full(self.n_rows, np.nan)      # row duals of the last solve (NaN: none)
        self._objective = np.nan

    def _pass(self, a, cost, col_lo, col_hi, row_lo, row_hi):
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n_cols, self.n_rows
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, col_lo, col_hi
        lp.row_lower_, lp.row_upper_ = row_lo, row_hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr
        lp.a_matrix_.index_ = a.indices
        lp.a_matrix_.value_ = a.data
        if self.is_mip:
            kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
            lp.integrality_ = [kinds[k] for k in self.integer.tolist()]
        self.highs.passModel(lp)

    # -- positions ---------------------------------------------------------
    def cols(self, var) -> np.ndarray:
        """Column of each member of *var* (iteration order); -1 if compiled away."""
        return self._cols.of(var)

    def rows(self, con) -> np.ndarray:
        """Row of each member of *con* (iteration order); -1 if compiled away."""
        return self._rows.of(con)

    # -- updates -----------------------------------------------------------
    def set_col_bounds(self, cols, lo, hi) -> None:
        """New bounds for columns *cols* (positions from :meth:`cols`)."""
        cols, lo, hi = _present(cols, lo, hi)
        if cols.size:
            self.highs.changeColsBounds(cols.size, cols.astype(np.int32), _inf(lo), _inf(hi))

    def set_row_bounds(self, rows, lo, hi) -> None:
        """New lower/upper bounds (right-hand sides) for rows *rows*."""
        rows, lo, hi = _present(rows, lo, hi)
        if rows.size:
            self.highs.changeRowsBounds(rows.size, rows.astype(np.int32), _inf(lo), _inf(hi))

    def set_costs(self, cols, cost) -> None:
        """New objective coefficients for columns *cols*."""
        cols, cost = _present(cols, cost)
        if cols.size:
            self.highs.changeColsCost(cols.size, cols.astype(np.int32), np.asarray(cost, dtype=float))

    def set_coeffs(self, rows, cols, values) -> None:
        """New matrix coefficients at (*rows*, *cols*)."""
        rows, cols, values = np.broadcast_arrays(np.asarray(rows), np.asarray(cols), np.asarray(values, float))
        keep = (rows >= 0) & (cols >= 0)
        for r, c, v in zip(rows[keep].tolist(), cols[keep].tolist(), values[keep].tolist(), strict=True):
            self.highs.changeCoeff(r, c, v)

    def set_integer(self, cols, integer: bool) -> None:
        """Make columns *cols* integer (or continuous again)."""
        cols = np.asarray(cols, dtype=np.int64).ravel()
        cols = cols[cols >= 0]
        if cols.size:
            self.integer[cols] = integer
            kind = int(highspy.HighsVarType.kInteger if integer else highspy.HighsVarType.kContinuous)
            self.highs.changeColsIntegrality(cols.size, cols.astype(np.int32), np.full(cols.size, kind, np.uint8))

    @property
    def is_mip(self) -> bool:
        """Whether any column is integer (the next solve is then a MIP)."""
        return bool(self.integer.any())

    # -- solving -----------------------------------------------------------
    def solve(self) -> tuple[str, float]:
        """Solve; return (status text, seconds).  ``status`` starts with
        ``"optimal"`` on success.

        An interior-point run that ends without a proven optimum (HiGHS status
        "unknown", seen about once in a few hundred windows here) is retried
        once with dual simplex before the window is reported as failed.
        """
        t0 = time.perf_counter()
        self._limit_time()
        self.highs.run()
        status = self.highs.getModelStatus()
        note = ""
        if status != highspy.HighsModelStatus.kOptimal and self.options.solver == "ipm" and not self.is_mip:
            note = f" (simplex after ipm {self.highs.modelStatusToString(status).lower()})"
            self.highs.clearSolver()                     # start the retry from scratch
            self.highs.setOptionValue("solver", "simplex")
            self._limit_time()
            self.highs.run()
            self.highs.setOptionValue("solver", "ipm")
            status = self.highs.getModelStatus()
        elapsed = time.perf_counter() - t0
        if status == highspy.HighsModelStatus.kOptimal:
            solution = self.highs.getSolution()
            self.x = np.asarray(solution.col_value, dtype=float)
            self.y = self.sense * np.asarray(solution.row_dual, dtype=float) if solution.dual_valid \
                else np.full(self.n_rows, np.nan)
            self._objective = self.sense * (float(self.highs.getInfo().objective_function_value)
                                            + self.objective_offset)
            return "optimal" + note, elapsed
        return self.highs.modelStatusToString(status).lower() + note, elapsed

    def _limit_time(self) -> None:
        """HiGHS compares ``time_limit`` with the run time summed over every solve of
        one model, so a persistent model needs the limit moved on before each solve."""
        self.highs.setOptionValue("time_limit", float(self.highs.getRunTime() + self.options.time_limit_s))

    @property
    def objective(self) -> float:
        """Objective value of the last optimal solve (with the constant offset), in
        the model's own sense."""
        return self._objective

    def duals(self, rows: np.ndarray) -> np.ndarray:
        """Duals of *rows* from the last optimal solve: the change of the objective
        per unit raise of the row's bound that binds (HiGHS's and Pyomo's sign);
        NaN for rows compiled away and for a MIP."""
        rows = np.asarray(rows)
        return np.where(rows >= 0, self.y[np.maximum(rows, 0)], np.nan)

    def load_solution(self, model=None) -> None:
        """Write the last solve into the Pyomo *model*: every column's value, and,
        where the model has an imported ``Suffix`` named ``dual``, every row's dual."""
        model = self.model if model is None else model
        for var, x in zip(self.columns, self.x.tolist(), strict=True):
            var.set_value(x, skip_validation=True)
        dual = getattr(model, "dual", None)
        if isinstance(dual, Suffix) and dual.import_enabled():
            dual.update(zip(self.row_data, self.y.tolist(), strict=True))

    def values(self, cols: np.ndarray) -> np.ndarray:
        """Solution values at *cols*; columns compiled away read 0."""
        cols = np.asarray(cols)
        return np.where(cols >= 0, self.x[np.maximum(cols, 0)], 0.0)


class _Positions:
    """Positions (columns or rows) of a component's members: recorded per
    component by the compile, else looked up per member in *order*."""

    def __init__(self, by_component: dict, order: list):
        self._by_component, self._order = by_component, order
        self._of_member: dict | None = None        # built on first use

    def of(self, component) -> np.ndarray:
        known = self._by_component.get(id(component))
        if known is not None and known[0] is component:
            return known[1].copy()
        if self._of_member is None:
            self._of_member = {id(x): i for i, x in enumerate(self._order)}
        return _positions(self._of_member, component.values())


def _positions(position_of: dict, members) -> np.ndarray:
    """``position_of[id(m)]`` for each of *members*, -1 where absent (iterated in C)."""
    return np.fromiter(map(position_of.get, map(id, members), repeat(-1)), dtype=np.int64)


def _present(idx, *arrays):
    """Flatten positions and values alike, dropping positions compiled away (-1)."""
    idx = np.asarray(idx)
    flat = [np.broadcast_to(np.asarray(a, dtype=float), idx.shape).ravel() for a in arrays]
    idx = idx.ravel()
    keep = idx >= 0
    return (idx[keep], *(a[keep] for a in flat))


def _inf(x):
    x = np.asarray(x, dtype=float)
    return np.clip(x, -highspy.kHighsInf, highspy.kHighsInf)
