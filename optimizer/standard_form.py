"""A linear Pyomo model as sparse matrices, fast on the expressions our builders write.

``CompiledLP`` needs one thing from Pyomo's writers: the model as
``row_lo <= A x <= row_hi``, ``col_lo <= x <= col_hi``, minimise ``c x + c0``.
Pyomo's ``LinearStandardFormCompiler`` walks every expression with its
general visitor; on a 1,000-asset window that walk was ~40 % of the cold
build (``benchmarks/bench_dispatch.py``).  The constraint bodies our blocks
build are flat sums -- a ``LinearExpression`` of variables and
``MonomialTermExpression`` terms with float coefficients -- so
:func:`standard_form` reads those arguments directly and hands anything else
(named expressions, products with parameters, a user's nonlinear term) to a
small recursive reader, or for shapes it does not know, to Pyomo's own
``generate_standard_repn``.  ``tests/test_standard_form.py`` checks it
against ``LinearStandardFormCompiler`` on random models.

Columns are the unfixed variables that appear in an active constraint or the
objective, in order of first appearance; fixed variables become constants.
Each active constraint is one row (ranged ones too).  Zero coefficients are
dropped from the matrix, but a variable seen only with zero coefficients
still gets its column, so a later coefficient update can reach it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from pyomo.core.base.constraint import Constraint
from pyomo.core.base.objective import Objective, ObjectiveSense
from pyomo.core.base.var import VarData
from pyomo.core.expr.numeric_expr import (
    DivisionExpression,
    LinearExpression,
    MonomialTermExpression,
    NegationExpression,
    ProductExpression,
    SumExpression,
)
from pyomo.core.expr.numvalue import native_numeric_types, value
from pyomo.repn import generate_standard_repn

__all__ = ["StandardForm", "standard_form"]


@dataclass
class StandardForm:
    """``min c x + offset  s.t.  row_lo <= A x <= row_hi,  col_lo <= x <= col_hi``.

    ``columns`` and ``rows`` hold the Pyomo ``VarData`` and ``ConstraintData``
    of each column and row.  Infinite bounds are ``+-inf``.
    """

    columns: list
    rows: list
    a: sp.csc_matrix
    cost: np.ndarray
    offset: float
    col_lo: np.ndarray
    col_hi: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray


class _Terms:
    """Collects ``(row, column, coefficient)`` triplets, numbering columns on first sight."""

    def __init__(self):
        self.columns: list = []
        self.col_of: dict[int, int] = {}
        self.row_idx: list[int] = []
        self.col_idx: list[int] = []
        self.coef: list[float] = []

    def add(self, row: int, var, coef: float) -> None:
        j = self.col_of.get(id(var))
        if j is None:
            j = self.col_of[id(var)] = len(self.columns)
            self.columns.append(var)
        if coef:
            self.row_idx.append(row)
            self.col_idx.append(j)
            self.coef.append(coef)

    def linear(self, row: int, expr, scale: float = 1.0) -> float:
        """Add ``scale * expr`` to *row*; return its constant part."""
        if expr.__class__ is LinearExpression:
            return self._flat(row, expr.args, scale)
        return self._any(row, expr, scale)

    def _flat(self, row: int, args, scale: float) -> float:
        # The hot loop of the compile (every term of every row): add() inlined.
        const = 0.0
        col_of, columns = self.col_of, self.columns
        rows, cols, coefs = self.row_idx, self.col_idx, self.coef
        for a in args:
            cls = a.__class__
            if cls is MonomialTermExpression:
                c, v = a.args
                if c.__class__ not in native_numeric_types or v.fixed:
                    const += self._any(row, a, scale)
                    continue
            elif cls is VarData and not a.fixed:
                c, v = 1.0, a
            else:
                const += self._any(row, a, scale)
                continue
            j = col_of.get(id(v))
            if j is None:
                j = col_of[id(v)] = len(columns)
                columns.append(v)
            if c:
                rows.append(row)
                cols.append(j)
                coefs.append(scale * c)
        return const

    def _any(self, row: int, expr, scale: float) -> float:
        cls = expr.__class__
        if cls in native_numeric_types:
            return scale * expr
        if isinstance(expr, VarData):
            if expr.fixed:
                return scale * value(expr)
            self.add(row, expr, scale)
            return 0.0
        if not expr.is_potentially_variable():
            return scale * value(expr)
        if cls is MonomialTermExpression:
            c, v = expr.args
            return self._any(row, v, scale * value(c))
        if cls in (LinearExpression, SumExpression):
            return self._flat(row, expr.args, scale)
        if cls is NegationExpression:
            return self._any(row, expr.args[0], -scale)
        if cls is ProductExpression:
            a, b = expr.args
            if a.__class__ in native_numeric_types or not a.is_potentially_variable():
                return self._any(row, b, scale * value(a))
            if b.__class__ in native_numeric_types or not b.is_potentially_variable():
                return self._any(row, a, scale * value(b))
        if cls is DivisionExpression:
            a, b = expr.args
            if b.__class__ in native_numeric_types or not b.is_potentially_variable():
                return self._any(row, a, scale / value(b))
        if expr.is_named_expression_type():
            return self._any(row, expr.expr, scale)
        return self._repn(row, expr, scale)

    def _repn(self, row: int, expr, scale: float) -> float:
        repn = generate_standard_repn(expr, quadratic=False, compute_values=True)
        if repn.nonlinear_expr is not None:
            raise ValueError(f"not a linear expression: {expr}")
        for v, c in zip(repn.linear_vars, repn.linear_coefs, strict=True):
            self.add(row, v, scale * value(c))
        return scale * value(repn.constant)


def standard_form(model) -> StandardForm:
    """The linear *model* (one active objective) in matrix form; a maximised
    objective is negated so the form is always a minimisation."""
    terms = _Terms()
    rows, lo, hi = [], [], []
    for con in model.component_data_objects(Constraint, active=True, descend_into=True, sort=False):
        lb, body, ub = con.to_bounded_expression(evaluate_bounds=True)
        const = terms.linear(len(rows), body)
        rows.append(con)
        lo.append(-np.inf if lb is None else lb - const)
        hi.append(np.inf if ub is None else ub - const)
    objectives = list(model.component_data_objects(Objective, active=True, descend_into=True))
    if len(objectives) != 1:
        raise ValueError(f"the model needs exactly one active objective, it has {len(objectives)}")
    obj = objectives[0]
    sense = -1.0 if obj.sense == ObjectiveSense.maximize else 1.0
    n_rows = len(rows)
    offset = terms.linear(n_rows, obj.expr, sense)          # objective terms go to a scratch row
    row_idx = np.asarray(terms.row_idx, dtype=np.int64)
    col_idx = np.asarray(terms.col_idx, dtype=np.int64)
    coef = np.asarray(terms.coef, dtype=float)
    n_cols = len(terms.columns)
    in_obj = row_idx == n_rows
    cost = np.bincount(col_idx[in_obj], weights=coef[in_obj], minlength=n_cols)
    # built from triplets: a repeated (row, column) pair is summed by the conversion
    a = sp.csc_matrix((coef[~in_obj], (row_idx[~in_obj], col_idx[~in_obj])), shape=(n_rows, n_cols))
    bounds = np.array([v.bounds for v in terms.columns], dtype=float).reshape(n_cols, 2)
    return StandardForm(
        columns=terms.columns,
        rows=rows,
        a=a,
        cost=cost,
        offset=float(offset),
        col_lo=np.where(np.isnan(bounds[:, 0]), -np.inf, bounds[:, 0]),
        col_hi=np.where(np.isnan(bounds[:, 1]), np.inf, bounds[:, 1]),
        row_lo=np.asarray(lo, dtype=float),
        row_hi=np.asarray(hi, dtype=float),
    )
