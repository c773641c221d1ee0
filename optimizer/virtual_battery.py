"""``virtual_battery``: each fleet optimised as one virtual asset, then disaggregated.

Every fleet's flexibility form (per fleet and node: a form has one of each)
is aggregated into a form of one asset; the aggregated
:class:`~vpp.dispatch.DispatchProblem` is solved by the same Pyomo/HiGHS
:class:`~vpp.optimizer.model.DispatchModel` as ``source_load_interaction``
(persistent across rolling-horizon windows, objective weights as in
:class:`~vpp.optimizer.interaction.InteractionOptions`); the fleet-level plan
of the next dispatch interval is then split among the assets step by step by
a rule that never asks an asset for more than its own power and energy
bounds allow.  The LP has a few columns per fleet whatever the fleet's size.

Aggregation
-----------
*StorageLike* (batteries, EV sessions, deferrable work) -- :func:`aggregate_storage`,
a sum of envelopes (the "generalised battery" outer approximation of the
Minkowski sum of the assets' polytopes; Hao et al. 2015, Zhao et al. 2017):
power bounds, energy bounds, initial energies and targets are summed, in
*grid-side* energy units ``y_i = e_i / max_t eta_c,i[t]`` so that differing
charge efficiencies cost no accuracy.  A fleet's :class:`~vpp.flex.SharedLimit`
(an EV station's supply) caps each group's summed power bound at its limit,
and the disaggregation keeps every group within it.  Where the assets differ in round-trip
efficiency, self-discharge or a time-varying charge efficiency, the aggregate
takes the most favourable parameters (highest charge and discharge
efficiency, lowest self-discharge) and widens its energy bounds by the most
that choice can add to or take from the summed energy (the recursions ``G``
in :func:`aggregate_storage`).  So the sum of any schedules feasible for the
assets is feasible for the aggregate (``tests/test_virtual_battery.py``
checks it) and, with the lowest of the assets' costs, the aggregated storage
LP is a relaxation of the centralised one.  Homogeneous fleets and EV-like
fleets (no discharge, no self-discharge) get no widening at all.

Where the aggregate promises what the assets cannot deliver (an outer
approximation is optimistic): (i) energy moves between assets -- power the
aggregate plans in a block where only car A is plugged counts toward car B's
need, which B, arriving later, cannot take; (ii) with heterogeneous
efficiencies the aggregate cycles at the best efficiency and fills the
widened bounds; (iii) a fleet's power bound is the sum over assets whatever
their states, so it may plan to charge assets that are full.  The rule
places what it can and the rest is reported (``vb_delivered_frac_<fleet>``).

*Thermal* (buildings, ``S`` states) -- :func:`aggregate_thermal`, a
representative building: its HVAC limit is the sum of the buildings'; its
state is the rating-weighted mean state ``X = sum w_i x_i``
(``w_i`` = HVAC rating share), with the weighted mean transition, drift and
comfort band and ``b = sum w_i rho_i b_i`` (``rho_i`` = share of the
fleet's power limit in the block, i.e. the effect of a pro-rata split); its
discomfort cost is the sum of the buildings'.  Exact for identical buildings
split pro rata; otherwise an approximation that is neither inner nor outer:
a mean temperature inside the band does not put every building inside it.

*CurtailableSource* and *FixedProfile* pass through: the LP already sums
curtailable sources per node exactly (the Minkowski sum of intervals
``[0, P_i]`` is ``[0, sum P_i]``) and caps them pro rata.

Disaggregation
--------------
Step by step over the dispatch interval, from each asset's current state
under the form's own dynamics (:func:`storage_windows`): each storage asset's
net power window keeps its next energy inside its bounds (or, where that is
out of reach, moves it toward them at full power).  Every asset first gets the
point of its window nearest zero (a must-charge where its lower bound calls
for it), then the rest of the fleet plan, clipped to the sum of the windows,
goes by :func:`split`: *least laxity first* (charge goes to the assets whose
deadline is most pressing, :func:`laxity_h`; discharge comes from those with
the most slack; Dertouzos & Mok 1989, as used for EV charging by Xu et al.
2016) or *pro rata* to each asset's headroom.  Buildings get their *need*
first (the HVAC power that keeps the comfort band this step), then the rest
pro rata to remaining headroom, or plain pro rata to their limits.

References
----------
Hao, H., Sanandaji, B. M., Poolla, K., Vincent, T. L. (2015). Aggregate
flexibility of thermostatically controlled loads. IEEE Trans. Power Syst.
30(1), 189-198. doi:10.1109/TPWRS.2014.2328865.
Zhao, L., Zhang, W., Hao, H., Kalsi, K. (2017). A geometric approach to
aggregate flexibility modeling of thermostatically controlled loads. IEEE
Trans. Power Syst. 32(6), 4721-4731. doi:10.1109/TPWRS.2017.2674699.
Dertouzos, M. L., Mok, A. K. (1989). Multiprocessor online scheduling of
hard-real-time tasks. IEEE Trans. Softw. Eng. 15(12), 1497-1506.
doi:10.1109/32.58762.
Xu, Y., Pan, F., Tong, L. (2016). Dynamic scheduling for charging electric
vehicles: a priority rule. IEEE Trans. Autom. Control 61(12), 4094-4099.
doi:10.1109/TAC.2016.2541305.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Literal

import numpy as np

from vpp.dispatch import Decision, DispatchProblem
from vpp.flex import CurtailableSource, HorizonGrid, SharedLimit, StorageLike, Thermal
from vpp.optimizer.base import register
from vpp.optimizer.blocks import best_effort_path
from vpp.optimizer.interaction import InteractionOptions, SourceLoadInteraction

__all__ = [
    "VirtualBatteryOptions",
    "VirtualBattery",
    "aggregate_storage",
    "aggregate_thermal",
    "aggregate_problem",
    "storage_windows",
    "laxity_h",
    "split",
    "disaggregate_storage",
    "disaggregate_thermal",
    "shared_limit",
]

_ZERO_KW = 1e-3   # a fleet plan below this (summed over the interval) counts as zero [kW]


class VirtualBatteryOptions(InteractionOptions):
    """Options of ``virtual_battery``: those of ``source_load_interaction`` plus the rules.

    ``storage_rule``: ``"auto"`` (least laxity first for fleets that cannot
    discharge, e.g. EV sessions and deferrable work; pro rata for the rest),
    ``"least_laxity"`` or ``"pro_rata"``.  ``thermal_rule``: ``"need"``
    (comfort need first, then pro rata to headroom) or ``"pro_rata"`` (to
    the HVAC limits).
    """

    storage_rule: Literal["auto", "least_laxity", "pro_rata"] = "auto"
    """How a storage-like fleet's plan is split among its assets, each kept in its own window:
    ``"least_laxity"`` charges the assets with the least slack before their deadlines first, and
    discharges those with the most first (Dertouzos & Mok 1989); ``"pro_rata"`` shares in proportion to
    each asset's headroom; ``"auto"`` takes least laxity for fleets none of whose assets can discharge
    (EV sessions, deferrable work), pro rata for the rest."""
    thermal_rule: Literal["need", "pro_rata"] = "need"
    """How a building fleet's planned HVAC power is split among its buildings: ``"need"`` first gives each
    the power that brings it back inside its temperature band (pro rata to need if the plan falls short),
    then the rest pro rata to the remaining headroom; ``"pro_rata"`` in proportion to the HVAC limits."""


# -- storage ---------------------------------------------------------------

def _storage_arrays(form: StorageLike, grid: HorizonGrid) -> dict:
    """Per-asset arrays (N, H) of the storage dynamics, as the centralised model holds them."""
    n, h = form.n_assets, grid.n_blocks
    dt = grid.dt_h[None, :]
    full = lambda x: np.broadcast_to(np.asarray(x, float).reshape(n, -1), (n, h))  # noqa: E731
    sigma = full(form.self_discharge_per_h)
    eta_c, eta_d = full(form.eta_charge), full(form.eta_discharge)
    return dict(sigma=sigma, a=np.exp(-sigma * dt), eta_c=eta_c, eta_d=eta_d,
                kc=eta_c * dt, kd=dt / eta_d,
                pc_max=np.asarray(form.p_charge_max_kw, float), pd_max=np.asarray(form.p_discharge_max_kw, float),
                pc_min=np.minimum(np.asarray(form.p_charge_min_kw, float), np.asarray(form.p_charge_max_kw, float)),
                e_min=np.asarray(form.e_min_kwh, float), e_max=np.asarray(form.e_max_kwh, float),
                e0=np.asarray(form.e_init_kwh, float), target=np.asarray(form.e_target_kwh, float))


def aggregate_storage(form: StorageLike, grid: HorizonGrid, limit: SharedLimit | None = None) -> StorageLike:
    """One virtual storage asset whose feasible set contains the sum of the assets'.

    Energies are in grid-side units ``y_i = s_i e_i`` with
    ``s_i = 1 / max_t eta_c,i[t]``; the asset dynamics become
    ``y_i[t+1] = a_i y_i[t] + dt kc_i pc_i - dt kd_i pd_i`` with
    ``kc_i = s_i eta_c,i <= 1`` and ``kd_i = s_i / eta_d,i``.  The aggregate
    has ``A = max_i a_i`` (lowest self-discharge), ``kc = max_i kc_i`` and
    ``kd = min_i kd_i`` over the assets that can charge/discharge in the
    block, power bounds ``sum P^c_max,i``, ``sum P^d_max,i``, energy
    ``Y[0] = sum y_i[0]`` and bounds

        ``sum y_min,i[t] + G_lo[t] <= Y[t+1] <= sum y_max,i[t] + G_hi[t]``,
        ``G_hi[t] = A[t] G_hi[t-1] + sum_i (A - a_i) max(y^hi_i[t], 0)
        + dt sum_i (kc - kc_i) P^c_max,i + dt sum_i (kd_i - kd) P^d_max,i``,
        ``G_lo[t] = A[t] G_lo[t-1] + sum_i (A - a_i) min(y^lo_i[t], 0)``,

    with ``y^lo_i[t], y^hi_i[t]`` the bounds of ``y_i`` at the start of block
    ``t`` and ``G[-1] = 0``.  Proof of containment: for summed powers,
    ``D = Y - sum y_i`` obeys ``D[t+1] = A D[t] + g[t]`` with
    ``g[t]`` between the two sums, so ``G_lo <= D <= G_hi``.  Targets sum
    likewise (``+ G_lo[H-1]``).  The assets' bounds are taken as the
    centralised model holds them (widened only where unreachable,
    :func:`~vpp.optimizer.blocks.best_effort_path`).  Costs: the lowest
    throughput cost, the lowest shortfall cost per grid-side kWh
    (``min_i c_i / s_i``), so the aggregate never costs more than the assets.

    Parameters
    ----------
    form : StorageLike
        N >= 1 assets.
    grid : HorizonGrid
    limit : SharedLimit, optional
        Groups of the assets with a limit on their summed power: the
        aggregate's power bounds are then ``sum_g min(sum_{i in g} P_max,i, L_g)``
        (plus the assets in no group), which still contain every sum of
        feasible schedules.

    Returns
    -------
    StorageLike
        One asset, energies in grid-side kWh, same fleet and node.
    """
    d = _storage_arrays(form, grid)
    pc_sum, pd_sum = (_grouped_sum(d[k], limit, attr)
                      for k, attr in (("pc_max", "charge_limit_kw"), ("pd_max", "discharge_limit_kw")))
    dt = grid.dt_h
    best = best_effort_path(d["e0"], d["a"], d["kc"] * d["pc_max"], d["kd"] * d["pd_max"], d["e_min"], d["e_max"])
    s = 1.0 / d["eta_c"].max(axis=1)
    y_lo, y_hi = s[:, None] * np.minimum(d["e_min"], best), s[:, None] * np.maximum(d["e_max"], best)
    y0 = s * d["e0"]
    kc, kd = d["eta_c"] * s[:, None], s[:, None] / d["eta_d"]
    can_c, can_d = d["pc_max"] > 0, d["pd_max"] > 0
    kc_agg = np.where(can_c.any(axis=0), np.where(can_c, kc, 0.0).max(axis=0), 1.0)
    kd_agg = np.where(can_d.any(axis=0), np.where(can_d, kd, np.inf).min(axis=0), 1.0)
    sigma_agg = d["sigma"].min(axis=0)                             # per block
    big_a = np.exp(-sigma_agg * dt)
    ys_lo = np.column_stack([y0, y_lo[:, :-1]])                   # state bounds at each block's start
    ys_hi = np.column_stack([y0, y_hi[:, :-1]])
    loss = big_a[None, :] - d["a"]                                 # >= 0
    g_hi = ((loss * np.maximum(ys_hi, 0.0)).sum(axis=0)
            + dt * (np.where(can_c, kc_agg - kc, 0.0) * d["pc_max"]).sum(axis=0)
            + dt * (np.where(can_d, kd - kd_agg, 0.0) * d["pd_max"]).sum(axis=0))
    g_lo = (loss * np.minimum(ys_lo, 0.0)).sum(axis=0)
    gap_hi, gap_lo = np.zeros(grid.n_blocks), np.zeros(grid.n_blocks)
    acc_hi = acc_lo = 0.0
    for t in range(grid.n_blocks):
        acc_hi = big_a[t] * acc_hi + g_hi[t]
        acc_lo = big_a[t] * acc_lo + g_lo[t]
        gap_hi[t], gap_lo[t] = acc_hi, acc_lo
    row = lambda x: np.asarray(x, float).reshape(1, -1)  # noqa: E731
    return StorageLike(
        fleet=form.fleet, node=form.node,
        p_charge_max_kw=row(pc_sum), p_discharge_max_kw=row(pd_sum),
        p_charge_min_kw=row(np.minimum(d["pc_min"].sum(axis=0), pc_sum)),
        e_min_kwh=row(y_lo.sum(axis=0) + gap_lo), e_max_kwh=row(y_hi.sum(axis=0) + gap_hi),
        e_init_kwh=row(y0.sum())[0], e_target_kwh=row((s * d["target"]).sum() + gap_lo[-1])[0],
        eta_charge=row(kc_agg), eta_discharge=row(1.0 / kd_agg),
        self_discharge_per_h=row(sigma_agg),
        shortfall_cost_cny_per_kwh=np.array([float((np.asarray(form.shortfall_cost_cny_per_kwh, float) / s).min())]),
        throughput_cost_cny_per_kwh=np.array([float(np.min(form.throughput_cost_cny_per_kwh))]),
    )


def _grouped_sum(p_max_kw: np.ndarray, limit: SharedLimit | None, attr: str) -> np.ndarray:
    """Most power the assets can draw together per block (H,): their bounds summed,
    each group's sum capped at its limit."""
    if limit is None:
        return p_max_kw.sum(axis=0)
    free = p_max_kw[limit.group < 0].sum(axis=0)
    return free + np.minimum(limit.group_sum(p_max_kw), np.asarray(getattr(limit, attr), dtype=float)).sum(axis=0)


def storage_windows(e_kwh, a, kc, kd, pc_max_kw, pd_max_kw, e_min_kwh, e_max_kwh) -> tuple[np.ndarray, np.ndarray]:
    """Each asset's net power window for one block from its current energy.

    The window holds the powers whose next energy
    ``a e + kc max(-p, 0) - kd max(p, 0)`` lies in ``[e_min, e_max]`` and
    ``-P^c_max <= p <= P^d_max``.  Where no power reaches the bounds the
    window is the single power that comes nearest (full charge below
    ``e_min``, full discharge above ``e_max``).

    Parameters
    ----------
    e_kwh : ndarray, shape (N,)
        Energy at the block's start. [kWh]
    a : ndarray, shape (N,)
        Self-discharge factor over the block. [-]
    kc, kd : ndarray, shape (N,)
        Energy stored per kW of charge and removed per kW of discharge held
        over the block (``eta_c dt``, ``dt / eta_d``). [kWh/kW]
    pc_max_kw, pd_max_kw : ndarray, shape (N,)
        Power limits. [kW]
    e_min_kwh, e_max_kwh : ndarray, shape (N,)
        Energy bounds at the block's end. [kWh]

    Returns
    -------
    lo, hi : ndarray, shape (N,)
        Net power bounds, generator sign (charge < 0). [kW]
    """
    drift = a * e_kwh
    up = np.where(drift <= e_max_kwh, -(e_max_kwh - drift) / kc, (drift - e_max_kwh) / kd)   # lowest p
    down = np.where(drift >= e_min_kwh, (drift - e_min_kwh) / kd, (drift - e_min_kwh) / kc)  # highest p
    lo = np.clip(up, -pc_max_kw, pd_max_kw)
    hi = np.clip(down, -pc_max_kw, pd_max_kw)
    return np.minimum(lo, hi), hi


def laxity_h(e_kwh, kc, pc_max_kw, dt_h, e_min_kwh, target_kwh) -> np.ndarray:
    """Slack before each asset's deadline: hours it may still wait at full charge power.

    ``(sum_t kc[t] P^c_max[t] - need) / max_t (kc[t] P^c_max[t] / dt[t])``
    over the remaining blocks, with ``need = max(target, max_t e_min[t]) - e``
    (>= 0).  A deadline is where the form's power bound drops to zero (an EV's
    departure); assets that cannot charge have infinite laxity.

    Parameters
    ----------
    e_kwh : ndarray, shape (N,)
        Energy now. [kWh]
    kc, pc_max_kw, e_min_kwh : ndarray, shape (N, H')
        The remaining blocks' ``eta_c dt`` [kWh/kW], charge limits [kW] and
        lower energy bounds [kWh].
    dt_h : ndarray, shape (H',)
        Remaining block lengths. [h]
    target_kwh : ndarray, shape (N,)
        Energy wanted at the horizon's end. [kWh]

    Returns
    -------
    ndarray, shape (N,)
        Laxity. [h]
    """
    room = kc * pc_max_kw
    need = np.maximum(np.maximum(target_kwh, e_min_kwh.max(axis=1, initial=-np.inf)) - e_kwh, 0.0)
    rate = (room / dt_h[None, :]).max(axis=1, initial=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rate > 0, (room.sum(axis=1) - need) / rate, np.inf)


def split(total_kw: float, lo: np.ndarray, hi: np.ndarray, priority: np.ndarray | None = None,
          group: np.ndarray | None = None, room_kw: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Share a fleet's power among assets within their windows ``[lo, hi]``.

    Every asset starts at the point of its window nearest zero; the rest of
    ``clip(total, sum lo, sum hi)`` goes, if *priority* is None, pro rata to
    each asset's headroom in that direction, else to the assets in order of
    increasing *priority* for charge (< 0) and decreasing for discharge, each
    filled to its window's edge.  With *group* and *room_kw*, no group's
    summed charge (discharge) goes beyond its limit: an asset's headroom ends
    where its group's does, and pro rata sharing fills again what that left
    (water-filling).  The result lies in ``[lo, hi]`` and sums to the
    clipped total (to round-off) where the limits allow.

    Parameters
    ----------
    total_kw : float
        Fleet power wanted, generator sign. [kW]
    lo, hi : ndarray, shape (N,)
        Asset windows, ``lo <= hi``. [kW]
    priority : ndarray, shape (N,), optional
        Lower is served first when charging (e.g. :func:`laxity_h`).
    group : ndarray of int, shape (N,), optional
        Each asset's group (-1: none; :class:`~vpp.flex.SharedLimit`).
    room_kw : (ndarray, ndarray), optional
        Each group's limit on summed charge and on summed discharge. [kW]

    Returns
    -------
    ndarray, shape (N,)
        Asset powers, generator sign. [kW]
    """
    z = np.clip(0.0, lo, hi)
    rest = float(np.clip(total_kw, lo.sum(), hi.sum())) - float(z.sum())
    head = z - lo if rest < 0 else hi - z
    amount = abs(rest)
    if amount <= 0 or float(head.sum()) <= 0:
        return z
    if group is None or room_kw is None:
        share = _fill(amount, head, priority, rest)
    else:
        limit = np.asarray(room_kw[0] if rest < 0 else room_kw[1], dtype=float)
        used = np.bincount(group[group >= 0], weights=np.maximum(-z if rest < 0 else z, 0.0)[group >= 0],
                           minlength=limit.size)
        share = _fill_groups(amount, head, priority, rest, group, np.maximum(limit - used, 0.0))
    return np.clip(z + np.sign(rest) * share, lo, hi)


def _fill(amount: float, head: np.ndarray, priority: np.ndarray | None, rest: float) -> np.ndarray:
    """*amount* over the headrooms *head*: pro rata, or in *priority* order."""
    if priority is None:
        return head * min(amount / float(head.sum()), 1.0)
    order = np.argsort(priority, kind="stable")
    if rest > 0:
        order = order[::-1]
    filled = np.cumsum(head[order]) - head[order]
    share = np.empty_like(head)
    share[order] = np.clip(amount - filled, 0.0, head[order])
    return share


def _fill_groups(amount: float, head: np.ndarray, priority: np.ndarray | None, rest: float,
                 group: np.ndarray, room: np.ndarray) -> np.ndarray:
    """:func:`_fill` with each group's total within its *room*."""
    share = np.zeros_like(head)
    room = np.append(room, np.inf)                    # index -1: no group
    if priority is not None:
        order = np.argsort(priority, kind="stable")
        for i in (order[::-1] if rest > 0 else order).tolist():
            take = min(head[i], amount, room[group[i]])
            share[i], amount = take, amount - take
            room[group[i]] -= take
            if amount <= 0:
                break
        return share
    slot = np.where(group >= 0, group, len(room) - 1)
    for _ in range(len(room) + 1):                    # each pass saturates a group or ends
        free = np.where((head - share > 0) & (room[slot] > 0), head - share, 0.0)
        if amount <= 1e-12 or not free.any():
            break
        want = free * min(amount / float(free.sum()), 1.0)
        per = np.bincount(slot, weights=want, minlength=len(room))
        got = want * np.minimum(1.0, np.divide(room, per, out=np.ones_like(room), where=per > 0))[slot]
        share += got
        amount -= float(got.sum())
        room -= np.bincount(slot, weights=got, minlength=len(room))
    return share


def disaggregate_storage(form: StorageLike, grid: HorizonGrid, p_kw: np.ndarray,
                         rule: Literal["least_laxity", "pro_rata"], limit: SharedLimit | None = None) -> np.ndarray:
    """Split a fleet's planned net power among its assets, step by step.

    Parameters
    ----------
    form : StorageLike
    grid : HorizonGrid
        The first ``len(p_kw)`` blocks must be one simulation step long.
    p_kw : ndarray, shape (n_steps,)
        Fleet net power per step, generator sign. [kW]
    rule : {"least_laxity", "pro_rata"}
        See :func:`split`.
    limit : SharedLimit, optional
        Groups of the assets whose summed charge and discharge per step stay
        within their limits (:func:`split`).

    Returns
    -------
    ndarray, shape (N, n_steps)
        Asset setpoints ``pd - pc``, generator sign, each within the asset's
        :func:`storage_windows`. [kW]
    """
    d = _storage_arrays(form, grid)
    e = d["e0"].copy()
    out = np.empty((form.n_assets, len(p_kw)))
    for k, total in enumerate(np.asarray(p_kw, float)):
        col = {key: d[key][:, k] for key in ("a", "kc", "kd", "pc_max", "pd_max", "e_min", "e_max")}
        lo, hi = storage_windows(e, col["a"], col["kc"], col["kd"], col["pc_max"], col["pd_max"],
                                 col["e_min"], col["e_max"])
        must = d["pc_min"][:, k]                               # charge the asset draws in any case
        hi = np.where(must > 0, np.minimum(hi, -must), hi)
        lo = np.minimum(lo, hi)
        prio = None
        if rule == "least_laxity":
            prio = laxity_h(e, d["kc"][:, k:], d["pc_max"][:, k:], grid.dt_h[k:], d["e_min"][:, k:], d["target"])
        room = None if limit is None else (limit.charge_limit_kw[:, k], limit.discharge_limit_kw[:, k])
        p = split(total, lo, hi, prio, None if limit is None else limit.group, room)
        e = col["a"] * e + col["kc"] * np.maximum(-p, 0.0) - col["kd"] * np.maximum(p, 0.0)
        out[:, k] = p
    return out


# -- thermal ---------------------------------------------------------------

def _rating_weights(form: Thermal) -> np.ndarray:
    rating = np.asarray(form.p_max_kw, float).max(axis=1)
    total = rating.sum()
    return rating / total if total > 0 else np.full(form.n_assets, 1.0 / form.n_assets)


def aggregate_thermal(form: Thermal, grid: HorizonGrid) -> Thermal:
    """A representative building for the fleet (rating-weighted mean model).

    With ``w_i`` the HVAC rating shares and ``rho_i[t] = P_max,i[t] / sum P_max[t]``:
    ``A = sum w_i A_i``, ``b = sum w_i rho_i b_i``, ``d = sum w_i d_i``,
    ``x0 = sum w_i x0_i``, band ``sum w_i T_min,i`` to ``sum w_i T_max,i``,
    ``P_max = sum P_max,i`` and discomfort cost ``sum c_i``.  The state is
    the weighted mean ``X = sum w_i x_i`` when every building gets
    ``rho_i P``: exact if the ``A_i`` are equal, otherwise ``A`` is an
    approximation.  Comfort of the mean is not comfort of each building.

    Parameters
    ----------
    form : Thermal
        N >= 1 buildings.
    grid : HorizonGrid

    Returns
    -------
    Thermal
        One asset, same fleet and node.
    """
    w = _rating_weights(form)
    pmax = np.asarray(form.p_max_kw, float)
    tot = pmax.sum(axis=0)
    rho = np.where(tot > 0, pmax / np.where(tot > 0, tot, 1.0), w[:, None])
    return Thermal(
        fleet=form.fleet, node=form.node,
        a=np.einsum("i,ihjk->hjk", w, form.a)[None],
        b_k_per_kw=np.einsum("i,ih,ihj->hj", w, rho, form.b_k_per_kw)[None],
        d_k=np.einsum("i,ihj->hj", w, form.d_k)[None], temp_init_c=(w @ form.temp_init_c)[None],
        p_max_kw=tot[None], temp_min_c=(w @ form.temp_min_c)[None], temp_max_c=(w @ form.temp_max_c)[None],
        discomfort_cost_cny_per_kh=np.array([float(np.sum(form.discomfort_cost_cny_per_kh))]),
    )


def disaggregate_thermal(form: Thermal, grid: HorizonGrid, p_kw: np.ndarray,
                         rule: Literal["need", "pro_rata"]) -> np.ndarray:
    """Split a fleet's planned HVAC power among its buildings, step by step.

    ``"need"``: each building's need is the power that brings state 0 to the
    comfort band's near edge at the step's end under the form's dynamics
    (``(free - T_max) / -b_0`` when cooling, ``(T_min - free) / b_0`` when
    heating, within ``[0, P_max]``); needs are met first (pro rata to need if
    the plan falls short), the rest goes pro rata to the remaining headroom.
    ``"pro_rata"``: in proportion to ``P_max``.  The fleet total is clipped to
    ``[0, sum P_max]``.

    Parameters
    ----------
    form : Thermal
    grid : HorizonGrid
        The first ``len(p_kw)`` blocks must be one simulation step long.
    p_kw : ndarray, shape (n_steps,)
        Fleet HVAC electric power per step (>= 0, consumption). [kW]
    rule : {"need", "pro_rata"}

    Returns
    -------
    ndarray, shape (N, n_steps)
        HVAC power per building, within ``[0, P_max]`` (consumption, so the
        setpoint is its negative). [kW]
    """
    x = np.asarray(form.temp_init_c, float).copy()
    out = np.empty((form.n_assets, len(p_kw)))
    for k, total in enumerate(np.asarray(p_kw, float)):
        pmax = np.asarray(form.p_max_kw, float)[:, k]
        total = float(np.clip(total, 0.0, pmax.sum()))
        a, b, d = form.a[:, k], form.b_k_per_kw[:, k], form.d_k[:, k]
        if rule == "need":
            free0 = np.einsum("ik,ik->i", a[:, 0, :], x) + d[:, 0]
            b0 = b[:, 0]
            safe = np.where(b0 != 0, b0, 1.0)
            need = np.where(b0 < 0, (free0 - form.temp_max_c[:, k]) / -safe,
                            np.where(b0 > 0, (form.temp_min_c[:, k] - free0) / safe, 0.0))
            need = np.clip(need, 0.0, pmax)
            n_sum = need.sum()
            if n_sum > 0 and total <= n_sum:
                p = need * (total / n_sum)
            else:
                head = pmax - need
                p = need + (head * ((total - n_sum) / head.sum()) if head.sum() > 0 else 0.0)
        else:
            p = pmax * (total / pmax.sum()) if pmax.sum() > 0 else np.zeros_like(pmax)
        p = np.clip(p, 0.0, pmax)
        x = np.einsum("ijk,ik->ij", a, x) + b * p[:, None] + d
        out[:, k] = p
    return out


# -- the problem -----------------------------------------------------------

def aggregate_problem(problem: DispatchProblem) -> DispatchProblem:
    """The same window with each StorageLike and Thermal form replaced by one asset.

    Curtailable sources and fixed profiles pass through; forms without
    assets are dropped.
    """
    forms = []
    for f in problem.forms:
        if isinstance(f, StorageLike):
            if f.n_assets:
                forms.append(aggregate_storage(f, problem.grid, shared_limit(problem, f)))
        elif isinstance(f, SharedLimit):
            continue                                    # inside its fleet's aggregate power bounds
        elif isinstance(f, Thermal):
            if f.n_assets:
                forms.append(aggregate_thermal(f, problem.grid))
        else:
            forms.append(f)
    return replace(problem, forms=tuple(forms))


def shared_limit(problem: DispatchProblem, form: StorageLike) -> SharedLimit | None:
    """The :class:`SharedLimit` over *form*'s fleet, if it has one (a fleet offers
    one StorageLike form)."""
    return next((f for f in problem.forms if isinstance(f, SharedLimit) and f.fleet == form.fleet), None)


@register
class VirtualBattery(SourceLoadInteraction):
    """Each fleet as one virtual asset, optimised together, then disaggregated by rule.

    Parameters
    ----------
    options : VirtualBatteryOptions
    extra_constraints : callable, optional
        ``extra_constraints(model, problem)`` on the aggregated model (one
        asset per StorageLike/Thermal fleet).

    Decision.metrics, per controlled fleet ``<f>`` (besides the model's
    slack use, in aggregate units):
    ``vb_planned_kw_<f>`` and ``vb_placed_kw_<f>``: the fleet plan of the
    first step and what the rule placed within the assets' limits [kW];
    ``vb_delivered_frac_<f>``: the share of the interval's planned power
    the rule placed, ``sum_k min(|plan_k|, |placed_k|) / sum_k |plan_k|``
    over steps where both have the same sign (1 when the plan is zero);
    ``vb_deviation_kwh_<f>``: ``sum_k |plan_k - placed_k| dt`` [kWh], which
    also counts power placed beyond the plan (assets that must charge now
    although the aggregate planned otherwise).  ``vb_aggregate_s``,
    ``vb_disaggregate_s``: time of those stages (in ``build_time_s``).
    """

    name = "virtual_battery"
    Options = VirtualBatteryOptions

    def _storage_rule(self, form: StorageLike) -> str:
        rule = self.options.storage_rule
        if rule == "auto":
            return "pro_rata" if bool(np.any(np.asarray(form.p_discharge_max_kw) > 0)) else "least_laxity"
        return rule

    def planning_problem(self, problem: DispatchProblem) -> DispatchProblem:
        """The aggregated problem (one virtual asset per fleet), as :meth:`decide` solves."""
        return aggregate_problem(problem)

    def decide(self, problem: DispatchProblem) -> Decision:
        t0 = time.perf_counter()
        agg = aggregate_problem(problem)
        agg_s = time.perf_counter() - t0
        status, build_s, solve_s = self.solve_window(agg)
        build_s += agg_s
        if not status.startswith("optimal"):
            return self.decision(status, build_s, solve_s)
        t1 = time.perf_counter()
        n = problem.grid.n_fine
        plan = self.model.setpoints(n)
        setpoints, metrics = {}, self.model.window_metrics()
        for f in problem.forms:
            if isinstance(f, StorageLike) and f.n_assets:
                planned = plan[f.fleet][0]
                setpoints[f.fleet] = disaggregate_storage(f, problem.grid, planned, self._storage_rule(f),
                                                          shared_limit(problem, f))
                placed = setpoints[f.fleet].sum(axis=0)
            elif isinstance(f, Thermal) and f.n_assets:
                planned = plan[f.fleet][0]
                setpoints[f.fleet] = -disaggregate_thermal(f, problem.grid, -planned, self.options.thermal_rule)
                placed = setpoints[f.fleet].sum(axis=0)
            else:
                if isinstance(f, CurtailableSource):
                    setpoints[f.fleet] = plan[f.fleet]      # per-asset caps, pro rata (CurtailableBlock)
                continue
            metrics.update(_delivery(f.fleet, planned, placed, problem.grid.dt_h[:n]))
        metrics["vb_aggregate_s"] = agg_s
        metrics["vb_disaggregate_s"] = time.perf_counter() - t1
        return self.decision(status, build_s + metrics["vb_disaggregate_s"], solve_s, setpoints, metrics)


def _delivery(fleet: str, planned: np.ndarray, placed: np.ndarray, dt_h: np.ndarray) -> dict[str, float]:
    """Planned vs placed fleet power: the first step, the share placed, the deviation."""
    same = np.sign(planned) == np.sign(placed)
    overlap = np.where(same, np.minimum(np.abs(planned), np.abs(placed)), 0.0)
    scale = float(np.abs(planned).sum())
    frac = float(overlap.sum()) / scale if scale > _ZERO_KW else 1.0
    return {f"vb_planned_kw_{fleet}": float(planned[0]), f"vb_placed_kw_{fleet}": float(placed[0]),
            f"vb_delivered_frac_{fleet}": frac,
            f"vb_deviation_kwh_{fleet}": float((np.abs(planned - placed) * dt_h).sum())}
