"""A linear Pyomo model as sparse matrices, fast on the expressions our builders write.

``CompiledLP`` needs one thing from Pyomo's writers: the model as
``row_lo <= A x <= row_hi``, ``col_lo <= x <= col_hi``, minimise ``c x + c0``.
Pyomo's ``LinearStandardFormCompiler`` walks every expression with its
general visitor; on a 1,000-asset window that walk was ~40 % of the cold
build (``benchmarks/bench_dispatch.py``).  The constraint bodies our blocks
build are flat sums -- a ``LinearExpression`` of ``MonomialTermExpression``
terms with float coefficients -- so :func:`standard_form` reads a whole
indexed constraint of them at once: the terms of every row are gathered with
C-level ``map`` calls, checked by type, and numbered with numpy.  A
constraint with any other row (named expressions, products with parameters,
fixed variables, a user's nonlinear term) is read row by row by a small
recursive reader, or for shapes it does not know, by Pyomo's own
``generate_standard_repn``.  ``tests/test_standard_form.py`` checks it
against ``LinearStandardFormCompiler`` on random models.

Columns are the unfixed variables that appear in an active constraint or the
objective, in the order the model declares them (variables from outside the
model follow, in order of first appearance); fixed variables become
constants.  Each active constraint is one row (ranged ones too).  Zero
coefficients are dropped from the matrix, but a variable seen only with zero
coefficients still gets its column, so a later coefficient update can reach it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from operator import attrgetter, itemgetter

import numpy as np
import scipy.sparse as sp
from pyomo.core.base.constraint import Constraint
from pyomo.core.base.objective import Objective, ObjectiveSense
from pyomo.core.base.var import Var, VarData
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
from pyomo.repn.beta.matrix import MatrixConstraint

__all__ = ["StandardForm", "standard_form"]

_args, _fixed, _active, _bounds, _domain = (attrgetter(a) for a in ("args", "fixed", "active", "bounds", "domain"))
_first, _second = itemgetter(0), itemgetter(1)


@dataclass
class StandardForm:
    """``min c x + offset  s.t.  row_lo <= A x <= row_hi,  col_lo <= x <= col_hi``.

    ``columns`` and ``rows`` hold the Pyomo ``VarData`` and ``ConstraintData``
    of each column and row.  Infinite bounds are ``+-inf``.  ``integer``
    marks the columns whose domain is integer (binary included); ``sense``
    is -1 where the model's objective is maximised (``cost`` and ``offset``
    are then those of its negation).  ``var_columns``
    and ``constraint_rows`` map ``id`` of each ``Var`` and ``Constraint``
    component to ``(component, positions)``: the column or row of each member
    in iteration order, -1 for a member that is not one.
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
    var_columns: dict
    constraint_rows: dict
    integer: np.ndarray
    sense: float = 1.0


class _Terms:
    """Collects the terms of every row in chunks: row numbers, the variable of
    each term (a position in ``pool``) and coefficients."""

    def __init__(self):
        self.rows: list = []        # per chunk: ndarray of row numbers
        self.refs: list = []        # per chunk: ndarray of positions in pool
        self.coefs: list = []       # per chunk: ndarray of coefficients
        self.pool: list = []        # the variables terms refer to (repeats allowed)
        self._pooled: dict[int, int] = {}
        self._keep: list = []
        self._unfixed: set[int] = set()
        self._row: list[int] = []   # the term-by-term chunk, being filled
        self._var: list = []
        self._coef: list[float] = []

    def _chunk(self, rows, variables, refs, coefs) -> None:
        self.rows.append(np.asarray(rows, dtype=np.int64))
        self.refs.append(self._base(variables) + np.asarray(refs, dtype=np.int64))
        self.coefs.append(np.asarray(coefs, dtype=float))

    def _base(self, variables) -> int:
        """Where *variables* start in the pool; a list shared by several matrix
        constraints (a block's :class:`~vpp.optimizer.blocks.MatrixRows`) is pooled once."""
        base = self._pooled.get(id(variables))
        if base is None:
            base = len(self.pool)
            self.pool.extend(variables)
            self._pooled[id(variables)] = base
            self._keep.append(variables)                # keeps the id valid while pooled
        return base

    def matrix(self, first_row: int, component):
        """Read a Pyomo ``MatrixConstraint`` from its arrays: its active rows,
        their lower and upper bounds.  None if a variable in it is fixed (its
        rows then need the term-by-term reader)."""
        prows, jcols, vals, varmap, ranges, types = _csr(component)
        if id(varmap) not in self._unfixed:
            if any(map(_fixed, varmap)):
                return None
            self._unfixed.add(id(varmap))
        data = list(component.values())
        active = np.fromiter(map(_active, data), dtype=bool, count=len(data))
        counts = np.diff(prows)
        keep = np.repeat(active, counts)
        renumber = _row_positions(active, first_row)
        self._chunk(np.repeat(renumber, counts)[keep], varmap, jcols[keep], vals[keep])
        lo = np.where(types & MatrixConstraint.LowerBound, ranges[0::2], -np.inf)
        hi = np.where(types & MatrixConstraint.UpperBound, ranges[1::2], np.inf)
        return [d for d, a in zip(data, active.tolist(), strict=True) if a], lo[active], hi[active], renumber

    def flat(self, first_row: int, bodies) -> bool:
        """Add the rows ``first_row, first_row + 1, ...`` with *bodies* if every
        one is a flat ``LinearExpression`` of float-coefficient terms in unfixed
        variables; return False (adding nothing) otherwise."""
        if not all(b.__class__ is LinearExpression for b in bodies):
            return False
        arg_lists = list(map(_args, bodies))
        flat = list(chain.from_iterable(arg_lists))
        if set(map(type, flat)) - {MonomialTermExpression}:
            return False
        pairs = list(map(_args, flat))
        coefs = list(map(_first, pairs))
        variables = list(map(_second, pairs))
        if (set(map(type, coefs)) - native_numeric_types
                or not all(issubclass(t, VarData) for t in set(map(type, variables)))
                or any(map(_fixed, variables))):
            return False
        counts = np.fromiter(map(len, arg_lists), dtype=np.int64, count=len(arg_lists))
        self._chunk(np.repeat(np.arange(first_row, first_row + len(bodies)), counts), variables,
                    np.arange(len(variables)), coefs)
        return True

    def add(self, row: int, var, coef: float) -> None:
        self._row.append(row)
        self._var.append(var)
        self._coef.append(coef)

    def linear(self, row: int, expr, scale: float = 1.0) -> float:
        """Add ``scale * expr`` to *row* term by term; return its constant part."""
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
            return self.linear(row, v, scale * value(c))
        if cls in (LinearExpression, SumExpression):
            return sum(self.linear(row, a, scale) for a in expr.args)
        if cls is NegationExpression:
            return self.linear(row, expr.args[0], -scale)
        if cls is ProductExpression:
            a, b = expr.args
            if a.__class__ in native_numeric_types or not a.is_potentially_variable():
                return self.linear(row, b, scale * value(a))
            if b.__class__ in native_numeric_types or not b.is_potentially_variable():
                return self.linear(row, a, scale * value(b))
        if cls is DivisionExpression:
            a, b = expr.args
            if b.__class__ in native_numeric_types or not b.is_potentially_variable():
                return self.linear(row, a, scale / value(b))
        if expr.is_named_expression_type():
            return self.linear(row, expr.expr, scale)
        return self._repn(row, expr, scale)

    def _repn(self, row: int, expr, scale: float) -> float:
        repn = generate_standard_repn(expr, quadratic=False, compute_values=True)
        if repn.nonlinear_expr is not None:
            raise ValueError(f"not a linear expression: {expr}")
        for v, c in zip(repn.linear_vars, repn.linear_coefs, strict=True):
            self.add(row, v, scale * value(c))
        return scale * value(repn.constant)

    def triplets(self):
        """All terms: row numbers, variables (positions in ``pool``), coefficients."""
        self._chunk(self._row, self._var, np.arange(len(self._var)), self._coef)
        self._row, self._var, self._coef = [], [], []
        return np.concatenate(self.rows), np.concatenate(self.refs), np.concatenate(self.coefs)


def _csr(component):
    """The arrays a ``MatrixConstraint`` was built from (its constructor's arguments)."""
    c = component
    return (np.asarray(c._prows, dtype=np.int64), np.asarray(c._jcols, dtype=np.int64),
            np.asarray(c._vals, dtype=float), c._varmap, np.asarray(c._ranges, dtype=float),
            np.asarray(c._range_types, dtype=np.int64))


def _bounded(cons) -> tuple[list, list, list]:
    """Lower bounds, bodies and upper bounds of the constraints *cons*."""
    triples = [c.to_bounded_expression(evaluate_bounds=True) for c in cons]
    if not triples:
        return [], [], []
    lbs, bodies, ubs = zip(*triples, strict=True)
    return list(lbs), list(bodies), list(ubs)


def _number(model, pool: list, refs: np.ndarray) -> tuple[list, np.ndarray, dict]:
    """Columns (the distinct variables ``pool[refs]``, in the model's declaration
    order, then any from outside it in order of first appearance), each
    term's column, and each ``Var`` component's columns (see :class:`StandardForm`)."""
    ids = np.fromiter(map(id, pool), dtype=np.uint64, count=len(pool))[refs]
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    components = list(model.component_objects(Var, descend_into=True, sort=False))
    sizes = [len(v) for v in components]
    declared = np.fromiter(map(id, chain.from_iterable(v.values() for v in components)), dtype=np.uint64,
                           count=sum(sizes))
    key = len(declared) + first.astype(np.int64)                 # outsiders last, by first sight
    at = np.minimum(np.searchsorted(uniq, declared), max(uniq.size - 1, 0))
    hit = uniq[at] == declared if uniq.size else np.zeros(declared.size, dtype=bool)
    key[at[hit]] = np.flatnonzero(hit)
    order = np.argsort(key, kind="stable")
    column_of = np.empty(uniq.size, dtype=np.int64)
    column_of[order] = np.arange(uniq.size)
    member_column = np.where(hit, column_of[at] if uniq.size else -1, -1)
    bounds = np.cumsum([0, *sizes])
    var_columns = {id(v): (v, member_column[bounds[k]:bounds[k + 1]]) for k, v in enumerate(components)}
    return [pool[k] for k in refs[first[order]].tolist()], column_of[inverse.ravel()], var_columns


def _read_rows(terms: _Terms, component, first_row: int):
    """The active rows of one constraint component, their lower and upper bounds,
    and the row of each member (-1 if inactive)."""
    if isinstance(component, MatrixConstraint):
        try:
            read = terms.matrix(first_row, component)
        except AttributeError:          # a Pyomo whose MatrixConstraint keeps its arrays elsewhere
            read = None
        if read is not None:
            return read
    members = list(component.values())
    active = np.fromiter(map(_active, members), dtype=bool, count=len(members))
    cons = [c for c, a in zip(members, active.tolist(), strict=True) if a]
    lbs, bodies, ubs = _bounded(cons)
    consts = [0.0] * len(cons) if terms.flat(first_row, bodies) else \
        [terms.linear(first_row + k, body) for k, body in enumerate(bodies)]
    lo = [-np.inf if lb is None else lb - c for lb, c in zip(lbs, consts, strict=True)]
    hi = [np.inf if ub is None else ub - c for ub, c in zip(ubs, consts, strict=True)]
    return cons, lo, hi, _row_positions(active, first_row)


def _row_positions(active: np.ndarray, first_row: int) -> np.ndarray:
    return np.where(active, first_row + np.cumsum(active) - 1, -1)


def standard_form(model) -> StandardForm:
    """The linear *model* (one active objective) in matrix form; a maximised
    objective is negated so the form is always a minimisation."""
    terms = _Terms()
    rows, lo, hi, constraint_rows = [], [], [], {}
    for component in model.component_objects(Constraint, active=True, descend_into=True, sort=False):
        cons, c_lo, c_hi, positions = _read_rows(terms, component, len(rows))
        constraint_rows[id(component)] = (component, positions)
        rows += cons
        lo.append(np.asarray(c_lo, dtype=float))
        hi.append(np.asarray(c_hi, dtype=float))
    obj = _objective(model)
    sense = -1.0 if obj.sense == ObjectiveSense.maximize else 1.0
    n_rows = len(rows)
    offset = 0.0 if sense > 0 and terms.flat(n_rows, [obj.expr]) else \
        terms.linear(n_rows, obj.expr, sense)                 # objective terms go to a scratch row
    row_idx, refs, coef = terms.triplets()
    columns, col_idx, var_columns = _number(model, terms.pool, refs)
    n_cols = len(columns)
    in_obj = row_idx == n_rows
    cost = np.bincount(col_idx[in_obj], weights=coef[in_obj], minlength=n_cols)
    # built from triplets: a repeated (row, column) pair is summed by the conversion
    keep = ~in_obj & (coef != 0.0)
    a = sp.csc_matrix((coef[keep], (row_idx[keep], col_idx[keep])), shape=(n_rows, n_cols))
    bounds = np.array(list(map(_bounds, columns)), dtype=float).reshape(n_cols, 2)
    return StandardForm(
        columns=columns,
        rows=rows,
        a=a,
        cost=cost,
        offset=float(offset),
        col_lo=np.where(np.isnan(bounds[:, 0]), -np.inf, bounds[:, 0]),
        col_hi=np.where(np.isnan(bounds[:, 1]), np.inf, bounds[:, 1]),
        row_lo=np.concatenate([np.zeros(0), *lo]),
        row_hi=np.concatenate([np.zeros(0), *hi]),
        var_columns=var_columns,
        constraint_rows=constraint_rows,
        integer=_integer(columns),
        sense=sense,
    )


def _objective(model):
    """The one active objective of *model*; ``ValueError`` in one line otherwise."""
    objectives = list(model.component_data_objects(Objective, active=True, descend_into=True))
    if len(objectives) != 1:
        names = ", ".join(o.name for o in objectives) or "none"
        raise ValueError(f"the dispatch model needs exactly one active objective, it has {len(objectives)} "
                         f"({names}); deactivate all but one (objective.deactivate())")
    return objectives[0]


def _integer(columns: list) -> np.ndarray:
    """Which *columns* have an integer domain, judged once per distinct domain."""
    domains = list(map(_domain, columns))
    integral = {id(d): d.get_interval()[2] == 1 for d in {id(d): d for d in domains}.values()}
    return np.fromiter(map(integral.__getitem__, map(id, domains)), dtype=bool, count=len(domains))
