"""The source-load interaction dispatch model: a readable list of builder calls.

``build`` reads like a table of contents (after PyPSA's ``create_model``):
one block per flexibility form, the grid (node balances, connection limits,
settlement, peak demand), the objective, then the user's
``extra_constraints(model, problem)`` hook.  The model is compiled once
(:class:`~vpp.optimizer.lp.CompiledLP`) and later windows only update
numbers (:meth:`DispatchModel.update`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from pyomo.common.gc_manager import PauseGC
from pyomo.environ import ConcreteModel, Constraint, Objective, Suffix, Var, minimize

from vpp.dispatch import DispatchProblem
from vpp.dr import block_terms
from vpp.flex import CurtailableSource, FixedProfile, SharedLimit, StorageLike, Thermal
from vpp.optimizer.blocks import CurtailableBlock, StorageBlock, Switches, ThermalBlock, linear, set_bounds, var_rows
from vpp.optimizer.lp import CompiledLP, SolverOptions

__all__ = ["Weights", "DispatchModel", "signature"]


@dataclass(frozen=True)
class Weights:
    """Objective weights beyond the tariff.

    Parameters
    ----------
    carbon_price_cny_per_t : float
        Price put on CO2 from imported electricity. [CNY/t]
    curtailment_penalty_cny_per_kwh : float
        Premium on each kWh of local green power used instead of curtailed. [CNY/kWh]
    limit_violation_cny_per_kwh : float
        Penalty on exchange beyond a node's import or export limit, the VPP's
        exchange limits or its ramp limit (slacks that keep every window
        feasible). [CNY/kWh]
    energy_cost_weight : float
        Weight of the tariff (import charges minus export revenue); 0 dispatches
        on the other terms alone. [-]
    peak_weight : float
        Weight of the demand charge on the billed peak. [-]
    export_penalty_cny_per_kwh : float
        Cost per kWh the VPP exports: the green-power local consumption term
        (exports are green first, so this rewards using green power locally). [CNY/kWh]
    """

    carbon_price_cny_per_t: float = 100.0
    curtailment_penalty_cny_per_kwh: float = 0.05
    limit_violation_cny_per_kwh: float = 10.0
    energy_cost_weight: float = 1.0
    peak_weight: float = 1.0
    export_penalty_cny_per_kwh: float = 0.0


def _of(problem: DispatchProblem, kind) -> list:
    return [f for f in problem.forms if isinstance(f, kind)]


def signature(problem: DispatchProblem) -> tuple:
    """What fixes the model's structure; a window with another signature needs a rebuild."""
    forms = tuple(
        (type(f).__name__, f.fleet, f.node, getattr(f, "n_assets", 0),
         bool(np.any(f.p_discharge_max_kw > 0)) if isinstance(f, StorageLike) else False,
         f.group.tobytes() if isinstance(f, SharedLimit) else None)
        for f in problem.forms)
    limits = (bool(np.isfinite(problem.vpp_import_limit_kw) or np.isfinite(problem.vpp_export_limit_kw)),
              bool(np.isfinite(problem.ramp_limit_kw_per_h)), bool(problem.dr_events),
              problem.position_kw is not None)
    return (tuple(problem.grid.steps_per_block.tolist()), tuple(n.name for n in problem.nodes),
            problem.settlement, forms, limits)


class _GridBlock:
    """Node balances, connection limits, settlement and peak demand.

    ==============================  ==========================================
    ``imp[n,t], exp[n,t] >= 0``     exchange with the upstream grid within the
                                    node's limits [kW]
    ``imp_x[n,t], exp_x[n,t] >= 0`` exchange beyond the limits (penalised) [kW]
    ``buy[k,t], sell[k,t] >= 0``    settled import/export of account ``k``: the
                                    VPP (``settlement = "vpp"``) or each node [kW]
    ``peak[k] >= peak_so_far[k]``   billed peak import [kW]
    ``w[k,t] in [0, 1]``            whether account ``k`` imports in block ``t``
                                    (binary where exporting earns more than
                                    importing costs; with the MIP only) [-]
    ==============================  ==========================================

    ``balance[n,t]``: ``sum injections + imp + imp_x - exp - exp_x = -fixed[n,t]``;
    ``settle[k,t]``: ``sum_{n in k} (imp + imp_x - exp - exp_x) - buy + sell = 0``;
    ``peak_def[k,t]``: ``buy[k,t] - peak[k] <= 0``;
    ``buy_on[k,t]``: ``buy - M w <= 0``, ``sell_on[k,t]``: ``sell + M w <= M``.
    Cost: ``dt (price_imp + carbon_price co2) buy - dt price_exp sell
    + demand_charge peak + c_viol dt (imp_x + exp_x)``: the bill's own prices.
    Where exporting earns more than importing costs (the valley price below
    the feed-in price), the settled cost of the net exchange is concave and
    buying and selling at once would be a fictitious profit.  There the
    account's choice is either searched (``choice``: both sides priced by the
    chosen side's line, :meth:`DispatchModel._sign_search`) or made by
    HiGHS's MIP (``w`` binary; its rows exist with ``mip_choice=True``).
    """

    def __init__(self, m, problem: DispatchProblem, blocks, weights: Weights, mip_choice: bool = False):
        self.problem, self.weights, self.blocks = problem, weights, blocks
        g = problem.grid
        self.H = g.n_blocks
        self.node_names = [n.name for n in problem.nodes]
        self.accounts = ["vpp"] if problem.settlement == "vpp" else self.node_names
        big = self._big_m(problem)
        nodes, T, K = range(len(self.node_names)), range(self.H), range(len(self.accounts))
        imp_lim = [n.import_limit_kw for n in problem.nodes]
        exp_lim = [n.export_limit_kw for n in problem.nodes]
        m.imp = Var(nodes, T, bounds=lambda _, n, t: (0.0, imp_lim[n]))
        m.exp = Var(nodes, T, bounds=lambda _, n, t: (0.0, exp_lim[n]))
        m.imp_x = Var(nodes, T, bounds=(0.0, big))
        m.exp_x = Var(nodes, T, bounds=(0.0, big))
        m.buy = Var(K, T, bounds=(0.0, big))
        m.sell = Var(K, T, bounds=(0.0, big))
        peak0 = np.broadcast_to(problem.peak_import_so_far_kw, (len(self.accounts),)).tolist()
        m.peak = Var(K, bounds=lambda _, k: (peak0[k], None))
        n_nodes, n_acc = len(self.node_names), len(self.accounts)
        imp, imp_x = var_rows(m.imp, n_nodes, self.H), var_rows(m.imp_x, n_nodes, self.H)
        exp, exp_x = var_rows(m.exp, n_nodes, self.H), var_rows(m.exp_x, n_nodes, self.H)
        buy, sell = var_rows(m.buy, n_acc, self.H), var_rows(m.sell, n_acc, self.H)
        peak = list(m.peak.values())
        self.choice = None      # buy (1) or sell (0) where selling beats buying, while searched
        self._last = None       # the last window's block starts, final choice and concave blocks
        self.has_limits = bool(np.isfinite(problem.vpp_import_limit_kw) or np.isfinite(problem.vpp_export_limit_kw))
        self.has_ramp = bool(np.isfinite(problem.ramp_limit_kw_per_h))
        self.has_dr = bool(problem.dr_events)
        self.has_position = problem.position_kw is not None
        rhs = self._rhs(problem)
        fixed_rhs = rhs["balance"][0].tolist()

        def net(n, t):
            """Terms of node *n*'s net import in block *t*."""
            return [(1.0, imp[n][t]), (1.0, imp_x[n][t]), (-1.0, exp[n][t]), (-1.0, exp_x[n][t])]

        def balance(_, n, t):
            name = self.node_names[n]
            inj = [term for b in blocks for term in b.injection(name, t)]
            return linear(inj + net(n, t)) == fixed_rhs[n][t]

        m.balance = Constraint(nodes, T, rule=balance)
        members = [list(nodes)] if problem.settlement == "vpp" else [[n] for n in nodes]
        m.settle = Constraint(K, T, rule=lambda _, k, t: linear(
            [term for n in members[k] for term in net(n, t)] + [(-1.0, buy[k][t]), (1.0, sell[k][t])]) == 0.0)
        m.peak_def = Constraint(K, T, rule=lambda _, k, t: linear([(1.0, buy[k][t]), (-1.0, peak[k])]) <= 0.0)
        self.mode = None
        if mip_choice:
            m.w = Var(K, T, bounds=(0.0, 1.0))
            self.mode = Switches(list(m.w.values()), (n_acc, self.H))
            w = var_rows(self.mode.members, n_acc, self.H)
            m.buy_on = Constraint(K, T, rule=lambda _, k, t: linear([(1.0, buy[k][t]), (-big, w[k][t])]) <= 0.0)
            m.sell_on = Constraint(K, T, rule=lambda _, k, t: linear([(1.0, sell[k][t]), (big, w[k][t])]) <= big)
        self.m = m
        self._vars = dict(buy=buy, sell=sell, peak=peak, imp_x=imp_x, exp_x=exp_x)
        self._vpp_limits(m, problem, nodes, T, net, big)
        if self.has_dr:
            self._dr_rows(m, problem, nodes, T, net)
        if self.has_position:
            m.dev_up = Var(T, bounds=(0.0, None))
            m.dev_dn = Var(T, bounds=(0.0, None))
            m.dev_up_def = Constraint(T, rule=lambda _, t: linear(
                [(c, x) for n in nodes for c, x in net(n, t)] + [(-1.0, m.dev_up[t])]) <= 0.0)
            m.dev_dn_def = Constraint(T, rule=lambda _, t: linear(
                [(-c, x) for n in nodes for c, x in net(n, t)] + [(-1.0, m.dev_dn[t])]) <= 0.0)
        self._pyomo_peak0 = np.asarray(peak0, dtype=float)
        for name, (lo, hi) in rhs.items():
            if name != "balance" and hasattr(m, name):
                _set_rhs(getattr(m, name), lo, hi)

    def _vpp_limits(self, m, problem: DispatchProblem, nodes, T, net, big) -> None:
        """Limits on the VPP's net exchange and its ramp, each with a penalised slack.

        ``vpp_imp[t]``: ``sum_n net[n,t] - vx_imp[t] <= L_imp``;
        ``vpp_exp[t]``: ``-sum_n net[n,t] - vx_exp[t] <= L_exp``;
        ``ramp_up[t]`` / ``ramp_dn[t]``: ``+-(v[t] - v[t-1]) - vx_ramp[t] <= R (dt[t-1] + dt[t]) / 2``
        with ``v`` the VPP net import and ``v[-1]`` the last realised value.
        """
        def vnet(t, sign=1.0):
            return [(sign * c, v) for n in nodes for c, v in net(n, t)]

        if self.has_limits:
            m.vx_imp = Var(T, bounds=(0.0, big))
            m.vx_exp = Var(T, bounds=(0.0, big))
            m.vpp_imp = Constraint(T, rule=lambda _, t: linear(vnet(t) + [(-1.0, m.vx_imp[t])]) <= 0.0)
            m.vpp_exp = Constraint(T, rule=lambda _, t: linear(vnet(t, -1.0) + [(-1.0, m.vx_exp[t])]) <= 0.0)
        if self.has_ramp:
            m.vx_ramp = Var(T, bounds=(0.0, big))

            def step(t, sign):
                return vnet(t, sign) + (vnet(t - 1, -sign) if t else [])

            m.ramp_up = Constraint(T, rule=lambda _, t: linear(step(t, 1.0) + [(-1.0, m.vx_ramp[t])]) <= 0.0)
            m.ramp_dn = Constraint(T, rule=lambda _, t: linear(step(t, -1.0) + [(-1.0, m.vx_ramp[t])]) <= 0.0)

    def _dr_rows(self, m, problem: DispatchProblem, nodes, T, net) -> None:
        """Demand-response calls: the delivery the plan is paid for, per kind.

        ``dr_p[t], dr_v[t] <= cap[t]``: paid delivery of a peak-shaving and a
        valley-filling call in block ``t`` [kW]; ``dr_p_def[t]``: ``dr_p + sum_n
        net[n,t] <= baseline[t]`` (delivery is the baseline less the VPP's net
        import); ``dr_v_def[t]``: ``dr_v - sum_n net[n,t] <= -baseline[t]``; cost
        ``- price dt w dr``, with ``w`` the share of the block inside the window
        and ``cap = paid_max_frac x capacity`` (delivery beyond is not paid).
        Inside a call the delivery is free below (an import above the baseline
        costs the call's price: the payment ``price x min(baseline - import,
        cap)``, linear where the settlement pays nothing); outside it is 0.
        The payment threshold (nothing below ``paid_min_frac``) and the penalty
        floor are not in the LP: an all-or-nothing payment is not convex.
        """
        dr = self._dr_terms(problem)
        for kind, sign in (("p", 1.0), ("v", -1.0)):
            cap, lo = dr[kind][1].tolist(), _dr_floor(dr[kind][1]).tolist()
            var = Var(T, bounds=lambda _, t, c=cap, f=lo: (f[t] if f[t] > -np.inf else None, c[t]))
            setattr(m, f"dr_{kind}", var)
            setattr(m, f"dr_{kind}_def", Constraint(T, rule=lambda _, t, v=var, sg=sign: linear(
                [(1.0, v[t])] + [(sg * c, x) for n in nodes for c, x in net(n, t)]) <= 0.0))
        self._pyomo_dr_cap = {kind: dr[kind][1].copy() for kind in ("p", "v")}

    def _dr_terms(self, problem: DispatchProblem) -> dict[str, tuple[np.ndarray, ...]]:
        """Per kind ("p" peak shaving, "v" valley filling), per block: the row's
        right-hand side (+-baseline; :data:`DR_FREE_ROW` outside calls), the delivery cap [kW]
        and the objective coefficient of delivery [CNY/kW]. Where two calls of a
        kind share a block, the one covering more of it counts."""
        g = problem.grid
        out = {}
        for kind, name, sign in (("p", "peak_shaving", 1.0), ("v", "valley_filling", -1.0)):
            b = block_terms(problem.dr_events, name, g.k0, g.starts, g.steps_per_block)
            out[kind] = (np.where(b.share > 0, sign * b.baseline_kw, DR_FREE_ROW), b.cap_kw,
                         -b.price_cny_per_kwh * g.dt_h * b.share)
        return out

    @staticmethod
    def _big_m(problem: DispatchProblem) -> float:
        """A finite bound on any exchange, so an odd tariff cannot make the LP unbounded."""
        total = sum(n.import_limit_kw + n.export_limit_kw for n in problem.nodes)
        total += sum(float(np.abs(f.p_kw).max(initial=0.0)) for f in _of(problem, FixedProfile))
        for f in problem.forms:
            for attr in ("p_max_kw", "p_charge_max_kw", "p_discharge_max_kw"):
                if hasattr(f, attr):
                    total += float(np.abs(getattr(f, attr)).max(initial=0.0)) * max(getattr(f, "n_assets", 1), 1)
        return 10.0 * (total + 1.0)

    def _fixed(self, problem: DispatchProblem) -> np.ndarray:
        fixed = np.zeros((len(self.node_names), self.H))
        for f in _of(problem, FixedProfile):
            fixed[self.node_names.index(f.node)] += f.p_kw
        return fixed

    def _prices(self, problem: DispatchProblem):
        dt = problem.grid.dt_h
        w = self.weights
        buy = dt * (w.energy_cost_weight * problem.price_import_cny_per_kwh
                    + w.carbon_price_cny_per_t * problem.co2_kg_per_kwh / 1e3)
        sell = dt * (w.export_penalty_cny_per_kwh - w.energy_cost_weight * problem.price_export_cny_per_kwh)
        return buy, sell

    def set_account_costs(self, lp) -> None:
        """Push :meth:`account_prices` into HiGHS."""
        buy, sell = self.account_prices()
        lp.set_costs(self.c_buy, buy)
        lp.set_costs(self.c_sell, sell)

    def account_prices(self) -> tuple[np.ndarray, np.ndarray]:
        """Objective coefficients of ``buy`` and ``sell`` (K, H): the bill's prices,
        except in blocks where selling earns more than buying costs while the
        choice is searched (``self.choice`` set): there one line through zero
        with the chosen side's price, a majorant of the bill exact on that side."""
        buy, sell = (np.broadcast_to(x, (len(self.accounts), self.H)).copy() for x in self._prices(self.problem))
        if self.choice is not None:
            concave = np.broadcast_to(self.concave(), buy.shape)
            slope = np.where(self.choice == 1.0, buy, -sell)
            buy[concave], sell[concave] = slope[concave], -slope[concave]
        return buy, sell

    def first_choice(self) -> np.ndarray:
        """Where each account first tries to buy (1.0) or sell (0.0), shape (K, H):
        as the last window finally chose for the block that held the same step,
        else as :meth:`imports_expected`."""
        guess = self.imports_expected()
        if self._last is not None:
            starts, end, choice, concave = self._last
            at = self.problem.grid.k0 + self.problem.grid.starts
            prev = np.searchsorted(starts, at, side="right") - 1
            known = (prev >= 0) & (at < end) & concave[np.maximum(prev, 0)]
            guess[:, known] = choice[:, prev[known]]
        return guess

    def remember(self, concave: np.ndarray) -> None:
        """Keep a window's final buy-or-sell choice for the next window's first guess."""
        g = self.problem.grid
        self._last = (g.k0 + g.starts, g.k0 + g.n_steps, self.choice.copy(), concave[0].copy())

    def imports_expected(self) -> np.ndarray:
        """Whether each account is expected to import in each block (K, H): its fixed
        load exceeds its sources' available power (1.0) or not (0.0)."""
        residual = self._fixed(self.problem)                  # (nodes, H), generator sign
        for b in self.blocks:
            if isinstance(b, CurtailableBlock) and b.node_list:
                for j, node in enumerate(b.node_list):
                    residual[self.node_names.index(node)] += b.avail[j]
        if len(self.accounts) == 1:
            residual = residual.sum(axis=0, keepdims=True)
        return (residual < 0).astype(float)

    def concave(self) -> np.ndarray:
        """Blocks where exporting earns more than importing costs, shape (H,)."""
        buy, sell = self._prices(self.problem)
        return -sell > buy

    def cost(self) -> list[tuple]:
        """Objective terms ``(coefficient, variable)``."""
        m, problem, v = self.m, self.problem, self._vars
        buy, sell = (x.tolist() for x in self.account_prices())
        dt = problem.grid.dt_h.tolist()
        viol = self.weights.limit_violation_cny_per_kwh
        demand = self.weights.peak_weight * problem.demand_charge_cny_per_kw
        slacks = [*v["imp_x"], *v["exp_x"]] + [list(getattr(m, name).values())
                                               for name in ("vx_imp", "vx_exp", "vx_ramp") if hasattr(m, name)]
        dr = [(c, x) for kind, (_, _, cost) in self._dr_terms(problem).items()
              for c, x in zip(cost.tolist(), getattr(m, f"dr_{kind}").values(), strict=True)] if self.has_dr else []
        if self.has_position:
            pen = (problem.deviation_penalty_cny_per_kwh * problem.grid.dt_h).tolist()
            dr += [(pen[t], x) for name in ("dev_up", "dev_dn") for t, x in enumerate(getattr(m, name).values())]
        return (dr + [(buy[k][t], x) for k, row in enumerate(v["buy"]) for t, x in enumerate(row)]
                + [(sell[k][t], x) for k, row in enumerate(v["sell"]) for t, x in enumerate(row)]
                + [(demand, x) for x in v["peak"]]
                + [(viol * dt[t], x) for row in slacks for t, x in enumerate(row)])

    def bind(self, lp):
        m, K, H = self.m, len(self.accounts), self.H
        self.c_buy = lp.cols(m.buy).reshape(K, H)
        self.c_sell = lp.cols(m.sell).reshape(K, H)
        self.c_peak = lp.cols(m.peak)
        if self.mode is not None:
            self.mode.cols = lp.cols(m.w).reshape(K, H)
        self.rows = {name: lp.rows(getattr(m, name)).reshape(-1, H)
                     for name in ("balance", "settle", "vpp_imp", "vpp_exp", "ramp_up", "ramp_dn", "dr_p_def",
                                  "dr_v_def", "dev_up_def", "dev_dn_def") if hasattr(m, name)}
        self.c_dev = [lp.cols(getattr(m, name)) for name in ("dev_up", "dev_dn")] if self.has_position else []
        self.c_dr = {kind: lp.cols(getattr(m, f"dr_{kind}")) for kind in ("p", "v") if self.has_dr}

    def _rhs(self, problem: DispatchProblem) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Lower and upper bounds of every grid row family, shape (nodes or 1, H)."""
        H = self.H
        fixed = -self._fixed(problem)
        out = {"balance": (fixed, fixed)}
        if self.has_limits:
            out["vpp_imp"] = (np.full(H, -np.inf), np.full(H, problem.vpp_import_limit_kw))
            out["vpp_exp"] = (np.full(H, -np.inf), np.full(H, problem.vpp_export_limit_kw))
        if self.has_ramp:
            dt = problem.grid.dt_h
            allow = problem.ramp_limit_kw_per_h * np.concatenate([[dt[0]], (dt[:-1] + dt[1:]) / 2])
            prev = np.zeros(H)
            prev[0] = problem.net_import_prev_kw
            out["ramp_up"] = (np.full(H, -np.inf), allow + prev)
            out["ramp_dn"] = (np.full(H, -np.inf), allow - prev)
        if self.has_dr:
            for kind, (rhs, _, _) in self._dr_terms(problem).items():
                out[f"dr_{kind}_def"] = (np.full(H, -np.inf), rhs)
        if self.has_position:
            p = np.asarray(problem.position_kw, dtype=float)
            band = problem.deviation_tolerance_frac * np.abs(p)
            out["dev_up_def"] = (np.full(H, -np.inf), np.where(np.isfinite(p), p + band, DR_FREE_ROW))
            out["dev_dn_def"] = (np.full(H, -np.inf), np.where(np.isfinite(p), -p + band, DR_FREE_ROW))
        return out

    def update(self, lp, problem: DispatchProblem):
        self.problem = problem
        for name, (lo, hi) in self._rhs(problem).items():
            lp.set_row_bounds(self.rows[name], lo, hi)
        self.set_account_costs(lp)
        lp.set_costs(self.c_peak, self.weights.peak_weight * problem.demand_charge_cny_per_kw)
        lp.set_col_bounds(self.c_peak, np.broadcast_to(problem.peak_import_so_far_kw, self.c_peak.shape), np.inf)
        if self.has_dr:
            for kind, (_, cap, cost) in self._dr_terms(problem).items():
                lp.set_col_bounds(self.c_dr[kind], _dr_floor(cap), cap)
                lp.set_costs(self.c_dr[kind], cost)
        for cols in self.c_dev:
            lp.set_costs(cols, problem.deviation_penalty_cny_per_kwh * problem.grid.dt_h)

    def sync(self) -> None:
        """Write the current window's right-hand sides and peak bound into the Pyomo model."""
        for name, (lo, hi) in self._rhs(self.problem).items():
            _set_rhs(getattr(self.m, name), lo, hi)
        peak0 = np.broadcast_to(self.problem.peak_import_so_far_kw, (len(self.accounts),))
        set_bounds(self._vars["peak"], peak0, np.inf, self._pyomo_peak0, np.inf)
        self._pyomo_peak0 = np.asarray(peak0, dtype=float)
        if self.has_dr:
            for kind, (_, cap, _) in self._dr_terms(self.problem).items():
                members = list(getattr(self.m, f"dr_{kind}").values())
                set_bounds(members, _dr_floor(cap), cap, _dr_floor(self._pyomo_dr_cap[kind]), self._pyomo_dr_cap[kind])
                self._pyomo_dr_cap[kind] = cap.copy()
        if self.mode is not None:
            self.mode.sync()


def _dr_floor(cap: np.ndarray) -> np.ndarray:
    """Lower bound of demand-response delivery: none inside a call (cap > 0), 0 outside."""
    return np.where(cap > 0, -np.inf, 0.0)


def _set_rhs(con, lo, hi) -> None:
    """New bounds for every member of the indexed constraint *con* (iteration order),
    keeping each body."""
    lo, hi = (np.broadcast_to(x, (len(con),) if np.ndim(x) < 2 else np.shape(x)).ravel().tolist() for x in (lo, hi))
    for c, a, b in zip(con.values(), lo, hi, strict=True):
        if a == b:
            c.set_value(c.body == a)
        else:
            c.set_value((a if a > -np.inf else None, c.body, b))   # Pyomo reads an infinite bound as none


DR_FREE_ROW = 1e30      # a demand-response row's bound outside calls: HiGHS reads >= 1e20 as none
EXCLUSIVE_ROUNDS = 3    # re-solves that may each find more assets charging and discharging at once
SIGN_ROUNDS = 5         # re-solves of the buy-or-sell choice (each lowers the bill)
SIGN_ZERO_KW = 1e-3     # an exchange this close to zero is on either side


class DispatchModel:
    """The centralised dispatch LP of one rolling-horizon structure.

    The Pyomo model (:attr:`model`) is the model of record: it always holds the
    current window's numbers, and after a solve its variables hold the solution
    and its ``dual`` suffix the duals.  HiGHS is updated from the same arrays in
    place (the fast path), and the Pyomo model is brought up to date when it is
    read, so a window costs no Pyomo work unless someone looks.

    Parameters
    ----------
    problem : DispatchProblem
        The first window; later windows with the same :func:`signature` are
        applied with :meth:`update`.
    weights : Weights
    solver : SolverOptions
    extra_constraints : callable, optional
        ``extra_constraints(model, problem)`` edits the Pyomo model before it is
        compiled (like PyPSA's ``extra_functionality``): adds constraints,
        variables (integer ones make the window a MIP), deactivates rows,
        replaces the objective.  A model with a hook is built afresh for every
        window and the hook applied to it, so a hook that reads the window
        acts on each one; such a window costs a cold build instead of an update.
    """

    def __init__(self, problem: DispatchProblem, weights: Weights | None = None,
                 solver: SolverOptions | None = None,
                 extra_constraints: Callable | None = None):
        self.weights = weights or Weights()
        self.solver = solver or SolverOptions()
        self.extra_constraints = extra_constraints
        self._build(problem)

    def _build(self, problem: DispatchProblem) -> None:
        t0 = time.perf_counter()
        weights = self.weights
        self.signature = signature(problem)
        self._model = m = ConcreteModel(name="source_load_interaction")
        m.dual = Suffix(direction=Suffix.IMPORT)
        g = problem.grid
        with PauseGC():         # a model is ~10 objects per asset-block; collecting them mid-build cost ~0.2 s
            self.curtailable = CurtailableBlock(m, _of(problem, CurtailableSource), g,
                                                weights.curtailment_penalty_cny_per_kwh)
            self.storage = StorageBlock(m, _of(problem, StorageLike), g, _of(problem, SharedLimit))
            self.thermal = ThermalBlock(m, _of(problem, Thermal), g)
            self.blocks = (self.curtailable, self.storage, self.thermal)
            # a hook that edits the objective leaves the choice to the MIP (the sign
            # search prices through the objective), so a hooked model has the MIP's rows
            self.network = _GridBlock(m, problem, self.blocks, weights, mip_choice=(
                self.solver.settlement_choice == "mip" or self.extra_constraints is not None))
            m.objective = Objective(expr=self._objective(), sense=minimize)
            ours = m.objective.expr
            if self.extra_constraints is not None:
                self.extra_constraints(m, problem)
            self._own_objective = m.objective.active and m.objective.expr is ours
            self.lp = CompiledLP(m, self.solver)
            for b in (*self.blocks, self.network):
                b.bind(self.lp)
        self._stale, self._loaded = False, True
        self.build_time_s = time.perf_counter() - t0

    def _objective(self):
        # Terms priced at zero now are left out (an EV fleet's throughput, ~1/3 of all
        # terms); every block variable is also in a constraint, so it keeps its column
        # and update() can price it in a later window.
        return linear([(c, v) for b in (*self.blocks, self.network) for c, v in b.cost() if c])

    def update(self, problem: DispatchProblem) -> None:
        """Load a new window of the same structure (a fresh build with a hook)."""
        if signature(problem) != self.signature:
            raise ValueError("window structure changed; build a new DispatchModel")
        if self.extra_constraints is not None:
            self._build(problem)
            return
        self.curtailable.update(self.lp, _of(problem, CurtailableSource))
        self.storage.update(self.lp, _of(problem, StorageLike), _of(problem, SharedLimit))
        self.thermal.update(self.lp, _of(problem, Thermal))
        self.update_grid(problem)

    def update_grid(self, problem: DispatchProblem) -> None:
        """Load a window whose forms are the current ones, with new prices and grid numbers."""
        self.network.update(self.lp, problem)
        self._stale = True

    @property
    def model(self):
        """The Pyomo model of the current window, with the last solve's values
        and duals (``model.dual``) loaded."""
        if self._stale:
            with PauseGC():
                for b in (*self.blocks, self.network):
                    b.sync()
                if self._own_objective:
                    self._model.objective.set_value(self._objective())
            self._stale = False
        if not self._loaded:
            self.lp.load_solution(self._model)
            self._loaded = True
        return self._model

    def solve(self) -> tuple[str, float]:
        """Solve the current window; returns (status, seconds).

        Two choices an LP cannot make are made where they matter, and the
        model of record is the LP last solved:

        * where exporting earns more than importing costs, whether each account
          buys or sells: searched by re-solving (:meth:`_sign_search`, the
          default) or, with ``settlement_choice="mip"``, by ``w`` binary from
          the start; either way the plan is priced by the bill's own rule;
        * a storage setpoint is net power, so the physics cannot carry out a
          plan that charges and discharges an asset in the same block (it
          pays only where energy is worth less than nothing: surplus green
          power burned as losses rather than curtailed).  Where the solution
          does so in the blocks that become setpoints, the side against the
          asset's net flow is closed there and the window solved again.
        """
        self._loaded = False
        net, st, lp = self.network, self.storage, self.lp
        st.reopen(lp)
        concave = np.broadcast_to(net.concave(), (len(net.accounts), net.H))
        if self.solver.settlement_choice == "mip" or not self._own_objective:    # the MIP decides
            net.mode.reset(lp)
            lp.set_integer(net.mode.cols[concave], True)
            status, seconds = lp.solve()
            if status.startswith("optimal"):
                net.mode.fix(lp, concave)
            lp.set_integer(net.mode.cols[concave], False)
            if status.startswith("optimal") and concave.any():
                status, s = lp.solve()
                seconds += s
        else:
            status, seconds = self._sign_search(concave)
        n_fine = net.problem.grid.n_fine
        for _ in range(EXCLUSIVE_ROUNDS if st.dis_idx else 0):
            over = st.overlap(lp, n_fine) if status.startswith("optimal") else None
            if over is None or not over.any():
                break
            st.close_one_side(lp, over)
            status, s = lp.solve()
            seconds += s
        self._stale = True              # choices, closed sides and prices of record may have moved
        return status, seconds

    def _sign_search(self, concave: np.ndarray) -> tuple[str, float]:
        """Where selling earns more than buying costs the bill is concave in the
        account's net exchange: ``min(p_buy x, p_sell x)``.  Each such block is
        priced by the line of the side chosen (a majorant, exact on that side),
        first as :meth:`_GridBlock.first_choice` says; a block whose solution
        lands on the other side switches to it, and the window is solved again
        (majorise-minimise: the bill falls at every round) until every block's
        exchange is on its chosen side -- a local optimum priced exactly by the
        bill.  ``SolverOptions(settlement_choice="mip")`` instead has HiGHS's
        MIP prove the global optimum, at many times the cost."""
        net, lp = self.network, self.lp
        net.choice = np.where(concave, net.first_choice(), 1.0)
        net.set_account_costs(lp)
        status, seconds = lp.solve()
        for _ in range(SIGN_ROUNDS):
            if not status.startswith("optimal"):
                break
            x = lp.values(net.c_buy) - lp.values(net.c_sell)
            wrong = concave & np.where(net.choice == 1.0, x < -SIGN_ZERO_KW, x > SIGN_ZERO_KW)
            if not wrong.any():
                break
            net.choice[wrong] = 1.0 - net.choice[wrong]
            net.set_account_costs(lp)
            status, s = lp.solve()
            seconds += s
        net.remember(concave)
        return status, seconds

    def shadow_prices(self) -> dict[str, np.ndarray]:
        """Marginal value of energy per block of the last solve, from the duals of
        the balance rows, in the objective's units (tariff, carbon price,
        penalties). [CNY/kWh]

        Keys: ``node_<name>`` for each node (one more kWh consumed at the node in
        the block), and ``"vpp"`` with ``settlement = "vpp"`` (one more kWh
        settled by the VPP's account).  NaN where there are no duals (a failed
        solve, a MIP).
        """
        net, dt = self.network, self.network.problem.grid.dt_h
        out = {f"node_{n}": y for n, y in zip(net.node_names, self.lp.duals(net.rows["balance"]) / dt, strict=True)}
        if net.problem.settlement == "vpp":
            out["vpp"] = -self.lp.duals(net.rows["settle"][0]) / dt
        return out

    @property
    def objective_cny(self) -> float:
        return self.lp.objective

    def slack_use(self) -> dict[str, float]:
        """How much of each penalised slack the current plan uses (over its horizon).

        Keys: ``slack_storage_shortfall_kwh`` (energy below storage/EV/batch
        targets), ``slack_discomfort_kh`` (kelvin-hours outside comfort bands),
        ``slack_import_kwh`` and ``slack_export_kwh`` (exchange beyond node limits),
        and where the VPP has them, ``slack_vpp_import_kwh``,
        ``slack_vpp_export_kwh`` (beyond its exchange limits) and
        ``slack_ramp_kwh`` (ramp beyond its limit, as energy over the blocks).
        """
        lp, dt = self.lp, self.network.problem.grid.dt_h
        m = self._model
        out = {"slack_storage_shortfall_kwh": float(lp.values(self.storage.c_u).sum()) if self.storage.N else 0.0,
               "slack_discomfort_kh": float((lp.values(self.thermal.c_u) * dt).sum()) if self.thermal.N else 0.0}
        for name, var in (("slack_import_kwh", "imp_x"), ("slack_export_kwh", "exp_x"), ("slack_vpp_import_kwh",
                          "vx_imp"), ("slack_vpp_export_kwh", "vx_exp"), ("slack_ramp_kwh", "vx_ramp")):
            if hasattr(m, var):
                cols = lp.cols(getattr(m, var)).reshape(-1, len(dt))
                out[name] = float((lp.values(cols) * dt).sum())
        return out

    def window_metrics(self) -> dict[str, float]:
        """What a window records in ``Results.dispatch``: :meth:`slack_use`, and the
        first block's :meth:`shadow_prices` as ``shadow_price_cny_per_kwh_<node>``
        per node and ``shadow_price_cny_per_kwh_vpp`` for the VPP's account."""
        prices = {f"shadow_price_cny_per_kwh_{k}": float(v[0]) for k, v in self.shadow_prices().items()}
        return {**self.slack_use(), **prices}

    def net_import_kw(self) -> np.ndarray:
        """The last solve's VPP net import per block (bought less sold, all accounts). [kW]"""
        net = self.network
        return (self.lp.values(net.c_buy) - self.lp.values(net.c_sell)).reshape(len(net.accounts), net.H).sum(axis=0)

    def dr_delivery_kw(self, kind: str) -> np.ndarray:
        """The last solve's paid delivery of calls of *kind* ("peak_shaving" or
        "valley_filling") per block; zeros without calls. [kW]"""
        net = self.network
        if not net.has_dr:
            return np.zeros(net.H)
        return self.lp.values(net.c_dr["p" if kind == "peak_shaving" else "v"])

    def setpoints(self, n_steps: int) -> dict[str, np.ndarray]:
        """Per-fleet setpoints for the first *n_steps* (one-step) blocks. [kW]"""
        out = {}
        for b in self.blocks:
            if b.forms:
                out.update(b.setpoints(self.lp, n_steps))
        return out
