"""``rule_based``: storage and flexible loads follow local surplus and the tariff by fixed rules.

No optimizer: what many VPPs and energy-management systems run today.  Each
dispatch interval, step by step over the interval's (one-step) blocks and per
grid node, the strategy forecasts the node's net surplus (curtailable
sources' forecast plus the fixed profiles, generator sign) and applies the
rules below in this order.

Tariff periods.  A step is a *valley* if its import price lies in the lowest
``valley_band_frac`` of the price range, a *peak* if it lies in the highest
``peak_band_frac``, otherwise *flat*; the range is taken over the horizon and
the prices of the past ``price_memory_h`` (so a short horizon that holds no
valley does not call its cheapest hour one).  A range narrower than
``min_spread_frac`` of its top is all flat.  This stands in for the tariff's
period table (e.g. Shanghai's TOU periods, docs/SOURCES.md), which the
dispatch problem gives only as prices.

Rules (every option below is an assumption of this strategy, not a measured
fact; the defaults are stated in :class:`RuleOptions`):

1. *Service first.*  Every storage-like asset (battery, EV session, deferrable
   batch work, curtailment store, air-conditioner population) keeps to the
   energy envelope its form implies: the backward pass of
   :func:`envelopes` turns the energy bounds and the terminal target into the
   least energy each block must end with, so a deadline is met at the
   *minimum rate* (least-laxity charging: Xu, Pan & Tong, "Dynamic scheduling
   for charging electric vehicles: a priority rule", IEEE TAC 61(12), 2016).
2. *Thermostat.*  Buildings (Thermal forms) hold the edge of the comfort band
   that the weather pushes towards (cooling: the top; heating: the bottom) --
   what their uncontrolled thermostats do -- using the band that applies up to
   ``precondition_h`` ahead (an early start).  The HVAC power that puts
   state 0 on a target temperature is solved from the form's one-block map
   ``x' = A x + b p + d``: ``p = (target - (A x + d)_0) / b_0``, clipped to
   ``[0, p_max]``.  Where rules 3-4 pre-cool or pre-heat toward the other
   edge, they stop where the building, running free over the rest of the
   horizon, would leave the band on that side (heat gains at noon would
   otherwise overheat a pre-heated building that can only heat).
3. *Local surplus is absorbed.*  Where the node's forecast has a surplus
   after rules 1-2, flexible loads (buildings pre-cool/pre-heat to the other
   edge of the band, EVs and batch work charge up to full power) absorb it
   first, then storage that can discharge charges from what is left (up to
   its energy bound) -- the PV self-consumption rule (Luthander et al.,
   "Photovoltaic self-consumption in buildings: a review", Appl. Energy 142,
   2015, doi:10.1016/j.apenergy.2014.12.028).  Shares within a group are pro
   rata to each asset's room.  Sources are never curtailed by this strategy
   (the engine's export limiter still caps what a node cannot export).
4. *Tariff charging*, within the node's and the VPP's import limits and, with
   ``valley_below_peak``, without raising the billed peak import above the
   peak so far (or the horizon's forecast inflexible peak, if higher) -- the
   demand limit of C&I storage controllers:

   * storage that cannot discharge (EVs, batch work) charges at full power in
     valley steps and, with ``cheapest_hours``, in the cheapest blocks that
     together hold its remaining need before its deadline;
   * buildings pre-cool/pre-heat to the other edge of the band in valley
     steps when a dearer period starts within ``precool_lead_h``
     (pre-cooling before the peak: Braun, "Load control using building
     thermal mass", J. Sol. Energy Eng. 125(3), 2003, doi:10.1115/1.1592184);
   * storage that can discharge charges in valley steps up to
     ``valley_charge_soc_frac`` of its energy range -- time-of-use arbitrage
     -- but no more than the horizon's later peak blocks can discharge and,
     with ``leave_room_for_surplus``, leaving room for the node's forecast
     surplus over the horizon (shared pro rata to energy capacity), as
     forecast-based PV-battery strategies do (Zeh & Witzmann, "Operational
     strategies for battery storage systems in low-voltage distribution
     grids to limit the feed-in power of roof-mounted solar power systems",
     Energy Procedia 46, 2014).
5. *Peak discharging.*  In peak steps at a node that imports, storage that can
   discharge covers the import (never more: no export from storage), down to
   ``peak_reserve_soc_frac`` of its energy range and its service envelope.

6. *Demand-response calls* (once announced).  A block inside a peak-shaving
   call is treated as a peak block whatever the tariff: storage discharges to
   cover the import (rule 5), buildings hold the top of the band, EVs and batch
   work charge only what their deadlines need (rule 1), nothing charges for the
   tariff; and where covering the import delivers less than the call's
   capacity, storage discharges further (exporting), up to the capacity.  A
   block inside a valley-filling call is treated as a valley block: storage,
   EVs and batch work charge, buildings pre-cool (rule 4).  The rules do not
   bid: they deliver what these moves give.

Otherwise storage that cannot discharge charges at the minimum rate of rule
1 and storage that can discharge idles.  Curtailable sources are left
uncontrolled (full output).

Per-window metrics (columns of ``Results.dispatch``), over the interval's
steps: ``rule_surplus_absorbed_kwh`` (rule 3), ``rule_tariff_charged_kwh``
(rule 4), ``rule_peak_discharged_kwh`` (rule 5), ``rule_valley_steps`` and
``rule_peak_steps``, ``rule_dr_discharged_kwh`` (rule 6).
"""

from __future__ import annotations

import time

import numpy as np
from pydantic import Field, model_validator

from vpp.dispatch import Decision, DispatchProblem
from vpp.dr import block_terms
from vpp.flex import CurtailableSource, FixedProfile, SharedLimit, StorageLike, Thermal
from vpp.optimizer.base import Strategy, StrategyOptions, register
from vpp.optimizer.blocks import stack, stack_blocks

__all__ = ["RuleOptions", "RuleBased", "classify_prices", "dr_classes", "envelopes", "VALLEY", "FLAT", "PEAK"]

VALLEY, FLAT, PEAK = -1, 0, 1


class RuleOptions(StrategyOptions):
    """Options of ``rule_based`` (every default is an assumption of this strategy).

    Parameters
    ----------
    valley_band_frac, peak_band_frac : float
        Share of the price range, from its bottom and from its top, whose
        prices count as valley and as peak.  The defaults put Shanghai's TOU
        valley (0.4-0.5 P) and peak (1.6-1.8 P, critical 2.25 P) prices in the
        right periods and the flat price P in neither. [-]
    min_spread_frac : float
        A price range narrower than this share of its highest price is all flat. [-]
    price_memory_h : float
        Past prices kept for the range besides the horizon's. [h]
    precondition_h : float
        Buildings hold the comfort band that applies up to this far ahead (the
        uncontrolled buildings' early start is 1 h). [h]
    precool_lead_h : float
        In a valley, buildings pre-cool/pre-heat only when a dearer period
        starts within this time. [h]
    valley_charge_soc_frac : float
        Storage that can discharge charges in valleys up to this share of its
        energy range. [-]
    peak_reserve_soc_frac : float
        Share of the energy range storage keeps when discharging at peak. [-]
    cheapest_hours : bool
        Whether EV sessions and batch work also charge at full power in the
        cheapest blocks that hold their need (rule 4).
    leave_room_for_surplus : bool
        Whether valley charging leaves room for the node's forecast surplus
        over the horizon (rule 4).
    valley_below_peak : bool
        Whether tariff charging keeps the billed import below the billing
        period's peak so far, or the horizon's forecast inflexible peak if
        higher (rule 4).
    """

    valley_band_frac: float = Field(0.25, ge=0.0, le=1.0)
    peak_band_frac: float = Field(0.3, ge=0.0, le=1.0)
    min_spread_frac: float = Field(0.1, ge=0.0, lt=1.0)
    price_memory_h: float = Field(24.0, ge=0.0)
    precondition_h: float = Field(1.0, ge=0.0)
    precool_lead_h: float = Field(2.0, ge=0.0)
    valley_charge_soc_frac: float = Field(1.0, ge=0.0, le=1.0)
    peak_reserve_soc_frac: float = Field(0.0, ge=0.0, le=1.0)
    cheapest_hours: bool = True
    leave_room_for_surplus: bool = True
    valley_below_peak: bool = True

    @model_validator(mode="after")
    def _bands_do_not_overlap(self):
        if self.valley_band_frac + self.peak_band_frac > 1.0:
            raise ValueError(f"valley_band_frac + peak_band_frac must be <= 1 (got {self.valley_band_frac} + "
                             f"{self.peak_band_frac}): a price cannot be both valley and peak")
        if self.peak_reserve_soc_frac > self.valley_charge_soc_frac:
            raise ValueError("peak_reserve_soc_frac must not exceed valley_charge_soc_frac")
        return self


def classify_prices(price: np.ndarray, memory: np.ndarray, valley_band: float, peak_band: float,
                    min_spread: float) -> np.ndarray:
    """Tariff period of each block: :data:`VALLEY`, :data:`FLAT` or :data:`PEAK`.

    Parameters
    ----------
    price : ndarray, shape (H,)
        Import price of each block. [CNY/kWh]
    memory : ndarray
        Recent past prices that widen the range. [CNY/kWh]
    valley_band, peak_band, min_spread : float
        See :class:`RuleOptions`. [-]

    Returns
    -------
    ndarray of int, shape (H,)
    """
    price = np.asarray(price, dtype=float)
    seen = np.concatenate([price, np.asarray(memory, dtype=float)])
    lo, hi = float(seen.min()), float(seen.max())
    spread = hi - lo
    out = np.full(price.shape, FLAT, dtype=int)
    if spread <= min_spread * max(abs(hi), 1e-12):
        return out
    out[price <= lo + valley_band * spread] = VALLEY
    out[price >= hi - peak_band * spread] = PEAK
    return out


def envelopes(a, up, down, e_min, e_max, target) -> tuple[np.ndarray, np.ndarray]:
    """Least and most energy each block may end with so that every later bound stays reachable.

    Backward pass: to end block ``t+1`` at or above ``lo[t+1]`` the store must
    end block ``t`` at or above ``(lo[t+1] - up[t+1]) / a[t+1]``, and likewise
    below ``hi``; the terminal target is a lower bound on the last block.

    Parameters
    ----------
    a : ndarray, shape (N, H)
        Self-discharge factor of each block. [-]
    up, down : ndarray, shape (N, H)
        Most energy charging adds and discharging removes in each block. [kWh]
    e_min, e_max : ndarray, shape (N, H)
        Energy bounds at block ends. [kWh]
    target : ndarray, shape (N,)
        Energy wanted at the end of the horizon. [kWh]

    Returns
    -------
    lo, hi : ndarray, shape (N, H)
        Envelopes at block ends. [kWh]
    """
    lo, hi = np.array(e_min, dtype=float), np.array(e_max, dtype=float)
    lo[:, -1] = np.maximum(lo[:, -1], target)
    for t in range(lo.shape[1] - 2, -1, -1):
        lo[:, t] = np.maximum(lo[:, t], (lo[:, t + 1] - up[:, t + 1]) / a[:, t + 1])
        hi[:, t] = np.minimum(hi[:, t], (hi[:, t + 1] + down[:, t + 1]) / a[:, t + 1])
    return lo, hi


def _share(room: np.ndarray, node: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Split ``amount[n]`` (>= 0) over the assets at node n pro rata to their *room* (>= 0)."""
    total = np.bincount(node, weights=room, minlength=amount.size)
    frac = np.divide(np.minimum(amount, total), total, out=np.zeros(amount.size), where=total > 0)
    return room * frac[node]


def _import_room(net: np.ndarray, import_limit: np.ndarray, vpp_limit: float) -> np.ndarray:
    """Import each node may add within its own limit and, shared pro rata, the VPP's. [kW]"""
    room = np.maximum(import_limit + net, 0.0)
    vpp_room = max(vpp_limit + float(net.sum()), 0.0)
    total = float(room.sum())
    return room * (min(1.0, vpp_room / total) if total > 0 else 0.0)


class _Storage:
    """Stacked StorageLike forms with the per-window quantities the rules need."""

    def __init__(self, forms: list[StorageLike], problem: DispatchProblem, node_index: dict, opts: RuleOptions,
                 classes: np.ndarray, surplus_kwh: np.ndarray):
        g = problem.grid
        self.forms, h = forms, g.n_blocks
        self.n = sum(f.n_assets for f in forms)
        if not forms:
            return
        dt = g.dt_h[None, :]
        self.node = np.concatenate([[node_index[f.node]] * f.n_assets for f in forms]).astype(int)
        self.pc_max, self.pd_max = self._shared(forms, problem)
        self.a = np.exp(-stack_blocks(forms, "self_discharge_per_h", dt.shape[-1]) * dt)
        self.kc = stack_blocks(forms, "eta_charge", h) * dt
        self.kd = dt / stack_blocks(forms, "eta_discharge", h)
        self.e_min, self.e_max = stack(forms, "e_min_kwh"), stack(forms, "e_max_kwh")
        self.e = stack(forms, "e_init_kwh")
        self.lo, self.hi = envelopes(self.a, self.kc * self.pc_max, self.kd * self.pd_max,
                                     self.e_min, self.e_max, stack(forms, "e_target_kwh"))
        self.can_discharge = (self.pd_max > 0).any(axis=1)
        span = np.maximum(self.e_max - self.e_min, 0.0)
        self.e_reserve = self.e_min + opts.peak_reserve_soc_frac * span
        self.e_valley = self._valley_target(self.e_min + opts.valley_charge_soc_frac * span, classes,
                                            surplus_kwh if opts.leave_room_for_surplus else None)
        self.cheap = self._cheapest(problem.price_import_cny_per_kwh) if opts.cheapest_hours \
            else np.zeros((self.n, h), dtype=bool)

    @staticmethod
    def _shared(forms: list[StorageLike], problem: DispatchProblem) -> tuple[np.ndarray, np.ndarray]:
        """Charge and discharge bounds, each fleet's split pro rata within its
        :class:`~vpp.flex.SharedLimit` groups (the rules plan assets one by one)."""
        limits = {f.fleet: f for f in problem.forms if isinstance(f, SharedLimit)}
        pc, pd = [], []
        for f in forms:
            lim = limits.get(f.fleet)
            pc.append(f.p_charge_max_kw if lim is None else lim.fit(f.p_charge_max_kw, "charge"))
            pd.append(f.p_discharge_max_kw if lim is None else lim.fit(f.p_discharge_max_kw, "discharge"))
        return np.concatenate(pc, axis=0), np.concatenate(pd, axis=0)

    def _valley_target(self, e_soc: np.ndarray, classes: np.ndarray, surplus_kwh: np.ndarray | None) -> np.ndarray:
        """Energy to charge to in a valley: the SOC target, but no more than the
        later peak blocks of the horizon can discharge, and (optionally) leaving
        room for the node's forecast surplus, shared pro rata to capacity. [kWh]"""
        out_kwh = np.where(classes[None, :] == PEAK, self.kd * self.pd_max, 0.0)
        later = np.cumsum(out_kwh[:, ::-1], axis=1)[:, ::-1] - out_kwh       # peak energy after block t
        target = np.minimum(e_soc, self.e_reserve + later)
        if surplus_kwh is not None:
            cap = np.where(self.can_discharge, (self.e_max - self.e_min).max(axis=1), 0.0)
            total = np.bincount(self.node, weights=cap, minlength=surplus_kwh.size)
            share = np.divide(cap, total[self.node], out=np.zeros_like(cap), where=total[self.node] > 0)
            target = np.minimum(target, self.e_max - (share * surplus_kwh[self.node])[:, None])
        return target

    def _cheapest(self, price: np.ndarray) -> np.ndarray:
        """Blocks in which a store that cannot discharge charges at full power: the
        cheapest (earliest among equals) whose energy covers its need."""
        need = np.maximum(self.lo[:, -1] - self.e, 0.0)[:, None]
        order = np.argsort(price, kind="stable")
        cap = (self.kc * self.pc_max)[:, order]
        before = np.cumsum(cap, axis=1) - cap
        chosen = np.zeros_like(cap, dtype=bool)
        chosen[:, order] = (before < need) & (cap > 0)
        return chosen & ~self.can_discharge[:, None]

    def levels(self, t: int, cls: int) -> dict[str, np.ndarray]:
        """Power levels of step *t* in tariff period *cls*, generator sign (``pd - pc``):
        the feasible range (``lo``, ``hi``), the rules' default (``base``), and how
        far each asset goes absorbing a surplus (``surplus``), charging by the
        tariff (``tariff``: valley or cheapest hours) and discharging at peak. [kW]"""
        drift = self.a[:, t] * self.e
        kc, kd = self.kc[:, t], self.kd[:, t]
        charge_max = np.clip((self.hi[:, t] - drift) / kc, 0.0, self.pc_max[:, t])
        discharge_max = np.clip((drift - self.lo[:, t]) / kd, 0.0, self.pd_max[:, t])
        must_charge = np.clip((self.lo[:, t] - drift) / kc, 0.0, self.pc_max[:, t])
        must_discharge = np.clip((drift - self.hi[:, t]) / kd, 0.0, self.pd_max[:, t])
        lo_p = np.where(must_discharge > 0, must_discharge, -charge_max)
        hi_p = np.where(must_charge > 0, -must_charge, discharge_max)
        lo_p = np.minimum(lo_p, hi_p)
        valley = cls == VALLEY
        to_valley_target = -np.clip((self.e_valley[:, t] - drift) / kc, 0.0, charge_max) if valley else 0.0
        tariff = np.where(self.can_discharge, to_valley_target,
                          np.where(self.cheap[:, t] | valley, -charge_max, 0.0))
        peak = np.where(self.can_discharge, np.clip((drift - self.e_reserve[:, t]) / kd, 0.0, discharge_max), 0.0)
        return {"lo": lo_p, "hi": hi_p, "base": np.zeros(self.n), "surplus": -charge_max, "tariff": tariff,
                "peak": peak,
                "tier": np.where(self.can_discharge, 2, 1)}

    def advance(self, t: int, p: np.ndarray) -> None:
        self.e = self.a[:, t] * self.e + self.kc[:, t] * np.maximum(-p, 0.0) - self.kd[:, t] * np.maximum(p, 0.0)


class _Buildings:
    """Stacked Thermal forms: the thermostat and pre-conditioning targets."""

    def __init__(self, forms: list[Thermal], problem: DispatchProblem, node_index: dict, opts: RuleOptions,
                 classes: np.ndarray):
        g = problem.grid
        self.forms = forms
        self.n = sum(f.n_assets for f in forms)
        if not forms:
            return
        s = max(f.n_states for f in forms)
        pad = lambda f, x, k: np.pad(np.asarray(x, float), [(0, 0)] * (np.ndim(x) - k) + [(0, s - f.n_states)] * k)  # noqa: E731
        self.a = np.concatenate([pad(f, f.a, 2) for f in forms])
        self.b = np.concatenate([pad(f, f.b_k_per_kw, 1) for f in forms])
        self.d = np.concatenate([pad(f, f.d_k, 1) for f in forms])
        self.x = np.concatenate([pad(f, f.temp_init_c, 1) for f in forms])
        self.p_max = stack(forms, "p_max_kw")
        self.node = np.concatenate([[node_index[f.node]] * f.n_assets for f in forms]).astype(int)
        t_min, t_max = stack(forms, "temp_min_c"), stack(forms, "temp_max_c")
        ends = np.cumsum(g.dt_h)
        ahead = ends[None, :] - ends[:, None]                     # [t, j]: hours from end of t to end of j
        window = (ahead >= 0) & (ahead <= opts.precondition_h + 1e-9)
        self.hi_soon = np.stack([t_max[:, window[t]].min(axis=1) for t in range(g.n_blocks)], axis=1)
        self.lo_soon = np.stack([t_min[:, window[t]].max(axis=1) for t in range(g.n_blocks)], axis=1)
        self.t_min, self.t_max = t_min, t_max
        starts = np.concatenate([[0.0], ends[:-1]])
        self.precool_ok = np.zeros(g.n_blocks, dtype=bool)
        for t in np.flatnonzero(classes == VALLEY):
            later = np.flatnonzero((classes != VALLEY) & (np.arange(g.n_blocks) > t))
            self.precool_ok[t] = later.size > 0 and starts[later[0]] - starts[t] <= opts.precool_lead_h + 1e-9

    def _hold(self, t: int, free0: np.ndarray, b0: np.ndarray) -> np.ndarray:
        """The thermostat's HVAC power in block *t* from the free-running state 0. [kW]"""
        near = np.where(b0 < 0, self.hi_soon[:, t], self.lo_soon[:, t])
        with np.errstate(divide="ignore", invalid="ignore"):
            hold = np.where(b0 != 0, (near - free0) / b0, 0.0)
        return np.clip(np.nan_to_num(hold), 0.0, self.p_max[:, t])

    def levels(self, t: int, cls: int) -> dict[str, np.ndarray]:
        """Like :meth:`_Storage.levels`, for HVAC power (generator sign, ``-p``). [kW]"""
        free = np.einsum("nij,nj->ni", self.a[:, t], self.x)[:, 0] + self.d[:, t, 0]
        b0, p_max = self.b[:, t, 0], self.p_max[:, t]
        far = np.where(b0 < 0, self.t_min[:, t], self.t_max[:, t])
        hold = self._hold(t, free, b0)
        with np.errstate(divide="ignore", invalid="ignore"):
            pre = np.where(b0 != 0, (far - free) / b0, 0.0)
        pre = np.clip(np.nan_to_num(pre), hold, np.minimum(p_max, hold + self._headroom(t, hold)))
        tariff = -pre if cls == VALLEY and self.precool_ok[t] else -hold
        return {"lo": -p_max, "hi": np.zeros(self.n), "base": -hold, "surplus": -pre, "tariff": tariff,
                "peak": -hold, "tier": np.ones(self.n, dtype=int)}

    def _headroom(self, t: int, hold: np.ndarray) -> np.ndarray:
        """Most HVAC power beyond *hold* in block *t* that keeps the band later on. [kW]

        From the state after *hold*, the building follows the thermostat rule
        to the horizon's end; power ``q`` added now moves state 0 at the end of
        block ``s`` by at most ``q R[s]`` with ``R = A[s] ... A[t+1] b[t]`` (the
        thermostat may take some of it back).  Pre-heating must not push that
        path above ``T_max`` (nor pre-cooling below ``T_min``) where the HVAC
        could not undo it: a heating-only building that gains heat by itself
        at noon is not pre-heated into overheating.
        """
        x = np.einsum("nij,nj->ni", self.a[:, t], self.x) + self.d[:, t] + self.b[:, t] * hold[:, None]
        r = self.b[:, t].copy()
        room = np.full(self.n, np.inf)
        for s in range(t + 1, self.a.shape[1]):
            x = np.einsum("nij,nj->ni", self.a[:, s], x) + self.d[:, s]
            x = x + self.b[:, s] * self._hold(s, x[:, 0], self.b[:, s, 0])[:, None]
            r = np.einsum("nij,nj->ni", self.a[:, s], r)
            with np.errstate(divide="ignore", invalid="ignore"):
                up = np.where(r[:, 0] > 1e-12, (self.t_max[:, s] - x[:, 0]) / r[:, 0], np.inf)
                down = np.where(r[:, 0] < -1e-12, (x[:, 0] - self.t_min[:, s]) / -r[:, 0], np.inf)
            room = np.minimum(room, np.minimum(up, down))
        return np.maximum(room, 0.0)

    def advance(self, t: int, p: np.ndarray) -> None:
        self.x = np.einsum("nij,nj->ni", self.a[:, t], self.x) + self.b[:, t] * (-p)[:, None] + self.d[:, t]


def dr_classes(classes: np.ndarray, problem: DispatchProblem) -> np.ndarray:
    """Tariff classes with announced demand-response calls laid over them (rule 6):
    a block a peak-shaving call covers is a peak block, one a valley-filling call
    covers a valley block."""
    g, out = problem.grid, classes.copy()
    for kind, cls in (("peak_shaving", PEAK), ("valley_filling", VALLEY)):
        out[block_terms(problem.dr_events, kind, g.k0, g.starts, g.steps_per_block).share > 0] = cls
    return out


@register
class RuleBased(Strategy):
    """Storage and flexible loads follow local surplus and the tariff by fixed rules (module docstring)."""

    name = "rule_based"
    Options = RuleOptions

    def __init__(self, options: RuleOptions | None = None):
        super().__init__(options)
        self._memory: dict[int, float] = {}       # import price of past steps, by step
        self._last_k0 = -1

    def _classes(self, problem: DispatchProblem) -> np.ndarray:
        g, o = problem.grid, self.options
        if g.k0 <= self._last_k0:                  # a new run: forget the old one's prices
            self._memory = {}
        self._last_k0 = g.k0
        keep = int(round(o.price_memory_h / g.step_h))
        self._memory = {k: p for k, p in self._memory.items() if k >= g.k0 - keep}
        classes = classify_prices(problem.price_import_cny_per_kwh, np.fromiter(self._memory.values(), float),
                                  o.valley_band_frac, o.peak_band_frac, o.min_spread_frac)
        for t in range(g.n_fine):
            self._memory[g.k0 + t] = float(problem.price_import_cny_per_kwh[t])
        return classes

    def _tariff_limits(self, problem: DispatchProblem, surplus0: np.ndarray) -> tuple[np.ndarray, float]:
        """Import limits for tariff charging, per node and for the VPP: the
        connection limits and, with ``valley_below_peak``, the billed peak
        (the highest of the peak so far and the horizon's forecast inflexible
        import), per account of the settlement. [kW]"""
        node_limit = np.array([n.import_limit_kw for n in problem.nodes], dtype=float)
        vpp_limit = float(problem.vpp_import_limit_kw)
        if not self.options.valley_below_peak:
            return node_limit, vpp_limit
        so_far = np.asarray(problem.peak_import_so_far_kw, dtype=float)
        if problem.settlement == "vpp":
            cap = max(float(so_far.max(initial=0.0)), float((-surplus0.sum(axis=0)).max()))
            return node_limit, min(vpp_limit, cap)
        cap = np.maximum(np.broadcast_to(so_far, node_limit.shape), (-surplus0).max(axis=1))
        return np.minimum(node_limit, cap), vpp_limit

    def decide(self, problem: DispatchProblem) -> Decision:
        t_start = time.perf_counter()
        g = problem.grid
        node_index = {n.name: i for i, n in enumerate(problem.nodes)}
        n_nodes = len(problem.nodes)
        classes = dr_classes(self._classes(problem), problem)
        surplus0 = np.zeros((n_nodes, g.n_blocks))
        for f in problem.forms:
            if isinstance(f, CurtailableSource):
                surplus0[node_index[f.node]] += f.p_max_kw.sum(axis=0)
            elif isinstance(f, FixedProfile):
                surplus0[node_index[f.node]] += f.p_kw
        import_limit, vpp_limit = self._tariff_limits(problem, surplus0)
        surplus_kwh = (np.maximum(surplus0, 0.0) * g.dt_h).sum(axis=1)
        parts = [_Storage([f for f in problem.forms if isinstance(f, StorageLike)], problem, node_index,
                          self.options, classes, surplus_kwh),
                 _Buildings([f for f in problem.forms if isinstance(f, Thermal)], problem, node_index,
                            self.options, classes)]
        parts = [p for p in parts if p.n]
        node = np.concatenate([p.node for p in parts]) if parts else np.zeros(0, dtype=int)
        plan = np.zeros((node.size, g.n_fine))
        used = {"rule_surplus_absorbed_kwh": 0.0, "rule_tariff_charged_kwh": 0.0, "rule_peak_discharged_kwh": 0.0,
                "rule_dr_discharged_kwh": 0.0}
        dr_cap = block_terms(problem.dr_events, "peak_shaving", g.k0, g.starts, g.steps_per_block).cap_kw
        for t in range(g.n_fine if parts else 0):
            lv = [part.levels(t, int(classes[t])) for part in parts]
            lev = {k: np.concatenate([x[k] for x in lv]) for k in lv[0]}
            p = self._allocate(lev, node, surplus0[:, t], import_limit, vpp_limit, int(classes[t]), g.dt_h[t], used,
                               float(dr_cap[t]))
            plan[:, t] = p
            offset = 0
            for part in parts:
                part.advance(t, p[offset:offset + part.n])
                offset += part.n
        setpoints, offset = {}, 0
        for part in parts:
            for f in part.forms:
                setpoints[f.fleet] = plan[offset:offset + f.n_assets].copy()
                offset += f.n_assets
        elapsed = time.perf_counter() - t_start
        used["rule_valley_steps"] = float((classes[:g.n_fine] == VALLEY).sum())
        used["rule_peak_steps"] = float((classes[:g.n_fine] == PEAK).sum())
        return Decision(setpoints=setpoints, status="rule", solve_time_s=elapsed, metrics=used)

    @staticmethod
    def _allocate(lev: dict, node: np.ndarray, surplus0: np.ndarray, import_limit: np.ndarray, vpp_limit: float,
                  cls: int, dt_h: float, used: dict, dr_kw: float = 0.0) -> np.ndarray:
        """Rules 3-6 at one step (*dr_kw*: a peak-shaving call's capacity); returns
        the power of every flexible asset. [kW]"""
        lo, hi = lev["lo"], lev["hi"]
        clip = lambda x: np.clip(x, lo, hi)  # noqa: E731
        p = clip(lev["base"])
        n_nodes = surplus0.size
        net = lambda: surplus0 + np.bincount(node, weights=p, minlength=n_nodes)  # noqa: E731
        for key in ("surplus", "tariff"):
            for tier in (1, 2):
                room = np.where(lev["tier"] == tier, np.maximum(p - clip(lev[key]), 0.0), 0.0)
                amount = np.maximum(net(), 0.0) if key == "surplus" else _import_room(net(), import_limit, vpp_limit)
                take = _share(room, node, amount)
                p = p - take
                used["rule_surplus_absorbed_kwh" if key == "surplus" else "rule_tariff_charged_kwh"] += \
                    float(take.sum()) * dt_h
        if cls == PEAK:
            room = np.where(lev["tier"] == 2, np.maximum(clip(lev["peak"]) - p, 0.0), 0.0)
            give = _share(room, node, np.maximum(-net(), 0.0))
            p = p + give
            used["rule_peak_discharged_kwh"] += float(give.sum()) * dt_h
            if dr_kw > give.sum():                  # rule 6: a call asks for more than covering the import
                room = room - give
                by_node = np.bincount(node, weights=room, minlength=n_nodes)
                more = _share(room, node, by_node * min(1.0, (dr_kw - give.sum()) / max(by_node.sum(), 1e-12)))
                p = p + more
                used["rule_dr_discharged_kwh"] += float(more.sum()) * dt_h
        return p
