"""The dispatch LP of a :class:`~vpp.dispatch.DispatchProblem` built straight in
numpy/scipy and passed to highspy: the reference the Pyomo path is timed and
checked against.  Written independently of ``optimizer/blocks.py`` (same
mathematics, see its docstrings), so agreeing objectives check both.
"""

from __future__ import annotations

import time

import highspy
import numpy as np
import scipy.sparse as sp

from vpp.dispatch import DispatchProblem
from vpp.flex import CurtailableSource, FixedProfile, SharedLimit, StorageLike, Thermal
from vpp.optimizer.blocks import best_effort_path, stack_blocks
from vpp.optimizer.lp import SolverOptions, new_highs
from vpp.optimizer.model import Weights

__all__ = ["DirectLP"]


class _Builder:
    def __init__(self):
        self.lo, self.hi, self.cost = [], [], []
        self.rows, self.cols, self.vals = [], [], []
        self.rlo, self.rhi = [], []
        self.n, self.m = 0, 0
        self.integer: list = []

    def var(self, shape, lo, hi, cost=0.0, integer=False):
        size = int(np.prod(shape))
        idx = np.arange(self.n, self.n + size).reshape(shape)
        self.n += size
        if integer:
            self.integer.extend(idx.ravel().tolist())
        for store, x in ((self.lo, lo), (self.hi, hi), (self.cost, cost)):
            store.append(np.broadcast_to(np.asarray(x, float), shape).ravel())
        return idx

    def con(self, shape, lo, hi):
        size = int(np.prod(shape))
        idx = np.arange(self.m, self.m + size).reshape(shape)
        self.m += size
        self.rlo.append(np.broadcast_to(np.asarray(lo, float), shape).ravel())
        self.rhi.append(np.broadcast_to(np.asarray(hi, float), shape).ravel())
        return idx

    def coef(self, rows, cols, vals):
        rows, cols, vals = np.broadcast_arrays(rows, cols, np.asarray(vals, float))
        self.rows.append(rows.ravel())
        self.cols.append(cols.ravel())
        self.vals.append(vals.ravel())

    def lp(self) -> highspy.HighsLp:
        a = sp.csc_matrix((np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
                          shape=(self.m, self.n))
        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n, self.m
        lp.col_cost_ = np.concatenate(self.cost)
        lp.col_lower_ = np.clip(np.concatenate(self.lo), -inf, inf)
        lp.col_upper_ = np.clip(np.concatenate(self.hi), -inf, inf)
        lp.row_lower_ = np.clip(np.concatenate(self.rlo), -inf, inf)
        lp.row_upper_ = np.clip(np.concatenate(self.rhi), -inf, inf)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
        if self.integer:
            kinds = np.full(self.n, highspy.HighsVarType.kContinuous)
            kinds[self.integer] = highspy.HighsVarType.kInteger
            lp.integrality_ = kinds.tolist()
        return lp


def _stack(forms, attr):
    return np.concatenate([np.asarray(getattr(f, attr), float) for f in forms])


class DirectLP:
    """Build (``build_time_s``) and solve (:meth:`solve`) one window with highspy only."""

    def __init__(self, pr: DispatchProblem, weights: Weights | None = None, solver: SolverOptions | None = None,
                 choice: np.ndarray | None = None):
        t0 = time.perf_counter()
        w = weights or Weights()
        g = pr.grid
        H, dt = g.n_blocks, g.dt_h
        b = _Builder()
        node_names = [n.name for n in pr.nodes]
        inj = [[] for _ in node_names]      # per node: (cols (k, H), sign)

        cur = [f for f in pr.forms if isinstance(f, CurtailableSource)]
        if cur:
            nodes = sorted({f.node for f in cur})
            avail = np.stack([sum(f.p_max_kw.sum(axis=0) for f in cur if f.node == n) for n in nodes])
            p = b.var((len(nodes), H), 0.0, avail, -w.curtailment_penalty_cny_per_kwh * dt)
            for i, n in enumerate(nodes):
                inj[node_names.index(n)].append((p[i][None, :], 1.0))

        st = [f for f in pr.forms if isinstance(f, StorageLike)]
        if st:
            n_st = sum(f.n_assets for f in st)
            a = np.exp(-stack_blocks(st, "self_discharge_per_h", H) * dt)
            e0 = _stack(st, "e_init_kwh")
            thr = _stack(st, "throughput_cost_cny_per_kwh")[:, None] * dt
            pc_max, pd_max = _stack(st, "p_charge_max_kw"), _stack(st, "p_discharge_max_kw")
            kc, kd = stack_blocks(st, "eta_charge", H) * dt, dt / stack_blocks(st, "eta_discharge", H)
            e_min, e_max = _stack(st, "e_min_kwh"), _stack(st, "e_max_kwh")
            best = best_effort_path(e0, a, kc * pc_max, kd * pd_max, e_min, e_max)
            pc = b.var((n_st, H), np.minimum(_stack(st, "p_charge_min_kw"), pc_max), pc_max, thr)
            pd = b.var((n_st, H), 0.0, pd_max, thr)
            e_lo = np.column_stack([e0, np.minimum(e_min, best)])
            e_hi = np.column_stack([e0, np.maximum(e_max, best)])
            e = b.var((n_st, H + 1), e_lo, e_hi)
            u = b.var((n_st,), 0.0, np.inf, _stack(st, "shortfall_cost_cny_per_kwh"))
            r = b.con((n_st, H), 0.0, 0.0)
            b.coef(r, e[:, 1:], 1.0)
            b.coef(r, e[:, :-1], -a)
            b.coef(r, pc, -kc)
            b.coef(r, pd, kd)
            r = b.con((n_st,), _stack(st, "e_target_kwh"), np.inf)
            b.coef(r, e[:, -1], 1.0)
            b.coef(r, u, 1.0)
            # charge and discharge share each block's time: pc / Pc + pd / Pd <= 1, as
            # pc <= Pc s and pd <= Pd (1 - s) with s in [0, 1] (an asset that can discharge)
            dis = np.flatnonzero(pd_max.any(axis=1))
            if dis.size:
                share = b.var((dis.size, H), 0.0, 1.0)
                r = b.con((dis.size, H), -np.inf, 0.0)
                b.coef(r, pc[dis], 1.0)
                b.coef(r, share, -pc_max[dis])
                r = b.con((dis.size, H), -np.inf, pd_max[dis])
                b.coef(r, pd[dis], 1.0)
                b.coef(r, share, pd_max[dis])
            self._add_by_node(inj, node_names, st, pd, 1.0)
            self._add_by_node(inj, node_names, st, pc, -1.0)
            # shared limits: per group and block, sum of members' charge (discharge) <= limit
            offset = np.cumsum([0] + [f.n_assets for f in st])
            for lim in (f for f in pr.forms if isinstance(f, SharedLimit)):
                j = next(j for j, f in enumerate(st) if f.fleet == lim.fleet)
                for grp in range(lim.n_groups):
                    members = offset[j] + np.flatnonzero(lim.group == grp)
                    for var, limit in ((pc, lim.charge_limit_kw), (pd, lim.discharge_limit_kw)):
                        r = b.con((H,), -np.inf, limit[grp])
                        b.coef(np.repeat(r[None, :], members.size, axis=0), var[members], 1.0)

        th = [f for f in pr.forms if isinstance(f, Thermal)]
        if th:
            n_th = sum(f.n_assets for f in th)
            S = max(f.n_states for f in th)

            def pad(attr, tail):
                return np.concatenate([np.pad(np.asarray(getattr(f, attr), float),
                                              [(0, 0)] * (np.ndim(getattr(f, attr)) - tail)
                                              + [(0, S - f.n_states)] * tail) for f in th])

            p = b.var((n_th, H), 0.0, _stack(th, "p_max_kw"))
            t0_ = pad("temp_init_c", 1)
            lo = np.full((n_th, H + 1, S), -np.inf)
            hi = np.full((n_th, H + 1, S), np.inf)
            lo[:, 0], hi[:, 0] = t0_, t0_
            T = b.var((n_th, H + 1, S), lo, hi)
            u = b.var((n_th, H), 0.0, np.inf, _stack(th, "discomfort_cost_cny_per_kh")[:, None] * dt)
            d = pad("d_k", 1)
            a = pad("a", 2)
            r = b.con((n_th, H, S), d, d)
            b.coef(r, T[:, 1:, :], 1.0)
            for k in range(S):
                b.coef(r, np.repeat(T[:, :-1, k][..., None], S, axis=-1), -a[..., k])
            b.coef(r, np.repeat(p[..., None], S, axis=-1), -pad("b_k_per_kw", 1))
            r = b.con((n_th, H), -np.inf, _stack(th, "temp_max_c"))
            b.coef(r, T[:, 1:, 0], 1.0)
            b.coef(r, u, -1.0)
            r = b.con((n_th, H), _stack(th, "temp_min_c"), np.inf)
            b.coef(r, T[:, 1:, 0], 1.0)
            b.coef(r, u, 1.0)
            self._add_by_node(inj, node_names, th, p, -1.0)

        n_nodes = len(node_names)
        big = 1e12
        imp_lim = np.array([n.import_limit_kw for n in pr.nodes])[:, None]
        exp_lim = np.array([n.export_limit_kw for n in pr.nodes])[:, None]
        viol = w.limit_violation_cny_per_kwh * dt
        imp = b.var((n_nodes, H), 0.0, imp_lim)
        exp = b.var((n_nodes, H), 0.0, exp_lim)
        imp_x = b.var((n_nodes, H), 0.0, big, viol)
        exp_x = b.var((n_nodes, H), 0.0, big, viol)
        fixed = np.zeros((n_nodes, H))
        for f in pr.forms:
            if isinstance(f, FixedProfile):
                fixed[node_names.index(f.node)] += f.p_kw
        r = b.con((n_nodes, H), -fixed, -fixed)
        for x, sign in ((imp, 1.0), (imp_x, 1.0), (exp, -1.0), (exp_x, -1.0)):
            b.coef(r, x, sign)
        for i in range(n_nodes):
            for cols, sign in inj[i]:
                b.coef(np.broadcast_to(r[i], cols.shape), cols, sign)
        members = [list(range(n_nodes))] if pr.settlement == "vpp" else [[i] for i in range(n_nodes)]
        K = len(members)
        buy_cost = dt * (w.energy_cost_weight * pr.price_import_cny_per_kwh
                         + w.carbon_price_cny_per_t * pr.co2_kg_per_kwh / 1e3)
        sell_cost = dt * (w.export_penalty_cny_per_kwh - w.energy_cost_weight * pr.price_export_cny_per_kwh)
        buy = b.var((K, H), 0.0, big, buy_cost)
        sell = b.var((K, H), 0.0, big, sell_cost)
        concave = np.flatnonzero(-sell_cost > buy_cost)  # selling earns more than buying costs: one or the other
        if concave.size:
            # a bound on any settled exchange: every limit, load and asset power at once, with a margin
            big = 10.0 * (float(imp_lim.sum() + exp_lim.sum() + np.abs(fixed).sum(axis=0).max())
                          + sum(float(np.abs(getattr(f, a)).max(initial=0.0)) * getattr(f, "n_assets", 1)
                                for f in pr.forms for a in ("p_max_kw", "p_charge_max_kw", "p_discharge_max_kw")
                                if hasattr(f, a)) + 1.0)
            if choice is None:                           # decided by HiGHS's MIP
                on = b.var((K, concave.size), 0.0, 1.0, integer=True)
            else:                                        # given: 1 buys, 0 sells
                fixed_on = np.broadcast_to(np.asarray(choice, float), (K, H))[:, concave]
                on = b.var((K, concave.size), fixed_on, fixed_on)
            r = b.con((K, concave.size), -np.inf, 0.0)
            b.coef(r, buy[:, concave], 1.0)
            b.coef(r, on, -big)
            r = b.con((K, concave.size), -np.inf, big)
            b.coef(r, sell[:, concave], 1.0)
            b.coef(r, on, big)
        peak = b.var((K,), np.broadcast_to(pr.peak_import_so_far_kw, (K,)), np.inf,
                     w.peak_weight * pr.demand_charge_cny_per_kw)
        r = b.con((K, H), 0.0, 0.0)
        for k, mem in enumerate(members):
            for i in mem:
                for x, sign in ((imp, 1.0), (imp_x, 1.0), (exp, -1.0), (exp_x, -1.0)):
                    b.coef(r[k], x[i], sign)
        b.coef(r, buy, -1.0)
        b.coef(r, sell, 1.0)
        r = b.con((K, H), -np.inf, 0.0)
        b.coef(r, buy, 1.0)
        b.coef(r, np.repeat(peak[:, None], H, axis=1), -1.0)
        self.highs = new_highs()
        (solver or SolverOptions()).apply(self.highs)
        self.highs.passModel(b.lp())
        self.n_cols, self.n_rows = b.n, b.m
        self.build_time_s = time.perf_counter() - t0

    @staticmethod
    def _add_by_node(inj, node_names, forms, cols, sign):
        start = 0
        for f in forms:
            inj[node_names.index(f.node)].append((cols[start:start + f.n_assets], sign))
            start += f.n_assets

    def solve(self) -> tuple[str, float, float]:
        """(status, objective [CNY], seconds)."""
        t0 = time.perf_counter()
        self.highs.run()
        elapsed = time.perf_counter() - t0
        status = self.highs.modelStatusToString(self.highs.getModelStatus()).lower()
        return status, float(self.highs.getInfo().objective_function_value), elapsed
