"""``standard_form`` against Pyomo's own ``LinearStandardFormCompiler`` on random
linear models written in every shape a user's ``extra_constraints`` might use."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyomo.common.errors import InfeasibleConstraintException
from pyomo.core.base.objective import ObjectiveSense
from pyomo.environ import (
    ConcreteModel,
    Constraint,
    Expression,
    Objective,
    Param,
    Reference,
    Var,
    maximize,
    minimize,
    quicksum,
)
from pyomo.repn.beta.matrix import MatrixConstraint
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from vpp.optimizer.blocks import linear
from vpp.optimizer.lp import CompiledLP
from vpp.optimizer.standard_form import standard_form

coef = st.floats(-5, 5, allow_nan=False).map(lambda x: round(x, 3))
bound = st.one_of(st.none(), st.floats(-10, 10, allow_nan=False).map(lambda x: round(x, 2)))


def term(draw, m):
    """One linear term in one of the ways Pyomo lets a user write it."""
    v = m.x[draw(st.integers(0, len(m.x) - 1))]
    c = draw(coef)
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return c * v
    if kind == 1:
        return m.p * v                                 # a mutable Param coefficient
    if kind == 2:
        return -(c * v)                                # negation
    if kind == 3:
        return (v + c) / 2.0                           # division by a constant, with a constant part
    if kind == 4:
        return 2.0 * (v - m.x[0])                      # a constant times a sum
    if kind == 5:
        return m.e                                     # a named Expression
    if kind == 6:
        return linear([(c, v), (1.0, m.x[0])])         # our builders' flat form
    return c                                           # a bare constant


@st.composite
def models(draw):
    n = draw(st.integers(1, 5))
    m = ConcreteModel()
    m.x = Var(range(n))
    for v in m.x.values():
        lo, hi = draw(bound), draw(bound)
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        v.setlb(lo)
        v.setub(hi)
        if draw(st.integers(0, 5)) == 0:
            v.fix(draw(coef))
    m.p = Param(initialize=draw(coef), mutable=True)
    m.e = Expression(expr=draw(coef) * m.x[n - 1] + 1.5)
    exprs = [constraint(draw, m) for _ in range(draw(st.integers(1, 6)))]
    m.c = Constraint(range(len(exprs)), rule=lambda _, i: exprs[i])
    if draw(st.booleans()):
        m.flat = Constraint(range(2), rule=lambda _, i: flat_row(draw, m))     # read as one batch
    if draw(st.booleans()):
        m.mat = matrix_constraint(draw, m)
    sense = draw(st.sampled_from([minimize, maximize]))
    m.o = Objective(expr=quicksum(term(draw, m) for _ in range(draw(st.integers(1, 4)))) + draw(coef), sense=sense)
    return m


def flat_row(draw, m):
    """A row the way the grid block writes it: ``linear(...)`` against a constant."""
    n = len(m.x)
    body = linear([(draw(coef), m.x[draw(st.integers(0, n - 1))]) for _ in range(draw(st.integers(1, 3)))])
    return body <= draw(coef) if draw(st.booleans()) else body == draw(coef)


def matrix_constraint(draw, m):
    """A Pyomo ``MatrixConstraint`` (as the storage and thermal blocks write), rows of every
    bound type, sometimes one deactivated."""
    n_rows, n = draw(st.integers(1, 4)), len(m.x)
    counts = [draw(st.integers(0, 3)) for _ in range(n_rows)]
    jcols = np.array([draw(st.integers(0, n - 1)) for _ in range(sum(counts))], dtype=int)
    vals = np.array([draw(coef) for _ in range(sum(counts))])
    kinds = [draw(st.sampled_from([MatrixConstraint.Equality, MatrixConstraint.LowerBound,
                                   MatrixConstraint.UpperBound,
                                   MatrixConstraint.LowerBound | MatrixConstraint.UpperBound]))
             for _ in range(n_rows)]
    ranges = []
    for _ in range(n_rows):
        lo = draw(coef)
        ranges += [lo, lo + draw(st.floats(0, 3).map(lambda x: round(x, 2)))]
    con = MatrixConstraint(n_rows, n, len(vals), np.concatenate([[0], np.cumsum(counts)]), jcols, vals,
                           np.array(ranges), np.array(kinds, dtype=np.uint8), list(m.x.values()))
    if draw(st.integers(0, 3)) == 0:
        con.construct()
        con[draw(st.integers(0, n_rows - 1))].deactivate()
    return con


def constraint(draw, m):
    body = quicksum(term(draw, m) for _ in range(draw(st.integers(1, 4))))
    if not any(not v.fixed for v in m.x.values()):
        return Constraint.Skip
    unfixed = [v for v in m.x.values() if not v.fixed]
    body = body + unfixed[0]                           # at least one variable
    kind = draw(st.integers(0, 4))
    rhs = draw(coef)
    if kind == 0:
        return body == rhs
    if kind == 1:
        return body <= rhs
    if kind == 2:
        return body >= rhs
    if kind == 3:
        return body <= unfixed[-1] + rhs               # variables on both sides
    return (rhs - 1.0, body, rhs + 1.0)                # ranged


def reference(m):
    """Row bounds and matrix by constraint and column names, from Pyomo's compiler."""
    info = LinearStandardFormCompiler().write(m, mixed_form=True, set_sense=ObjectiveSense.minimize)
    names = [v.name for v in info.columns]
    a = info.A.toarray()
    rows = {}
    for i, (con, sense) in enumerate(info.rows):
        lo, hi, _ = rows.get(con.name, (-np.inf, np.inf, {}))
        r = info.rhs[i]
        lo, hi = (r, r) if sense == 0 else ((lo, min(hi, r)) if sense == 1 else (max(lo, r), hi))
        coefs = {n: a[i, j] for j, n in enumerate(names) if a[i, j] != 0}
        rows[con.name] = (lo, hi, coefs)
    cost = dict(zip(names, np.asarray(info.c.todense()).ravel(), strict=True)) if info.c.shape[0] else {}
    return rows, cost, float(info.c_offset[0]) if len(info.c_offset) else 0.0


def ours(m):
    f = standard_form(m)
    names = [v.name for v in f.columns]
    a = f.a.toarray()
    rows = {con.name: (f.row_lo[i], f.row_hi[i], {n: a[i, j] for j, n in enumerate(names) if a[i, j] != 0})
            for i, con in enumerate(f.rows)}
    return rows, dict(zip(names, f.cost, strict=True)), f.offset, f


@settings(max_examples=200, deadline=None)
@given(models())
def test_standard_form_matches_pyomo_compiler(m):
    rows, cost, offset, f = ours(m)
    try:
        ref_rows, ref_cost, ref_offset = reference(m)
    except InfeasibleConstraintException:
        # Pyomo refuses a row whose terms cancel and whose bounds exclude 0; here it stays an
        # empty row (rows keep their positions) and HiGHS reports the model infeasible.
        assert any(not c and not lo <= 0.0 <= hi for lo, hi, c in rows.values())
        return
    # Pyomo drops rows whose terms cancel (and hold); here they stay, empty.
    for name in rows.keys() - ref_rows.keys():
        lo, hi, coefs = rows[name]
        assert not coefs and lo <= 1e-9 and hi >= -1e-9, name
    assert ref_rows.keys() <= rows.keys()
    for name, (lo, hi, coefs) in ref_rows.items():
        o_lo, o_hi, o_coefs = rows[name]
        # Pyomo drops a constraint's infinite side; a ranged row keeps both sides in one row here.
        assert o_lo == pytest.approx(lo, abs=1e-9) and o_hi == pytest.approx(hi, abs=1e-9), name
        assert set(o_coefs) == set(coefs), name
        for k, v in coefs.items():
            assert o_coefs[k] == pytest.approx(v, abs=1e-9), (name, k)
    for k, v in ref_cost.items():
        assert cost.get(k, 0.0) == pytest.approx(v, abs=1e-9), k
    for k, v in cost.items():
        assert ref_cost.get(k, 0.0) == pytest.approx(v, abs=1e-9), k
    assert offset == pytest.approx(ref_offset, abs=1e-9)
    for j, v in enumerate(f.columns):
        assert not v.fixed
        assert f.col_lo[j] == (-np.inf if v.lb is None else v.lb)
        assert f.col_hi[j] == (np.inf if v.ub is None else v.ub)


def test_a_nonlinear_term_is_refused():
    m = ConcreteModel()
    m.x = Var(range(2))
    m.c = Constraint(expr=m.x[0] * m.x[1] <= 1.0)
    m.o = Objective(expr=m.x[0])
    with pytest.raises(ValueError, match="not a linear expression"):
        standard_form(m)


def test_exactly_one_objective():
    m = ConcreteModel()
    m.x = Var()
    m.c = Constraint(expr=m.x >= 0)
    with pytest.raises(ValueError, match="exactly one active objective"):
        standard_form(m)


def test_zero_coefficient_keeps_its_column():
    """A variable seen only with a zero coefficient still has a column, so a
    later coefficient update (CompiledLP.set_coeffs) can reach it."""
    m = ConcreteModel()
    m.x = Var(range(2))
    m.c = Constraint(expr=linear([(1.0, m.x[0]), (0.0, m.x[1])]) == 1.0)
    m.o = Objective(expr=m.x[0])
    f = standard_form(m)
    assert [v.name for v in f.columns] == ["x[0]", "x[1]"]
    assert f.a.nnz == 1


def test_positions_of_members_match_the_compiled_columns_and_rows():
    """``CompiledLP.cols`` / ``rows`` (read from the compile) agree with looking each
    member up in the compiled columns and rows, for components, a Reference, a
    variable never used, a deactivated row and a component added after compiling."""
    m = ConcreteModel()
    m.x = Var(range(2), range(2), bounds=(0, 1))
    m.unused = Var(range(2))
    m.first = Reference(m.x[:, 0])
    m.c = Constraint(range(2), rule=lambda _, i: m.x[i, 0] + 2 * m.x[i, 1] >= 0.5)
    m.c[0].deactivate()
    m.mat = MatrixConstraint(1, 2, 2, np.array([0, 2]), np.array([0, 1]), np.array([1.0, -1.0]),
                             np.array([0.0, 0.0]), np.array([MatrixConstraint.Equality], dtype=np.uint8),
                             [m.x[1, 1], m.x[0, 0]])
    m.o = Objective(expr=m.x[0, 1])
    lp = CompiledLP(m)
    rows = standard_form(m).rows                        # the same rows in the same order
    m.late = Constraint(expr=m.x[0, 0] <= 1)            # added after compiling: no row

    def by_identity(members, pool):
        return [next((k for k, p in enumerate(pool) if p is x), -1) for x in members]

    for var in (m.x, m.unused, m.first):
        assert lp.cols(var).tolist() == by_identity(var.values(), lp.columns)
    for con in (m.c, m.mat, m.late):
        assert lp.rows(con).tolist() == by_identity(con.values(), rows)
    assert lp.rows(m.c).tolist() == [-1, 0] and lp.rows(m.late).tolist() == [-1]


def test_matrix_constraints_are_read_row_by_row_if_their_arrays_move(monkeypatch):
    """The fast path reads a MatrixConstraint's constructor arrays (private in Pyomo);
    should a Pyomo release keep them elsewhere, its rows are read through Pyomo's
    public row interface instead, with the same result."""
    m = ConcreteModel()
    m.x = Var(range(3), bounds=(0, 4))
    m.mat = MatrixConstraint(2, 3, 4, np.array([0, 2, 4]), np.array([0, 1, 1, 2]), np.array([1.0, 2.0, 3.0, -1.0]),
                             np.array([1.0, 1.0, -np.inf, 5.0]),
                             np.array([MatrixConstraint.Equality, MatrixConstraint.UpperBound], dtype=np.uint8),
                             list(m.x.values()))
    m.o = Objective(expr=m.x[0] - m.x[2])
    fast = standard_form(m)

    def moved(_component):
        raise AttributeError("_prows")

    monkeypatch.setattr("vpp.optimizer.standard_form._csr", moved)
    slow = standard_form(m)
    np.testing.assert_array_equal(slow.a.toarray(), fast.a.toarray())
    for k in ("row_lo", "row_hi", "cost", "col_lo", "col_hi"):
        np.testing.assert_array_equal(getattr(slow, k), getattr(fast, k))
    np.testing.assert_array_equal(fast.a.toarray(), [[1.0, 2.0, 0.0], [0.0, 3.0, -1.0]])
