"""One Pyomo builder per canonical flexibility form, vectorised over assets.

Each block declares its variables and constraints from the forms of the
first window, then, once the model is compiled (:class:`CompiledLP`), binds
to its columns and rows so that later windows only push new numbers
(:meth:`update`).  The numbers for both come from the same ``_data``
function, so the Pyomo model and the updated HiGHS model never disagree.

Variables are Pyomo ``Var`` components indexed by asset and block.  The
per-asset constraint families (storage and thermal dynamics, targets,
comfort bands) are written as arrays into Pyomo ``MatrixConstraint``
components (:class:`MatrixRows`): the same rows, without one expression
object per term, which took the 1,000-asset reference LP's build from
1.5 s to 0.65 s (``docs/SOLVER.md``).  Their rows are numbered in C order
(``st_dyn[i * H + t]``); a user's hook reads, deactivates or adds to them
like any Pyomo constraint.

Notation: assets ``i``, horizon blocks ``t = 0..H-1`` of length
``dt[t]`` [h]; states are indexed ``0..H`` (start of each block, then end).
"""

from __future__ import annotations

import numpy as np
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.core.expr.relational_expr import inequality
from pyomo.environ import NonNegativeReals, Var
from pyomo.repn.beta.matrix import MatrixConstraint, _LinearMatrixConstraintData

from vpp.flex import CurtailableSource, HorizonGrid, SharedLimit, StorageLike, Thermal

__all__ = ["CurtailableBlock", "StorageBlock", "ThermalBlock", "stack", "stack_blocks", "best_effort_path",
           "linear", "var_rows", "MatrixRows", "MatrixFamily", "Switches", "positions", "set_bounds"]


def linear(terms) -> LinearExpression:
    """``sum c * v`` over the ``(c, v)`` pairs *terms*, as one flat Pyomo ``LinearExpression``.

    Built from its arguments rather than with ``+`` and ``*``, which dispatch
    and copy at every operator: about five times faster to build on a
    1,000-asset window (``benchmarks/bench_dispatch.py``), and already the flat
    form :func:`~vpp.optimizer.standard_form.standard_form` reads.
    """
    return LinearExpression([MonomialTermExpression((c, v)) for c, v in terms])


def var_rows(var, n_rows: int, n_cols: int) -> list[list]:
    """The members of a ``Var`` indexed ``(range(n_rows), range(n_cols))`` (or the
    list of them) as nested lists."""
    flat = var if isinstance(var, list) else list(var.values())
    return [flat[i * n_cols:(i + 1) * n_cols] for i in range(n_rows)]


def stack(forms, attr: str) -> np.ndarray:
    """Concatenate a per-asset attribute of several forms along assets."""
    return np.concatenate([np.asarray(getattr(f, attr), dtype=float) for f in forms], axis=0)


def stack_blocks(forms, attr: str, n_blocks: int) -> np.ndarray:
    """Like :func:`stack`, for an attribute given per asset (N,) or per asset and block (N, H)."""
    return np.concatenate([np.broadcast_to(np.asarray(getattr(f, attr), dtype=float).reshape(f.n_assets, -1),
                                           (f.n_assets, n_blocks)) for f in forms], axis=0)


def _asset_nodes(forms) -> np.ndarray:
    return np.concatenate([[f.node] * f.n_assets for f in forms]) if forms else np.empty(0, dtype=object)


def _bounded_var(m, name, index: tuple, lo, hi) -> list:
    """Add ``Var(*index)`` with bounds from arrays over the index (infinite: no
    bound) to *m*; return its members in iteration order.

    The commonest value of each bound is declared with the ``Var`` (Pyomo
    copies one template member per index) and only the others are set member
    by member: a fraction of the time of a bounds rule called per index."""
    shape = tuple(len(i) for i in index)
    lo, hi = (np.broadcast_to(np.asarray(x, dtype=float), shape).ravel() for x in (lo, hi))
    (lo_0, lo_rest), (hi_0, hi_rest) = _commonest(lo), _commonest(hi)
    var = Var(*index, bounds=(lo_0, hi_0))
    setattr(m, name, var)
    members = list(var.values())
    for bound, values, rest in (("lower", lo, lo_rest), ("upper", hi, hi_rest)):
        for k, x in zip(rest.tolist(), values[rest].tolist(), strict=True):
            setattr(members[k], bound, x if np.isfinite(x) else None)
    return members


def _commonest(values: np.ndarray) -> tuple[float | None, np.ndarray]:
    """The commonest of *values* (None if infinite) and the positions of the others."""
    if not values.size:
        return None, np.zeros(0, dtype=int)
    uniq, counts = np.unique(values, return_counts=True)
    common = uniq[np.argmax(counts)]
    return (float(common) if np.isfinite(common) else None), np.flatnonzero(values != common)


class MatrixRows:
    """Writes a block's constraint families as Pyomo ``MatrixConstraint`` components
    (sparse rows held as arrays, no expression object per term) over one shared
    list of the block's variables.

    Parameters
    ----------
    *variables : indexed ``Var``, or ``(Var, list of its members)``
        Every variable the rows may use.
    """

    def __init__(self, *variables):
        self.varmap: list = []
        self.start: dict[int, int] = {}
        for var in variables:
            var, members = var if isinstance(var, tuple) else (var, var.values())
            self.start[id(var)] = len(self.varmap)
            self.varmap.extend(members)

    def add(self, m, name: str, shape: tuple, terms, lo, hi) -> MatrixConstraint:
        """Add ``lo <= sum_k coef_k * x_k <= hi`` for every row of *shape* to *m*;
        row ``r`` is the C-order flat position in *shape*.

        Each term is ``(var, position, coef)`` or ``(var, position, coef, where)``:
        *var* one of the variables, *position* the place in ``var.values()`` of
        the member each row takes, *coef* its coefficient, *where* the rows
        that have the term; each broadcast to *shape*.  ``lo == hi`` makes an
        equality; ``-inf`` / ``inf`` drop a side.
        """
        cols, vals, has = [], [], []
        for var, position, coef, *where in terms:
            cols.append(np.broadcast_to(self.start[id(var)] + np.asarray(position), shape).ravel())
            vals.append(np.broadcast_to(np.asarray(coef, dtype=float), shape).ravel())
            has.append(np.broadcast_to(where[0] if where else True, shape).ravel())
        has = np.stack(has, axis=1)
        prows = np.concatenate([[0], np.cumsum(has.sum(axis=1))])
        lo = np.broadcast_to(np.asarray(lo, dtype=float), shape).ravel()
        hi = np.broadcast_to(np.asarray(hi, dtype=float), shape).ravel()
        kind = _row_kind(lo, hi)
        con = _MatrixConstraint(len(lo), len(self.varmap), int(prows[-1]), prows, np.stack(cols, axis=1)[has],
                               np.stack(vals, axis=1)[has], np.column_stack([lo, hi]).ravel(), kind, self.varmap)
        setattr(m, name, con)
        at = np.where(has, np.cumsum(has.ravel()).reshape(has.shape) - 1, -1)
        return MatrixFamily(con, [at[:, k].reshape(shape) for k in range(has.shape[1])])


class _MatrixRow(_LinearMatrixConstraintData):
    """A row of a ``MatrixConstraint`` that also answers ``expr``, which Pyomo 6.10's
    own HiGHS interfaces (appsi and ``pyomo.contrib.solver``) read from every
    constraint and its beta ``MatrixConstraint`` rows lack."""

    __slots__ = ()

    @property
    def expr(self):
        lo, body, hi = self.to_bounded_expression()
        return body == lo if self.equality else inequality(lo, body, hi)


class _MatrixConstraint(MatrixConstraint):
    """Pyomo's ``MatrixConstraint`` with :class:`_MatrixRow` rows."""

    def construct(self, data=None):
        if self._constructed:
            return
        self._constructed = True
        self._data = tuple(_MatrixRow(i, component=self) for i in range(len(self._range_types)))


class MatrixFamily:
    """A ``MatrixConstraint`` written by :meth:`MatrixRows.add`, with the place of
    each of its terms in the component's arrays, so that a new window's numbers
    are written into the Pyomo model in place (its rows read them live).

    Parameters
    ----------
    con : MatrixConstraint
    term_at : list of ndarray
        Per term of :meth:`MatrixRows.add`, the position of its coefficient in
        ``con._vals`` for each row (-1 where the row lacks it).
    """

    def __init__(self, con: MatrixConstraint, term_at: list):
        self.con, self.term_at = con, term_at

    def set_bounds(self, lo, hi) -> None:
        """New ``lo <= row <= hi`` for every row (broadcast to the family's shape)."""
        n = len(self.con._range_types)
        lo = np.broadcast_to(np.asarray(lo, dtype=float), self.term_at[0].shape).ravel()
        hi = np.broadcast_to(np.asarray(hi, dtype=float), self.term_at[0].shape).ravel()
        ranges = np.asarray(self.con._ranges).reshape(n, 2)
        ranges[:, 0], ranges[:, 1] = lo, hi
        self.con._range_types[:] = _row_kind(lo, hi)

    def set_coef(self, term: int, values) -> None:
        """New coefficients of term number *term* (broadcast to the family's shape)."""
        at = self.term_at[term]
        values = np.broadcast_to(np.asarray(values, dtype=float), at.shape)
        has = at >= 0
        self.con._vals[at[has]] = values[has]


def _row_kind(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``MatrixConstraint`` row types: equality where ``lo == hi``, else the finite sides."""
    return np.where(lo == hi, MatrixConstraint.Equality,
                    np.where(np.isfinite(lo), MatrixConstraint.LowerBound, 0)
                    | np.where(np.isfinite(hi), MatrixConstraint.UpperBound, 0)).astype(np.uint8)


class Switches:
    """Variables in ``[0, 1]`` that a solve may make binary and then fix at their
    solution (an asset's charge/discharge choice, an account's import/export
    choice), their bounds kept for the model of record.

    Parameters
    ----------
    members : list of VarData
        The variables, in C order of *shape*.
    shape : tuple
    """

    def __init__(self, members: list, shape: tuple):
        self.members, self.shape = members, shape
        self.lo, self.hi = np.zeros(shape), np.ones(shape)
        self._pyomo = (self.lo, self.hi)
        self.cols = np.full(shape, -1)          # set by the owning block's bind()

    def reset(self, lp) -> None:
        """Free every switch again."""
        if not ((self.lo == 0).all() and (self.hi == 1).all()):
            self.lo, self.hi = np.zeros(self.shape), np.ones(self.shape)
            lp.set_col_bounds(self.cols, 0.0, 1.0)

    def fix(self, lp, where: np.ndarray) -> None:
        """Fix the switches at *where* to their (integer) solution values."""
        z = np.round(lp.values(self.cols[where]))
        self.lo, self.hi = self.lo.copy(), self.hi.copy()
        self.lo[where] = self.hi[where] = z
        lp.set_col_bounds(self.cols[where], z, z)

    def sync(self) -> None:
        """Write the current bounds into the Pyomo model."""
        set_bounds(self.members, self.lo, self.hi, *self._pyomo)
        self._pyomo = (self.lo, self.hi)


def set_bounds(members: list, lo, hi, old_lo, old_hi) -> None:
    """Set the bounds of the Pyomo variables *members* (infinite: none) where they
    differ from *old_lo* / *old_hi* (all broadcast to ``len(members)``)."""
    n = len(members)
    lo, hi, old_lo, old_hi = (np.broadcast_to(np.asarray(x, dtype=float).ravel() if np.ndim(x) else x, (n,))
                              for x in (lo, hi, old_lo, old_hi))
    for k in np.flatnonzero((lo != old_lo) | (hi != old_hi)).tolist():
        a, b = float(lo[k]), float(hi[k])
        members[k].setlb(a if np.isfinite(a) else None)
        members[k].setub(b if np.isfinite(b) else None)


def positions(shape) -> np.ndarray:
    """Places of the members of a ``Var`` indexed by ranges of *shape* in its ``values()``."""
    return np.arange(int(np.prod(shape))).reshape(shape)


class _Block:
    """Shared plumbing: per-form slices and node membership."""

    def __init__(self, forms, grid: HorizonGrid):
        self.forms = list(forms)
        self.grid = grid
        self.H = grid.n_blocks
        sizes = [f.n_assets for f in self.forms]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.N = int(self.offsets[-1])
        self.nodes = _asset_nodes(self.forms)

    def at_node(self, node) -> list[int]:
        return np.flatnonzero(self.nodes == node).tolist()

    def split(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Per-asset rows of *values* back to each form's fleet."""
        return {f.fleet: values[self.offsets[j]:self.offsets[j + 1]] for j, f in enumerate(self.forms)}


class CurtailableBlock(_Block):
    """Curtailable sources, aggregated per node.

    ``0 <= p[n,t] <= sum_{i at n} P_max[i,t]`` — exact, because the Minkowski
    sum of intervals ``[0, P_i]`` is the interval ``[0, sum P_i]``; a plan is
    disaggregated back to assets pro rata to their available power.

    Cost: ``-c_curt * dt[t] * p[n,t]`` (a premium on every kWh of green power
    used rather than curtailed; constant terms dropped).
    """

    def __init__(self, m, forms: list[CurtailableSource], grid: HorizonGrid, penalty_cny_per_kwh: float):
        super().__init__(forms, grid)
        self.node_list = sorted(set(self.nodes.tolist()))
        self.penalty = penalty_cny_per_kwh
        self.avail = self._pyomo_avail = self._data(forms)
        self._members = _bounded_var(m, "cu_p", (range(len(self.node_list)), range(self.H)), 0.0, self.avail)
        self.m = m
        self._p = var_rows(self._members, len(self.node_list), self.H)

    def _data(self, forms) -> np.ndarray:
        per_asset = stack(forms, "p_max_kw") if forms else np.zeros((0, self.H))
        return np.stack([per_asset[self.nodes == n].sum(axis=0) for n in self.node_list]) \
            if self.node_list else np.zeros((0, self.H))

    def injection(self, node, t) -> list[tuple]:
        """Terms ``(coefficient, variable)`` of the power injected at *node* in block *t*."""
        if node not in self.node_list:
            return []
        return [(1.0, self._p[self.node_list.index(node)][t])]

    def cost(self) -> list[tuple]:
        """Objective terms ``(coefficient, variable)``."""
        dt = self.grid.dt_h.tolist()
        return [(-self.penalty * dt[t], v) for row in self._p for t, v in enumerate(row)]

    def bind(self, lp):
        self.c_p = lp.cols(self.m.cu_p).reshape(len(self.node_list), self.H)

    def update(self, lp, forms):
        self.forms = list(forms)
        self.avail = self._data(forms)
        lp.set_col_bounds(self.c_p, 0.0, self.avail)

    def sync(self) -> None:
        """Write the current window's numbers into the Pyomo model."""
        set_bounds(self._members, 0.0, self.avail, 0.0, self._pyomo_avail)
        self._pyomo_avail = self.avail

    def setpoints(self, lp, n_steps: int) -> dict[str, np.ndarray]:
        """Caps per asset: pro-rata share where the plan curtails, else ``inf``."""
        plan = lp.values(self.c_p[:, :n_steps])
        avail = self.avail[:, :n_steps]
        curtails = plan < avail - 1e-3 * np.maximum(avail, 1.0)
        ratio = np.where(curtails, plan / np.where(avail > 0, avail, 1.0), 1.0)
        node_row = np.array([self.node_list.index(n) for n in self.nodes], dtype=int)
        per_asset = stack(self.forms, "p_max_kw")[:, :n_steps]
        caps = np.where(curtails[node_row], per_asset * ratio[node_row], np.inf)
        return self.split(caps)


def best_effort_path(e0, a, up, down, e_min, e_max) -> np.ndarray:
    """The energy path that keeps to ``[e_min, e_max]`` wherever the power limits allow.

    *up* and *down* are the most energy charging and discharging can add and
    remove in each block [kWh], *a* the self-discharge factors.  A backward pass
    first turns the bounds into envelopes (to end block t+1 above ``e_min`` the
    store must end block t above ``(e_min[t+1] - up[t+1]) / a[t+1]``, and
    likewise below ``e_max``), so a deadline is seen early enough; the forward
    pass then steers toward the envelopes as fast as the limits allow.  Bounds
    widened to contain this path keep the LP feasible whatever the initial
    state, and are not widened at all where they can be met.

    Returns
    -------
    ndarray, shape (N, H)
        The path at the end of each block. [kWh]
    """
    n, h = np.shape(a)
    # block-major copies: each block's row is contiguous, and the loops below
    # are a handful of ufunc calls per block (no np.clip wrapper)
    a, up, down = (np.ascontiguousarray(np.broadcast_to(x, (n, h)).T, dtype=float) for x in (a, up, down))
    lo, hi = (np.array(np.broadcast_to(x, (n, h)).T, dtype=float) for x in (e_min, e_max))
    tmp = np.empty(n)
    for t in range(h - 2, -1, -1):
        np.maximum(lo[t], np.divide(np.subtract(lo[t + 1], up[t + 1], out=tmp), a[t + 1], out=tmp), out=lo[t])
        np.minimum(hi[t], np.divide(np.add(hi[t + 1], down[t + 1], out=tmp), a[t + 1], out=tmp), out=hi[t])
    out = np.empty((h, n))
    e = np.broadcast_to(np.asarray(e0, dtype=float), (n,))
    for t in range(h):
        drift = a[t] * e
        target = np.minimum(np.maximum(drift, lo[t]), np.maximum(lo[t], hi[t]))
        e = out[t]
        np.minimum(np.maximum(target, drift - down[t], out=e), drift + up[t], out=e)
    return out.T


OVERLAP_FRAC = 1e-6     # simultaneous charge and discharge below this share of an asset's power is noise


class StorageBlock(_Block):
    """Storage-like assets: batteries, EV sessions, deferrable energy.

    ================  =====================================================
    ``pc[i,t]``       charge power, ``P^c_min[i,t] <= pc <= P^c_max[i,t]`` [kW]
    ``pd[i,t] >= 0``  discharge power, ``<= P^d_max[i,t]`` (only assets that
                      can discharge get this variable) [kW]
    ``e[i,s]``        energy at state ``s = 0..H`` [kWh]; ``e[i,0] = E_init``
    ``u[i] >= 0``     energy short of the terminal target [kWh]
    ================  =====================================================

    ``st_dyn[i*H+t]``:  ``e[i,t+1] - a[i,t] e[i,t] - eta_c dt[t] pc[i,t] + dt[t] / eta_d pd[i,t] = 0``
    with ``a = exp(-sigma dt)``;
    ``st_target[i]``: ``e[i,H] + u[i] >= E_target[i]``;
    ``st_share[j*H+t]`` for each asset ``j`` that can discharge:
    ``(P^d_max pc + P^c_max pd) / S <= P^c_max P^d_max / S`` with
    ``S = max(P^c_max, P^d_max, 1)``: a block's charge and discharge share its
    time (``pc/P^c_max + pd/P^d_max <= 1``);
    ``st_group_c[g*H+t]``: ``sum_{i in g} pc[i,t] <= L^c[g,t]`` and
    ``st_group_d[g*H+t]``: ``sum_{i in g} pd[i,t] <= L^d[g,t]`` for each group
    ``g`` of a :class:`~vpp.flex.SharedLimit` (hard: one coupling row per
    group and block, no slack; the discharge rows over the members that can
    discharge, for groups that have any).  Where a plan still charges and
    discharges at once in a block the physics will carry out,
    :meth:`DispatchModel.solve` closes the side against the net flow
    (:meth:`close_one_side`) and solves again;
    bounds ``E_min[i,t] <= e[i,t+1] <= E_max[i,t]``, widened only where even
    the best-effort path (:func:`best_effort_path`) cannot meet them, so every
    window is feasible and every reachable bound (an EV's or a batch job's
    deadline) binds.  Cost: ``sum c_thr dt (pc + pd) + sum c_short u``.
    Injection at a node: ``sum (pd - pc)``.
    """

    def __init__(self, m, forms: list[StorageLike], grid: HorizonGrid, limits: list[SharedLimit] = ()):
        super().__init__(forms, grid)
        self.dis = np.concatenate([[bool(np.any(f.p_discharge_max_kw > 0))] * f.n_assets for f in forms]) \
            if forms else np.zeros(0, bool)
        self.group = self._groups(limits)
        self.d = self._pyomo = d = self._data(forms, limits)
        self.dis_idx = np.flatnonzero(self.dis).tolist()
        N, H = self.N, self.H
        pc = _bounded_var(m, "st_pc", (range(N), range(H)), d["pc_min"], d["pc_max"])
        pd = _bounded_var(m, "st_pd", (self.dis_idx, range(H)), 0.0, d["pd_max"][self.dis])
        e = _bounded_var(m, "st_e", (range(N), range(H + 1)), d["e_lo"], d["e_hi"])
        m.st_u = Var(range(N), domain=NonNegativeReals)
        u = list(m.st_u.values())
        D = len(self.dis_idx)
        self.closed_pc, self.closed_pd = np.zeros((D, H), bool), np.zeros((D, H), bool)
        e_at = positions((N, H + 1))
        pd_at = np.cumsum(self.dis)[:, None] - 1                     # row of asset i in st_pd
        rows = MatrixRows((m.st_pc, pc), (m.st_pd, pd), (m.st_e, e), (m.st_u, u))
        self.dyn = rows.add(m, "st_dyn", (N, H), [
            (m.st_e, e_at[:, 1:], 1.0), (m.st_e, e_at[:, :-1], -d["a"]), (m.st_pc, positions((N, H)), -d["kc"]),
            (m.st_pd, np.maximum(pd_at, 0) * H + np.arange(H), d["kd"], self.dis[:, None])], 0.0, 0.0)
        self.target = rows.add(m, "st_target", (N,), [(m.st_e, e_at[:, H], 1.0), (m.st_u, positions(N), 1.0)],
                               d["target"], np.inf)
        self.share = rows.add(m, "st_share", (D, H), [(m.st_pc, positions((N, H))[self.dis], d["share_c"]),
                                                      (m.st_pd, positions((D, H)), d["share_d"])], -np.inf, d["share"])
        self.grp_c = self._group_rows(m, rows, "st_group_c", m.st_pc, np.arange(N), self.group, d["grp_c"])
        self.d_groups = np.unique(self.group[self.dis][self.group[self.dis] >= 0])
        self.grp_d = self._group_rows(m, rows, "st_group_d", m.st_pd, np.arange(D), self.group[self.dis],
                                      d["grp_d"][self.d_groups], self.d_groups)
        self.m = m
        self._members = dict(pc=pc, pd=pd, e=e)
        self._pyomo_open = self._open_bounds(d)
        self._pc, self._u = var_rows(pc, N, H), u
        self._pd = dict(zip(self.dis_idx, var_rows(pd, len(self.dis_idx), H), strict=True))

    def _groups(self, limits) -> np.ndarray:
        """Each asset's group over every :class:`SharedLimit`, numbered in their
        order (-1: none)."""
        group, n_groups = np.full(self.N, -1), 0
        fleets = [f.fleet for f in self.forms]
        for lim in limits:
            at = [j for j, name in enumerate(fleets) if name == lim.fleet]
            rows = np.concatenate([np.arange(self.offsets[j], self.offsets[j + 1]) for j in at]).astype(int) \
                if at else np.zeros(0, int)
            if rows.size != lim.n_assets:
                raise ValueError(f"SharedLimit of fleet {lim.fleet!r} groups {lim.n_assets} assets, but the fleet's "
                                 f"StorageLike forms have {rows.size}")
            group[rows] = np.where(lim.group >= 0, lim.group + n_groups, -1)
            n_groups += lim.n_groups
        self.n_groups = n_groups
        return group

    @staticmethod
    def _group_limits(limits, n_groups: int, h: int, attr: str) -> np.ndarray:
        out = np.concatenate([np.asarray(getattr(lim, attr), dtype=float) for lim in limits]) \
            if limits else np.zeros((0, h))
        if out.shape != (n_groups, h):
            raise ValueError(f"SharedLimit {attr} has shape {out.shape}, expected ({n_groups}, {h})")
        return out

    def _group_rows(self, m, rows: MatrixRows, name: str, var, at: np.ndarray, group: np.ndarray, limit,
                    which: np.ndarray | None = None) -> MatrixFamily:
        """``sum_{i in g} var[at[i], t] <= limit[g, t]`` for the groups *which*
        (default: all); one term per member slot, masked where a group is smaller."""
        H = self.H
        which = np.arange(self.n_groups) if which is None else which
        members = [at[group == g] for g in which]
        width = max((len(x) for x in members), default=0)
        slot = np.zeros((len(which), max(width, 1)), dtype=int)
        has = np.zeros_like(slot, dtype=bool)
        for r, x in enumerate(members):
            slot[r, :len(x)], has[r, :len(x)] = x, True
        terms = [(var, slot[:, j, None] * H + np.arange(H), 1.0, has[:, j, None]) for j in range(slot.shape[1])]
        return rows.add(m, name, (len(which), H), terms, -np.inf, limit)

    def _data(self, forms, limits) -> dict:
        g = self.grid
        dt = g.dt_h[None, :]
        grp_c = self._group_limits(limits, self.n_groups, self.H, "charge_limit_kw")
        grp_d = self._group_limits(limits, self.n_groups, self.H, "discharge_limit_kw")
        if not forms:
            z = np.zeros((0, self.H))
            return dict(pc_max=z, pd_max=z, e_lo=np.zeros((0, self.H + 1)), e_hi=np.zeros((0, self.H + 1)),
                        a=z, kc=z, kd=z, target=np.zeros(0), thr=np.zeros(0), short=np.zeros(0), pc_dis=z, pd_dis=z,
                        share_c=z, share_d=z, share=z, grp_c=grp_c, grp_d=grp_d, pc_min=z)
        a = np.exp(-stack_blocks(forms, "self_discharge_per_h", self.H) * dt)
        e0 = stack(forms, "e_init_kwh")
        pc_max, pd_max = stack(forms, "p_charge_max_kw"), stack(forms, "p_discharge_max_kw")
        kc, kd = stack_blocks(forms, "eta_charge", self.H) * dt, dt / stack_blocks(forms, "eta_discharge", self.H)
        e_min, e_max = stack(forms, "e_min_kwh"), stack(forms, "e_max_kwh")
        best = best_effort_path(e0, a, kc * pc_max, kd * pd_max, e_min, e_max)
        e_lo, e_hi = np.minimum(e_min, best), np.maximum(e_max, best)
        pc_dis, pd_dis = pc_max[self.dis], pd_max[self.dis]
        scale = np.maximum(np.maximum(pc_dis, pd_dis), 1.0)
        return dict(
            pc_dis=pc_dis,
            pd_dis=pd_dis,
            share_c=pd_dis / scale,
            share_d=pc_dis / scale,
            share=pc_dis * pd_dis / scale,
            pc_max=pc_max,
            pc_min=np.minimum(stack(forms, "p_charge_min_kw"), pc_max),
            pd_max=pd_max,
            e_lo=np.column_stack([e0, e_lo]),
            e_hi=np.column_stack([e0, e_hi]),
            a=a,
            kc=kc,
            kd=kd,
            target=stack(forms, "e_target_kwh"),
            thr=stack(forms, "throughput_cost_cny_per_kwh"),
            short=stack(forms, "shortfall_cost_cny_per_kwh"),
            grp_c=grp_c,
            grp_d=grp_d,
        )

    def injection(self, node, t) -> list[tuple]:
        """Terms ``(coefficient, variable)`` of the power injected at *node* in block *t*."""
        idx = self.at_node(node)
        return [(1.0, self._pd[i][t]) for i in idx if i in self._pd] + [(-1.0, self._pc[i][t]) for i in idx]

    def cost(self) -> list[tuple]:
        """Objective terms ``(coefficient, variable)``."""
        dt = self.grid.dt_h.tolist()
        thr, short = (self.d[k].tolist() for k in ("thr", "short"))
        return ([(thr[i] * dt[t], v) for i, row in enumerate(self._pc) for t, v in enumerate(row)]
                + [(thr[i] * dt[t], v) for i, row in self._pd.items() for t, v in enumerate(row)]
                + [(short[i], v) for i, v in enumerate(self._u)])

    def bind(self, lp):
        m, N, H = self.m, self.N, self.H
        self.c_pc = lp.cols(m.st_pc).reshape(N, H)
        self.c_pd = lp.cols(m.st_pd).reshape(len(self.dis_idx), H)
        self.c_e = lp.cols(m.st_e).reshape(N, H + 1)
        self.c_u = lp.cols(m.st_u)
        self.r_dyn = lp.rows(m.st_dyn).reshape(N, H)
        self.r_target = lp.rows(m.st_target)
        self.r_share = lp.rows(m.st_share).reshape(len(self.dis_idx), H)
        self.r_grp_c = lp.rows(m.st_group_c).reshape(-1, H)
        self.r_grp_d = lp.rows(m.st_group_d).reshape(-1, H)

    def update(self, lp, forms, limits=()):
        self.forms = list(forms)
        old, self.d = self.d, self._data(forms, limits)
        d = self.d
        self.closed_pc[:], self.closed_pd[:] = False, False
        self._push_power_bounds(lp)
        lp.set_col_bounds(self.c_e, d["e_lo"], d["e_hi"])
        lp.set_row_bounds(self.r_target, d["target"], np.inf)
        dt = self.grid.dt_h[None, :]
        lp.set_costs(self.c_pc, d["thr"][:, None] * dt)
        lp.set_costs(self.c_pd, d["thr"][self.dis][:, None] * dt)
        lp.set_costs(self.c_u, d["short"])
        if not all(np.array_equal(old[k], d[k]) for k in ("a", "kc", "kd")):
            lp.set_coeffs(self.r_dyn, self.c_e[:, :-1], -d["a"])
            lp.set_coeffs(self.r_dyn, self.c_pc, -d["kc"])
            lp.set_coeffs(self.r_dyn[self.dis], self.c_pd, d["kd"][self.dis])
        for key, cols in (("share_c", self.c_pc[self.dis]), ("share_d", self.c_pd)):
            changed = old[key] != d[key]
            lp.set_coeffs(self.r_share[changed], cols[changed], d[key][changed])
        lp.set_row_bounds(self.r_share, -np.inf, d["share"])
        lp.set_row_bounds(self.r_grp_c, -np.inf, d["grp_c"])
        lp.set_row_bounds(self.r_grp_d, -np.inf, d["grp_d"][self.d_groups])

    def sync(self) -> None:
        """Write the current window's numbers into the Pyomo model."""
        d, old, mem = self.d, self._pyomo, self._members
        set_bounds(mem["e"], d["e_lo"], d["e_hi"], old["e_lo"], old["e_hi"])
        self.target.set_bounds(d["target"], np.inf)
        for term, key, sign in ((1, "a", -1.0), (2, "kc", -1.0), (3, "kd", 1.0)):
            self.dyn.set_coef(term, sign * d[key])
        self.share.set_coef(0, d["share_c"])
        self.share.set_coef(1, d["share_d"])
        self.share.set_bounds(-np.inf, d["share"])
        self.grp_c.set_bounds(-np.inf, d["grp_c"])
        self.grp_d.set_bounds(-np.inf, d["grp_d"][self.d_groups])
        pc_lo, pc_hi, pd_hi = self._open_bounds(d)
        old_pc_lo, old_pc_hi, old_pd_hi = self._pyomo_open
        set_bounds(mem["pc"], pc_lo, pc_hi, old_pc_lo, old_pc_hi)
        set_bounds(mem["pd"], 0.0, pd_hi, 0.0, old_pd_hi)
        self._pyomo, self._pyomo_open = d, (pc_lo, pc_hi, pd_hi)

    def overlap(self, lp, n_steps: int) -> np.ndarray:
        """Which dischargeable assets the plan has charging and discharging at once
        in the first *n_steps* blocks, shape (D, n_steps) (more than
        :data:`OVERLAP_FRAC` of the asset's power, or 1 W, each way)."""
        pc, pd = lp.values(self.c_pc[self.dis][:, :n_steps]), lp.values(self.c_pd[:, :n_steps])
        scale = np.maximum(self.d["pc_dis"], self.d["pd_dis"])[:, :n_steps]
        return np.minimum(pc, pd) > OVERLAP_FRAC * scale + 1e-3

    def _open_bounds(self, d) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bounds of ``pc`` (lower and upper, N x H) and the upper bound of ``pd``
        (D, H), with the closed sides at zero."""
        pc_lo, pc_hi = d["pc_min"].copy(), d["pc_max"].copy()
        pc_hi[self.dis] = np.where(self.closed_pc, 0.0, pc_hi[self.dis])
        pc_lo[self.dis] = np.where(self.closed_pc, 0.0, pc_lo[self.dis])
        return pc_lo, pc_hi, np.where(self.closed_pd, 0.0, d["pd_max"][self.dis])

    def _push_power_bounds(self, lp) -> None:
        """Charge and discharge bounds of the current window, closed sides at zero, into HiGHS."""
        pc_lo, pc_hi, pd_hi = self._open_bounds(self.d)
        lp.set_col_bounds(self.c_pc, pc_lo, pc_hi)
        lp.set_col_bounds(self.c_pd, 0.0, pd_hi)

    def close_one_side(self, lp, where: np.ndarray) -> None:
        """At the blocks *where* (D, n) of assets that can discharge, close the side
        against the planned net flow: discharge where the asset charges on net,
        charge where it discharges on net (in HiGHS and in the model of record)."""
        n = where.shape[1]
        net = lp.values(self.c_pd[:, :n]) - lp.values(self.c_pc[self.dis][:, :n])
        self.closed_pd[:, :n] |= where & (net < 0)
        self.closed_pc[:, :n] |= where & (net >= 0)
        self._push_power_bounds(lp)

    def reopen(self, lp) -> None:
        """Open every side closed by :meth:`close_one_side`."""
        if self.closed_pc.any() or self.closed_pd.any():
            self.closed_pc[:], self.closed_pd[:] = False, False
            self._push_power_bounds(lp)

    def setpoints(self, lp, n_steps: int) -> dict[str, np.ndarray]:
        """Net power per asset, generator sign: ``pd - pc``. [kW]"""
        p = -lp.values(self.c_pc[:, :n_steps])
        p[self.dis] += lp.values(self.c_pd[:, :n_steps])
        return self.split(p)

    def energy(self, lp) -> np.ndarray:
        return lp.values(self.c_e)


class ThermalBlock(_Block):
    """Thermal assets (buildings): HVAC electric power moves a linear thermal state.

    ====================  ==================================================
    ``p[i,t]``            HVAC electric power, ``0 <= p <= P_max[i,t]`` [kW]
    ``T[i,s,j]``          thermal state ``j`` at state time ``s = 0..H``,
                          ``T[i,0,j] = T_init[i,j]`` [degC]
    ``u[i,t] >= 0``       excursion of state 0 outside the comfort band at
                          the end of block ``t`` [K]
    ====================  ==================================================

    ``th_dyn[(i*H+t)*S+j]``:  ``T[i,t+1,j] - sum_k A[i,t,j,k] T[i,t,k] - b[i,t,j] p[i,t] = d[i,t,j]``;
    ``th_hi[i*H+t]``:  ``T[i,t+1,0] - u[i,t] <= T_max[i,t]``;
    ``th_lo[i*H+t]``:  ``T[i,t+1,0] + u[i,t] >= T_min[i,t]``.
    Cost: ``sum c_dis dt[t] u[i,t]`` (kelvin-hours).  Injection: ``-sum p``.
    Forms with fewer states than the largest are padded with inert states.
    """

    def __init__(self, m, forms: list[Thermal], grid: HorizonGrid):
        super().__init__(forms, grid)
        self.S = max((f.n_states for f in forms), default=1)
        self.d = self._pyomo = d = self._data(forms)
        N, H, S = self.N, self.H, self.S
        p = _bounded_var(m, "th_p", (range(N), range(H)), 0.0, d["p_max"])
        lo, hi = np.full((N, H + 1, S), -np.inf), np.full((N, H + 1, S), np.inf)
        lo[:, 0], hi[:, 0] = d["t0"], d["t0"]      # the initial state: fixed by bounds, which update() moves
        T = _bounded_var(m, "th_T", (range(N), range(H + 1), range(S)), lo, hi)
        m.th_u = Var(range(N), range(H), domain=NonNegativeReals)
        T_at, p_at, u_at = positions((N, H + 1, S)), positions((N, H)), positions((N, H))
        u = list(m.th_u.values())
        rows = MatrixRows((m.th_p, p), (m.th_T, T), (m.th_u, u))
        self.dyn = rows.add(m, "th_dyn", (N, H, S), [
            (m.th_T, T_at[:, 1:, :], 1.0), (m.th_p, p_at[..., None], -d["b"]),
            *[(m.th_T, T_at[:, :-1, k, None], -d["a"][..., k]) for k in range(S)]], d["d"], d["d"])
        self.hi = rows.add(m, "th_hi", (N, H), [(m.th_T, T_at[:, 1:, 0], 1.0), (m.th_u, u_at, -1.0)],
                           -np.inf, d["t_max"])
        self.lo = rows.add(m, "th_lo", (N, H), [(m.th_T, T_at[:, 1:, 0], 1.0), (m.th_u, u_at, 1.0)],
                           d["t_min"], np.inf)
        self._members = dict(p=p, T0=[T[k] for k in positions((N, H + 1, S))[:, 0, :].ravel().tolist()])
        p, u = var_rows(p, N, H), var_rows(u, N, H)
        self.m = m
        self._p, self._u = p, u

    def _pad(self, forms, attr: str, shape_tail) -> np.ndarray:
        """Concatenate a state-shaped attribute, zero-padding forms with fewer states."""
        out = []
        for f in forms:
            x = np.asarray(getattr(f, attr), dtype=float)
            pad = [(0, 0)] * (x.ndim - len(shape_tail)) + [(0, self.S - f.n_states)] * len(shape_tail)
            out.append(np.pad(x, pad))
        return np.concatenate(out, axis=0)

    def _data(self, forms) -> dict:
        H, S = self.H, self.S
        if not forms:
            z = np.zeros((0, H))
            return dict(p_max=z, t0=np.zeros((0, S)), a=np.zeros((0, H, S, S)), b=np.zeros((0, H, S)),
                        d=np.zeros((0, H, S)), t_max=z, t_min=z, c=np.zeros(0))
        return dict(p_max=stack(forms, "p_max_kw"), t0=self._pad(forms, "temp_init_c", (S,)),
                    a=self._pad(forms, "a", (S, S)), b=self._pad(forms, "b_k_per_kw", (S,)),
                    d=self._pad(forms, "d_k", (S,)),
                    t_max=stack(forms, "temp_max_c"), t_min=stack(forms, "temp_min_c"),
                    c=stack(forms, "discomfort_cost_cny_per_kh"))

    def injection(self, node, t) -> list[tuple]:
        """Terms ``(coefficient, variable)`` of the power injected at *node* in block *t*."""
        return [(-1.0, self._p[i][t]) for i in self.at_node(node)]

    def cost(self) -> list[tuple]:
        """Objective terms ``(coefficient, variable)``."""
        c, dt = self.d["c"].tolist(), self.grid.dt_h.tolist()
        return [(c[i] * dt[t], v) for i, row in enumerate(self._u) for t, v in enumerate(row)]

    def bind(self, lp):
        m, N, H, S = self.m, self.N, self.H, self.S
        self.c_p = lp.cols(m.th_p).reshape(N, H)
        self.c_T = lp.cols(m.th_T).reshape(N, H + 1, S)
        self.c_u = lp.cols(m.th_u).reshape(N, H)
        self.r_dyn = lp.rows(m.th_dyn).reshape(N, H, S)
        self.r_hi = lp.rows(m.th_hi).reshape(N, H)
        self.r_lo = lp.rows(m.th_lo).reshape(N, H)

    def update(self, lp, forms):
        self.forms = list(forms)
        old, self.d = self.d, self._data(forms)
        d = self.d
        lp.set_col_bounds(self.c_p, 0.0, d["p_max"])
        lp.set_col_bounds(self.c_T[:, 0, :], d["t0"], d["t0"])
        lp.set_row_bounds(self.r_dyn, d["d"], d["d"])
        lp.set_row_bounds(self.r_hi, -np.inf, d["t_max"])
        lp.set_row_bounds(self.r_lo, d["t_min"], np.inf)
        lp.set_costs(self.c_u, d["c"][:, None] * self.grid.dt_h[None, :])
        a, b = old["a"], old["b"]
        if not np.array_equal(a, d["a"]):
            # row (i,t,j) x column T(i,t,k): every k for every j
            rows = np.repeat(self.r_dyn[..., None], self.S, axis=-1)            # (N,H,S,S)
            cols = np.repeat(self.c_T[:, :-1, None, :], self.S, axis=2)        # (N,H,S,S)
            changed = d["a"] != a
            lp.set_coeffs(rows[changed], cols[changed], -d["a"][changed])
        if not np.array_equal(b, d["b"]):
            changed = d["b"] != b
            cols = np.repeat(self.c_p[..., None], self.S, axis=-1)             # (N,H,S)
            lp.set_coeffs(self.r_dyn[changed], cols[changed], -d["b"][changed])

    def sync(self) -> None:
        """Write the current window's numbers into the Pyomo model."""
        d, old, mem = self.d, self._pyomo, self._members
        set_bounds(mem["p"], 0.0, d["p_max"], 0.0, old["p_max"])
        set_bounds(mem["T0"], d["t0"], d["t0"], old["t0"], old["t0"])
        self.dyn.set_bounds(d["d"], d["d"])
        self.hi.set_bounds(-np.inf, d["t_max"])
        self.lo.set_bounds(d["t_min"], np.inf)
        self.dyn.set_coef(1, -d["b"])
        for k in range(self.S):
            self.dyn.set_coef(2 + k, -d["a"][..., k])
        self._pyomo = d

    def setpoints(self, lp, n_steps: int) -> dict[str, np.ndarray]:
        """HVAC power as a generator-sign setpoint: ``-p``. [kW]"""
        return self.split(-lp.values(self.c_p[:, :n_steps]))

    def temperature(self, lp) -> np.ndarray:
        """Planned state-0 temperature at each state time, shape (N, H + 1). [degC]"""
        return lp.values(self.c_T[:, :, 0])
