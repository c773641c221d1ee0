"""``price_signal``: decentralised dispatch by a broadcast price (dual decomposition).

The VPP does not see its fleets' constraints.  It broadcasts a price per node
and horizon block; each fleet answers with its own cost-minimising schedule
at that price (a local optimisation); the VPP updates the price from the
aggregate answer and broadcasts again, for a fixed number of rounds.  This is
price-based (transactive) coordination as in Gatsis & Giannakis 2012 and Gan,
Topcu & Low 2013: Lagrangian relaxation of the coupling constraints, solved
by a projected subgradient method on the prices.

The price.  At node ``n`` in block ``t``

.. math::

    \\lambda_{n,t} = \\pi_{k(n),t} + \\kappa_{k(n),t} + \\mu^{imp}_{n,t} - \\mu^{exp}_{n,t}
                   + \\nu^{imp}_t - \\nu^{exp}_t + \\rho_t

* ``pi``: the energy price of the settlement account ``k(n)`` (the VPP, or
  each node under node settlement), kept within ``[c_exp, c_imp]`` -- the
  export price (at most ``c_imp``) and the import price plus the carbon price.  It is the
  multiplier of the account's balance: it rises while the account imports and
  falls while it exports, ``pi <- clip(pi + a_j s net_import / F, c_exp, c_imp)``.
  Between the two tariffs a net position of zero is the VPP's preference, so
  the price settles where the fleets' demand absorbs the local surplus.
* ``mu``: the multipliers of the node import/export limits, ``mu <- max(0, mu +
  a_j s (import - limit) / F_n)`` (likewise for export): the price rises at a
  congested node until its flexible demand moves out of the congested blocks.
* ``nu``: the same for the VPP's net exchange limits, if any.
* ``kappa``: the demand charge ``D`` on the billed peak (``price_demand_charge``):
  the multipliers of ``import_t <= peak`` with ``peak`` at least the peak
  billed so far, ``kappa <- max(0, kappa + a_j s (import - peak_so_far) / F)``,
  then scaled so that ``sum_t kappa_t dt_t <= D`` (their dual feasible set):
  the charge is spread over the blocks that would set a new peak.
* ``rho``: announced demand-response calls (:func:`dr_price_adder`), the
  call's compensation added in a peak-shaving window (subtracted in a
  valley-filling one): the broadcast price carries the call to the fleets.

``a_j = step_size / sqrt(j)`` in round ``j``; ``s`` is the mean import price
and ``F`` the flexible power at the node (or account), so the step is free of
units and of scale.  The first round's ``pi`` is the import price where the
account's forecast (fixed profiles plus available green power) imports and
the export price where it exports; with ``warm_start`` the multipliers start
from those the previous window ended with.

The fleets.  Each fleet with storage-like or thermal flexibility solves its
own :class:`~vpp.optimizer.model.DispatchModel` built for a
:class:`~vpp.dispatch.DispatchProblem` holding only its forms, with the
broadcast price as both its import and export price, no CO2 term and no
binding grid limits; the model is built once per fleet and structure and
later only updated (new window: :meth:`DispatchModel.update`; new round:
the price costs alone).  Curtailable sources answer in closed form: produce
everything where ``lambda + c_curt >= 0``, nothing where it is below.

Primal recovery.  Best answers to a linear price are vertices (a battery
charges fully or not at all), so the answers of one round oscillate around
the coordinated schedule instead of reaching it.  Each fleet therefore moves
its schedule a step ``2/(j+1)`` toward its best answer in round ``j`` -- the
average of its answers weighted by round number, which is feasible for the
fleet (its forms are convex) and whose coupling violation vanishes as the
rounds grow (ergodic primal recovery: Nedić & Ozdaglar 2009; weights growing
with the round discount the early answers to poor prices: Gustavsson,
Patriksson & Strömberg 2015).  The setpoints are the fleets' schedules after the
round whose aggregate violated the node and VPP limits least (the latest of
equals; the subgradient method is not a descent method, so it keeps its best
iterate: Boyd, Xiao & Mutapcic 2003), so more rounds never leave a larger
mismatch.

Not priced: the VPP ramp limit.

Status ``"coordinated"`` when the chosen plan keeps every limit, else
``"coordinated, limits exceeded"``.  Per-window metrics (columns of
``Results.dispatch``): ``ps_rounds``, ``ps_best_round``, ``ps_mismatch_kwh``
(energy beyond node and VPP limits in the chosen plan, over the horizon),
``ps_first_mismatch_kwh`` (round 1), ``ps_price_min_cny_per_kwh`` /
``ps_price_max_cny_per_kwh`` (the price the chosen round's answers were
given), ``ps_fleet_solves``, ``ps_failed_solves``.

References
----------
Gatsis, N., Giannakis, G. B. (2012). Residential load control: distributed
scheduling and convergence with lost AMI messages. IEEE Trans. Smart Grid
3(2), 770-786. doi:10.1109/TSG.2011.2176518.
Gan, L., Topcu, U., Low, S. H. (2013). Optimal decentralized protocol for
electric vehicle charging. IEEE Trans. Power Syst. 28(2), 940-951.
doi:10.1109/TPWRS.2012.2210288.
Nedić, A., Ozdaglar, A. (2009). Approximate primal solutions and rate
analysis for dual subgradient methods. SIAM J. Optim. 19(4), 1757-1780.
doi:10.1137/070708111.
Gustavsson, E., Patriksson, M., Strömberg, A.-B. (2015). Primal convergence
from dual subgradient methods for convex optimization. Math. Program.
150(2), 365-390. doi:10.1007/s10107-014-0772-2.
Boyd, S., Xiao, L., Mutapcic, A. (2003). Subgradient methods. Lecture notes
of EE392o, Stanford University.
Kok, K., Widergren, S. (2016). A society of devices: integrating intelligent
distributed resources with transactive energy. IEEE Power Energy Mag. 14(3),
34-45. doi:10.1109/MPE.2016.2524962.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from vpp.dispatch import Decision, DispatchProblem, NodeLimits
from vpp.dr import block_terms
from vpp.flex import CurtailableSource, FixedProfile, HorizonGrid, StorageLike, Thermal
from vpp.optimizer.base import Strategy, StrategyOptions, register
from vpp.optimizer.lp import SolverOptions
from vpp.optimizer.model import DispatchModel, Weights, signature

__all__ = ["PriceSignalOptions", "PriceSignal", "limit_mismatch_kwh"]

MISMATCH_TOL_KWH = 1e-6      # a plan within the limits to this tolerance has status "coordinated"


class PriceSignalOptions(StrategyOptions):
    """Options of ``price_signal`` (defaults are assumptions of this strategy).

    Parameters
    ----------
    rounds : int
        Price broadcasts per dispatch window. [-]
    step_size : float
        ``a_1``, the first round's price step per unit of relative mismatch
        (share of the mean import price per share of the flexible power). [-]
    carbon_price_cny_per_t : float
        Added to the import price the VPP passes on (as in
        ``source_load_interaction``). [CNY/t]
    curtailment_penalty_cny_per_kwh : float
        Value a source puts on producing rather than curtailing. [CNY/kWh]
    warm_start : bool
        Start each window's multipliers from where the previous window ended.
    price_demand_charge : bool
        Whether the price carries the demand charge on the billed peak
        (``kappa`` in the module docstring).
    solver : {"simplex", "ipm"}
        HiGHS method of the fleets' LPs; simplex re-solves a round (costs
        changed only) from the previous round's basis.
    time_limit_s : float
        Per fleet solve. [s]
    """

    rounds: int = Field(10, ge=1, le=1000)
    step_size: float = Field(1.0, gt=0.0, le=100.0)
    carbon_price_cny_per_t: float = Field(100.0, ge=0.0)
    curtailment_penalty_cny_per_kwh: float = Field(0.05, ge=0.0)
    warm_start: bool = True
    price_demand_charge: bool = True
    solver: Literal["simplex", "ipm"] = "simplex"
    time_limit_s: float = Field(60.0, gt=0.0)


def limit_mismatch_kwh(net_import_kw: np.ndarray, nodes: tuple[NodeLimits, ...], dt_h: np.ndarray,
                       vpp_import_limit_kw: float = np.inf, vpp_export_limit_kw: float = np.inf) -> float:
    """Energy beyond the node and VPP exchange limits.

    Parameters
    ----------
    net_import_kw : ndarray, shape (n_nodes, H)
        Net import of each node in each block (negative: export). [kW]
    nodes : tuple of NodeLimits
    dt_h : ndarray, shape (H,)
        Block lengths. [h]
    vpp_import_limit_kw, vpp_export_limit_kw : float
        Limits on the sum over nodes. [kW]

    Returns
    -------
    float
        ``sum_t dt_t (sum_n [(m_nt - L^imp_n)^+ + (-m_nt - L^exp_n)^+]
        + (M_t - L^imp)^+ + (-M_t - L^exp)^+)`` with ``M_t = sum_n m_nt``. [kWh]
    """
    m = np.asarray(net_import_kw, dtype=float)
    imp = np.array([n.import_limit_kw for n in nodes])[:, None]
    exp = np.array([n.export_limit_kw for n in nodes])[:, None]
    over = np.maximum(m - imp, 0.0).sum(axis=0) + np.maximum(-m - exp, 0.0).sum(axis=0)
    total = m.sum(axis=0)
    over = over + np.maximum(total - vpp_import_limit_kw, 0.0) + np.maximum(-total - vpp_export_limit_kw, 0.0)
    return float((over * dt_h).sum())


def dr_price_adder(problem: DispatchProblem) -> np.ndarray:
    """Demand-response calls as a price on the VPP's import per block: a
    peak-shaving call's compensation added where its window covers the block
    (weighted by the share covered), a valley-filling call's subtracted.  Each
    kWh moved in the call's direction is worth its compensation; the delivery
    cap and the payment threshold are not coordinated. [CNY/kWh]"""
    g = problem.grid
    out = np.zeros(g.n_blocks)
    for kind, sign in (("peak_shaving", 1.0), ("valley_filling", -1.0)):
        b = block_terms(problem.dr_events, kind, g.k0, g.starts, g.steps_per_block)
        out += sign * b.price_cny_per_kwh * b.share
    return out


def _power_kw(form) -> float:
    """A fleet form's largest power swing, for scaling price steps. [kW]"""
    if isinstance(form, StorageLike):
        return float((form.p_charge_max_kw + form.p_discharge_max_kw).max(axis=1).sum())
    if isinstance(form, (Thermal, CurtailableSource)):
        return float(form.p_max_kw.max(axis=1).sum())
    return 0.0


class _FleetAgent:
    """One fleet's local optimiser: a persistent DispatchModel of its forms alone."""

    def __init__(self, fleet: str, node: str, solver: SolverOptions):
        self.fleet, self.node, self.solver = fleet, node, solver
        self.model: DispatchModel | None = None
        self.problem: DispatchProblem | None = None

    def load(self, grid: HorizonGrid, forms: list) -> float:
        """Take a new window's forms; returns the seconds spent building/updating."""
        t0 = time.perf_counter()
        big = 10.0 * sum(_power_kw(f) for f in forms) + 1e3
        h = grid.n_blocks
        self.problem = DispatchProblem(grid, (NodeLimits(self.node, big, big),), tuple(forms), np.zeros(h),
                                       np.zeros(h), np.zeros(h), np.zeros(1), 0.0, "vpp")
        if self.model is None or signature(self.problem) != self.model.signature:
            weights = Weights(carbon_price_cny_per_t=0.0, curtailment_penalty_cny_per_kwh=0.0,
                              limit_violation_cny_per_kwh=10.0, peak_weight=0.0)
            self.model = DispatchModel(self.problem, weights, self.solver)
        else:
            self.model.update(self.problem)
        return time.perf_counter() - t0

    def respond(self, price: np.ndarray) -> np.ndarray | None:
        """Best schedule at *price* [CNY/kWh] per block: injections (N, H), generator
        sign, or ``None`` if the solve failed. [kW]"""
        problem = DispatchProblem(self.problem.grid, self.problem.nodes, self.problem.forms, price, price,
                                  self.problem.co2_kg_per_kwh, self.problem.peak_import_so_far_kw, 0.0, "vpp")
        self.model.update_grid(problem)
        status = self._solve()
        if not status.startswith("optimal"):
            # a warm simplex start that ends without a proven optimum (seen about
            # once a week of windows here) is retried once from scratch
            self.model.lp.highs.clearSolver()
            status = self._solve()
        if not status.startswith("optimal"):
            return None
        return self.model.setpoints(self.problem.grid.n_blocks)[self.fleet]

    def _solve(self) -> str:
        """One solve within ``time_limit_s``.  HiGHS compares its time limit with
        the run time accumulated over all solves of the model (HiGHS issues
        #1331, #1477; highspy 1.16 has no ``zeroAllClocks``), so the limit is
        moved on before each solve."""
        highs = self.model.lp.highs
        highs.setOptionValue("time_limit", highs.getRunTime() + self.solver.time_limit_s)
        return self.model.solve()[0]


@dataclass
class _Window:
    """What the VPP knows of one window: tariffs, limits, the inflexible part and scales."""

    problem: DispatchProblem
    index: dict                 # node name -> row
    account: np.ndarray         # node row -> settlement account
    c_imp: np.ndarray           # (H,) import price + carbon price [CNY/kWh]
    c_exp: np.ndarray           # (H,) export price, at most c_imp [CNY/kWh]
    fixed: np.ndarray           # (nodes, H) fixed profiles [kW]
    avail: np.ndarray           # (nodes, H) available green power [kW]
    flex_kw: np.ndarray         # (nodes,) flexible power, the price steps' scale [kW]
    sources: list
    by_fleet: dict
    dr_adder: np.ndarray | None = None   # (H,) demand-response calls' price on import [CNY/kWh]

    @classmethod
    def of(cls, problem: DispatchProblem, carbon_price_cny_per_t: float) -> _Window:
        names = [n.name for n in problem.nodes]
        index = {n: i for i, n in enumerate(names)}
        h = problem.grid.n_blocks
        account = np.zeros(len(names), dtype=int) if problem.settlement == "vpp" else np.arange(len(names))
        c_imp = problem.price_import_cny_per_kwh + carbon_price_cny_per_t * problem.co2_kg_per_kwh / 1e3
        w = cls(problem, index, account, c_imp, np.minimum(problem.price_export_cny_per_kwh, c_imp),
                np.zeros((len(names), h)), np.zeros((len(names), h)), np.zeros(len(names)), [], {})
        w.dr_adder = dr_price_adder(problem)
        for f in problem.forms:
            i = index[f.node]
            w.flex_kw[i] += _power_kw(f)
            if isinstance(f, FixedProfile):
                w.fixed[i] += f.p_kw
            elif isinstance(f, CurtailableSource):
                w.avail[i] += f.p_max_kw.sum(axis=0)
                w.sources.append(f)
            else:
                w.by_fleet.setdefault(f.fleet, []).append(f)
        return w

    @property
    def n_accounts(self) -> int:
        return int(self.account.max()) + 1

    def per_account(self, x: np.ndarray) -> np.ndarray:
        """Sum rows of a per-node array (nodes, H) into accounts (accounts, H)."""
        out = np.zeros((self.n_accounts,) + x.shape[1:])
        np.add.at(out, self.account, x)
        return out

    def start(self) -> dict[str, np.ndarray]:
        """First-round multipliers: the import price where the account's inflexible
        forecast imports, the export price where it exports; no limit prices."""
        n, h = self.fixed.shape
        surplus = self.per_account(self.fixed + self.avail)
        return {"pi": np.where(surplus > 0, self.c_exp, self.c_imp), "mu_imp": np.zeros((n, h)),
                "mu_exp": np.zeros((n, h)), "nu_imp": np.zeros(h), "nu_exp": np.zeros(h),
                "kappa": np.zeros((self.n_accounts, h))}

    def price(self, d: dict) -> np.ndarray:
        """The broadcast price per node and block. [CNY/kWh]"""
        return (d["pi"][self.account] + d["kappa"][self.account] + d["mu_imp"] - d["mu_exp"]
                + (d["nu_imp"] - d["nu_exp"] + self.dr_adder)[None, :])

    def update(self, d: dict, net_import_kw: np.ndarray, step: float, price_demand: bool) -> None:
        """One projected subgradient step on every multiplier, from the round's answers."""
        pr = self.problem
        a = step * max(float(np.mean(self.c_imp)), 1e-6)
        node_scale = np.maximum(self.flex_kw, 1.0)[:, None]
        acc_scale = np.maximum(self.per_account(self.flex_kw[:, None])[:, 0], 1.0)[:, None]
        vpp_scale = max(float(self.flex_kw.sum()), 1.0)
        imp_lim = np.array([n.import_limit_kw for n in pr.nodes])[:, None]
        exp_lim = np.array([n.export_limit_kw for n in pr.nodes])[:, None]
        net_acc, total = self.per_account(net_import_kw), net_import_kw.sum(axis=0)
        d["pi"] = np.clip(d["pi"] + a * net_acc / acc_scale, self.c_exp, self.c_imp)
        d["mu_imp"] = np.maximum(d["mu_imp"] + a * (net_import_kw - imp_lim) / node_scale, 0.0)
        d["mu_exp"] = np.maximum(d["mu_exp"] + a * (-net_import_kw - exp_lim) / node_scale, 0.0)
        if np.isfinite(pr.vpp_import_limit_kw):
            d["nu_imp"] = np.maximum(d["nu_imp"] + a * (total - pr.vpp_import_limit_kw) / vpp_scale, 0.0)
        if np.isfinite(pr.vpp_export_limit_kw):
            d["nu_exp"] = np.maximum(d["nu_exp"] + a * (-total - pr.vpp_export_limit_kw) / vpp_scale, 0.0)
        if price_demand and pr.demand_charge_cny_per_kw > 0:
            peak0 = np.broadcast_to(pr.peak_import_so_far_kw, (self.n_accounts,))[:, None]
            kappa = np.maximum(d["kappa"] + a * (net_acc - peak0) / acc_scale, 0.0)
            # dual feasibility of the billed peak: sum_t kappa_t dt_t <= demand charge
            spent = (kappa * pr.grid.dt_h).sum(axis=1, keepdims=True)
            d["kappa"] = kappa * np.minimum(1.0, pr.demand_charge_cny_per_kw / np.maximum(spent, 1e-12))

    def injection(self, green_frac: np.ndarray, schedules: dict, node_of: dict) -> np.ndarray:
        """Net injection per node and block: fixed profiles, green power and the fleets' schedules. [kW]"""
        out = self.fixed + self.avail * green_frac
        for fleet, x in schedules.items():
            out[self.index[node_of[fleet]]] += x.sum(axis=0)
        return out


@register
class PriceSignal(Strategy):
    """Decentralised dispatch: a broadcast price, local best answers, price updates (module docstring)."""

    name = "price_signal"
    Options = PriceSignalOptions

    def __init__(self, options: PriceSignalOptions | None = None):
        super().__init__(options)
        o = self.options
        self.solver = SolverOptions(solver=o.solver, time_limit_s=o.time_limit_s)
        self.agents: dict[str, _FleetAgent] = {}
        self._warm: dict | None = None
        self._last_k0 = -1

    def decide(self, problem: DispatchProblem) -> Decision:
        t_start = time.perf_counter()
        o, g = self.options, problem.grid
        if g.k0 <= self._last_k0:             # a new run: nothing to warm-start from
            self._warm = None
        self._last_k0 = g.k0
        w = _Window.of(problem, o.carbon_price_cny_per_t)
        build_s = sum(self.agents.setdefault(fleet, _FleetAgent(fleet, forms[0].node, self.solver)).load(g, forms)
                      for fleet, forms in w.by_fleet.items())
        agents = {fleet: self.agents[fleet] for fleet in w.by_fleet}
        node_of = {fleet: a.node for fleet, a in agents.items()}
        duals = self._warm_duals(g, w.start()) if o.warm_start else w.start()
        duals["pi"] = np.clip(duals["pi"], w.c_exp, w.c_imp)
        avg: dict[str, np.ndarray] = {}
        avg_frac = np.zeros_like(w.fixed)               # share of green power produced, per node
        best, first, failed = {"mismatch": np.inf}, np.nan, 0
        for j in range(1, o.rounds + 1):
            lam = w.price(duals)
            answers = {}
            for fleet, agent in agents.items():          # every fleet answers the broadcast
                x = agent.respond(lam[w.index[agent.node]])
                if x is None:
                    failed += 1
                    if fleet not in avg:
                        return Decision(status=f"fleet {fleet!r}: local solve failed", fallback=True,
                                        build_time_s=build_s, solve_time_s=time.perf_counter() - t_start - build_s)
                    x = avg[fleet]                      # no new answer: it keeps its schedule
                answers[fleet] = x
            frac = (lam + o.curtailment_penalty_cny_per_kwh >= 0.0).astype(float)
            # each fleet moves a step 2/(j+1) toward its answer: the average of its
            # answers weighted by round number (early answers to poor prices fade)
            step = 2.0 / (j + 1.0)
            for fleet, x in answers.items():
                avg[fleet] = x.copy() if fleet not in avg else avg[fleet] + (x - avg[fleet]) * step
            avg_frac += (frac - avg_frac) * step
            net_avg = -w.injection(avg_frac, avg, node_of)
            mismatch = limit_mismatch_kwh(net_avg, problem.nodes, g.dt_h, problem.vpp_import_limit_kw,
                                          problem.vpp_export_limit_kw)
            first = mismatch if j == 1 else first
            if mismatch <= best["mismatch"]:             # keep the best plan (the latest of equals)
                best = {"mismatch": mismatch, "round": j, "lam": lam, "duals": {k: v.copy() for k, v in duals.items()},
                        "fleets": {f: x[:, :g.n_fine].copy() for f, x in avg.items()},
                        "frac": avg_frac[:, :g.n_fine].copy()}
            w.update(duals, -w.injection(frac, answers, node_of), o.step_size / np.sqrt(j), o.price_demand_charge)
        self._remember(g, best["duals"])
        setpoints = {**best["fleets"], **self._caps(w.sources, best["frac"], w.index, g.n_fine)}
        elapsed = time.perf_counter() - t_start
        metrics = {"ps_rounds": float(o.rounds), "ps_best_round": float(best["round"]),
                   "ps_mismatch_kwh": best["mismatch"], "ps_first_mismatch_kwh": first,
                   "ps_price_min_cny_per_kwh": float(best["lam"].min()),
                   "ps_price_max_cny_per_kwh": float(best["lam"].max()),
                   "ps_fleet_solves": float(o.rounds * len(agents)), "ps_failed_solves": float(failed)}
        status = "coordinated" if best["mismatch"] <= MISMATCH_TOL_KWH else "coordinated, limits exceeded"
        status += "; some answers reused" if failed else ""
        return Decision(setpoints=setpoints, status=status,
                        build_time_s=build_s, solve_time_s=elapsed - build_s,
                        n_variables=sum(a.model.lp.n_cols for a in agents.values()),
                        n_constraints=sum(a.model.lp.n_rows for a in agents.values()), metrics=metrics)

    @staticmethod
    def _caps(sources: list[CurtailableSource], frac: np.ndarray, index: dict, n: int) -> dict[str, np.ndarray]:
        """Caps on curtailable sources: the produced share of each asset's forecast, ``inf`` where all of it. [kW]"""
        out = {}
        for f in sources:
            share = frac[index[f.node]]
            out[f.fleet] = np.where(share[None, :] >= 1.0 - 1e-9, np.inf, f.p_max_kw[:, :n] * share[None, :])
        return out

    # -- warm start across windows --------------------------------------
    def _remember(self, g: HorizonGrid, duals: dict) -> None:
        reps = g.steps_per_block
        self._warm = {"k0": g.k0, **{k: np.repeat(v, reps, axis=-1) for k, v in duals.items()}}

    def _warm_duals(self, g: HorizonGrid, start: dict) -> dict:
        """Block means of last window's multipliers over the steps both windows cover; *start* elsewhere."""
        out = {k: v.copy() for k, v in start.items()}
        w = self._warm
        if w is None:
            return out
        shift = g.k0 - w["k0"]
        for key, fresh in out.items():
            old = w[key]
            m = max(0, min(g.n_steps, old.shape[-1] - shift))
            if old.shape[:-1] != fresh.shape[:-1] or m == 0 or shift < 0:
                continue
            steps = np.full(fresh.shape[:-1] + (g.n_steps,), np.nan)
            steps[..., :m] = old[..., shift:shift + m]
            known = np.isfinite(steps)
            n_known = np.add.reduceat(known, g.starts, axis=-1)
            sums = np.add.reduceat(np.where(known, steps, 0.0), g.starts, axis=-1)
            out[key] = np.where(n_known > 0, sums / np.maximum(n_known, 1), fresh)
        return out
