"""Canonical flexibility forms: the contract between assets and the optimizer.

Fleets describe what they can do over a dispatch horizon in a few linear
forms; strategies build one indexed block per form, vectorised over assets.
Every array is per asset (first axis, length N) and per horizon *block*
(second axis, length H); see :class:`HorizonGrid` for the blocks.

Sign: generator convention.  Power injected into the VPP bus is positive
(generation, discharge), consumption is negative.  Bounds below are
magnitudes (>= 0) of the named direction.

Forms
-----
CurtailableSource
    ``0 <= p[i,t] <= p_max_kw[i,t]`` (PV, wind).
StorageLike
    ``e[i,t+1] = exp(-sigma_i dt_t) e[i,t] + eta_c dt_t pc[i,t] - dt_t / eta_d pd[i,t]``
    with ``p_charge_min <= pc <= p_charge_max``, ``0 <= pd <= p_discharge_max``,
    ``e_min <= e <= e_max`` and a soft terminal target (batteries, EV sessions,
    deferrable energy).
Thermal
    ``x[i,t+1] = A[i,t] x[i,t] + b[i,t] p[i,t] + d[i,t]`` (one or more thermal
    states) with ``0 <= p <= p_max`` electric power and soft comfort bounds on
    the first state (buildings).
FixedProfile
    An uncontrollable net power forecast at a node (base loads).
SharedLimit
    ``sum_{i in g} pc[i,t] <= L^c[g,t]`` and ``sum_{i in g} pd[i,t] <= L^d[g,t]``
    over groups ``g`` of one fleet's storage-like assets: a connection that
    several assets share (an EV station's supply).  Hard: a breaker, no slack.
    A limit over several fleets at a node is the node's import or export
    limit (:class:`vpp.dispatch.NodeLimits`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "HorizonGrid",
    "CurtailableSource",
    "StorageLike",
    "Thermal",
    "FixedProfile",
    "SharedLimit",
    "Form",
]


@dataclass(frozen=True, eq=False)
class HorizonGrid:
    """The dispatch horizon as blocks of whole simulation steps.

    The first blocks are one simulation step long (the *fine* part, covering
    at least one dispatch interval, so setpoints come at full resolution); the
    rest are coarser, which keeps a day-ahead horizon cheap to solve.

    Parameters
    ----------
    k0 : int
        Simulation step at which the horizon starts.
    steps_per_block : ndarray of int, shape (H,)
        Simulation steps in each block.
    step_h : float
        Simulation step length. [h]
    """

    k0: int
    steps_per_block: np.ndarray
    step_h: float
    starts: np.ndarray = field(init=False)

    def __post_init__(self):
        spb = np.asarray(self.steps_per_block, dtype=np.int64)
        if spb.ndim != 1 or spb.size == 0 or (spb < 1).any():
            raise ValueError("steps_per_block must be a non-empty array of positive integers")
        object.__setattr__(self, "steps_per_block", spb)
        object.__setattr__(self, "starts", np.concatenate([[0], np.cumsum(spb)[:-1]]))

    @classmethod
    def build(cls, k0: int, step_h: float, fine_steps: int, total_steps: int, coarse_steps: int):
        """*fine_steps* one-step blocks, then blocks of *coarse_steps* up to *total_steps*."""
        fine = min(fine_steps, total_steps)
        rest = total_steps - fine
        coarse = [coarse_steps] * (rest // coarse_steps)
        if rest % coarse_steps:
            coarse.append(rest % coarse_steps)
        return cls(k0, np.array([1] * fine + coarse), step_h)

    @property
    def n_blocks(self) -> int:
        return int(self.steps_per_block.size)

    @property
    def n_steps(self) -> int:
        """Simulation steps covered by the horizon."""
        return int(self.steps_per_block.sum())

    @property
    def dt_h(self) -> np.ndarray:
        """Block lengths. [h]"""
        return self.steps_per_block * self.step_h

    @property
    def n_fine(self) -> int:
        """Number of leading one-step blocks."""
        coarse = np.flatnonzero(self.steps_per_block != 1)
        return int(coarse[0]) if coarse.size else self.n_blocks

    def mean(self, x: np.ndarray) -> np.ndarray:
        """Block means of per-step values *x* (last axis has ``n_steps``)."""
        x = np.asarray(x, dtype=float)
        return np.add.reduceat(x, self.starts, axis=-1) / self.steps_per_block

    def last(self, x: np.ndarray) -> np.ndarray:
        """Value of the last step in each block of per-step *x*."""
        return np.asarray(x)[..., self.starts + self.steps_per_block - 1]


def _check(form, n_blocks_arrays: dict, per_asset: dict):
    shapes = {k: np.shape(v) for k, v in n_blocks_arrays.items()}
    n = {s[0] for s in shapes.values()} | {np.shape(v)[0] for v in per_asset.values()}
    h = {s[1] for s in shapes.values() if len(s) == 2}
    if len(n) > 1 or len(h) > 1 or any(len(s) != 2 for s in shapes.values()):
        raise ValueError(f"{type(form).__name__} of fleet {form.fleet!r}: inconsistent shapes {shapes}")


@dataclass(frozen=True, eq=False)
class CurtailableSource:
    """A source that may produce anything between zero and its available power.

    Parameters
    ----------
    fleet, node : str
        Owning fleet and grid node.
    p_max_kw : ndarray, shape (N, H)
        Forecast available power, mean over each block (>= 0). [kW]
    """

    fleet: str
    node: str
    p_max_kw: np.ndarray

    def __post_init__(self):
        _check(self, {"p_max_kw": self.p_max_kw}, {})

    @property
    def n_assets(self) -> int:
        return int(self.p_max_kw.shape[0])


@dataclass(frozen=True, eq=False)
class StorageLike:
    """Energy stored with power and energy bounds (battery, EV session, deferrable energy).

    Parameters
    ----------
    p_charge_max_kw, p_discharge_max_kw : ndarray, shape (N, H)
        Power limits per block (>= 0; zero where the asset is unavailable). [kW]
    e_min_kwh, e_max_kwh : ndarray, shape (N, H)
        Energy bounds at the *end* of each block. [kWh]
    e_init_kwh : ndarray, shape (N,)
        Energy at the start of the horizon. [kWh]
    e_target_kwh : ndarray, shape (N,)
        Soft minimum energy at the end of the horizon (EV energy by departure,
        battery terminal level); a shortfall costs ``shortfall_cost_cny_per_kwh``. [kWh]
    eta_charge, eta_discharge : ndarray, shape (N,) or (N, H)
        Charge and discharge efficiencies (0, 1], constant or per block (e.g. a
        data centre's deferrable IT work seen through a weather-dependent PUE). [-]
    self_discharge_per_h : ndarray, shape (N,) or (N, H)
        Fractional energy loss rate, constant or per block (zero after the end
        of the run, so a terminal target binds at the run's end). [1/h]
    shortfall_cost_cny_per_kwh : ndarray, shape (N,)
        Penalty on energy below the target. [CNY/kWh]
    throughput_cost_cny_per_kwh : ndarray, shape (N,)
        Cost per kWh charged or discharged (degradation). [CNY/kWh]
    p_charge_min_kw : ndarray, shape (N, H), optional
        Charge power the asset draws at least in each block whatever it is
        asked (an EV charger's deadline override for a car out of reach;
        ``<= p_charge_max_kw``; default zero). [kW]
    """

    fleet: str
    node: str
    p_charge_max_kw: np.ndarray
    p_discharge_max_kw: np.ndarray
    e_min_kwh: np.ndarray
    e_max_kwh: np.ndarray
    e_init_kwh: np.ndarray
    e_target_kwh: np.ndarray
    eta_charge: np.ndarray
    eta_discharge: np.ndarray
    self_discharge_per_h: np.ndarray
    shortfall_cost_cny_per_kwh: np.ndarray
    throughput_cost_cny_per_kwh: np.ndarray
    p_charge_min_kw: np.ndarray | None = None

    def __post_init__(self):
        if self.p_charge_min_kw is None:
            object.__setattr__(self, "p_charge_min_kw", np.zeros(np.shape(self.p_charge_max_kw)))
        _check(
            self,
            {k: getattr(self, k) for k in ("p_charge_max_kw", "p_discharge_max_kw", "e_min_kwh", "e_max_kwh",
                                           "p_charge_min_kw")},
            {k: getattr(self, k) for k in ("e_init_kwh", "e_target_kwh", "eta_charge", "eta_discharge")},
        )
        h = np.shape(self.p_charge_max_kw)[1]
        for k in ("eta_charge", "eta_discharge", "self_discharge_per_h"):
            if np.ndim(getattr(self, k)) == 2 and np.shape(getattr(self, k))[1] != h:
                raise ValueError(f"StorageLike of fleet {self.fleet!r}: {k} must have shape (N,) or (N, {h})")

    @property
    def n_assets(self) -> int:
        return int(self.e_init_kwh.shape[0])

    @classmethod
    def stack(cls, *forms: StorageLike) -> StorageLike:
        """One form with the rows of *forms* in order (same fleet, node and
        blocks); an efficiency or self-discharge rate given per asset in one
        form and per block in another is broadcast per block."""
        if len(forms) == 1:
            return forms[0]
        h = np.shape(forms[0].p_charge_max_kw)[1]

        def rows(name):
            xs = [np.asarray(getattr(f, name), dtype=float) for f in forms]
            if len({x.ndim for x in xs}) > 1:
                xs = [np.broadcast_to(x.reshape(len(x), -1), (len(x), h)) for x in xs]
            return np.concatenate(xs, axis=0)

        arrays = {k: rows(k) for k in cls.__dataclass_fields__ if k not in ("fleet", "node")}
        return cls(fleet=forms[0].fleet, node=forms[0].node, **arrays)


@dataclass(frozen=True, eq=False)
class Thermal:
    """A linear thermal state-space with electric heating or cooling.

    ``x[i,t+1] = A[i,t] x[i,t] + b[i,t] p[i,t] + d[i,t]`` with ``S`` thermal
    states per asset (``S = 1``: one lumped temperature; ``S = 2``: indoor air
    and building mass) and ``p`` the electric power drawn (>= 0).  State 0 is
    the temperature the comfort band applies to.  The coefficients come from
    the asset's exact discretisation over each block (with its forecast
    weather and COP), so the optimizer needs no physics.

    First-order arrays may be given without the state axes: ``a`` (N, H),
    ``b_k_per_kw`` and ``d_k`` (N, H), ``temp_init_c`` (N,); they are stored
    with the state axes.

    Parameters
    ----------
    a : ndarray, shape (N, H, S, S)
        State transition over the block. [-]
    b_k_per_kw : ndarray, shape (N, H, S)
        Temperature change per kW of electric power held over the block
        (negative when cooling). [K/kW]
    d_k : ndarray, shape (N, H, S)
        Temperature drift from weather and gains over the block. [degC]
    temp_init_c : ndarray, shape (N, S)
        States at the start of the horizon. [degC]
    p_max_kw : ndarray, shape (N, H)
        Electric power limit (>= 0). [kW]
    temp_min_c, temp_max_c : ndarray, shape (N, H)
        Comfort band of state 0 at the end of each block (soft). [degC]
    discomfort_cost_cny_per_kh : ndarray, shape (N,)
        Penalty per kelvin-hour outside the band. [CNY/(K h)]
    """

    fleet: str
    node: str
    a: np.ndarray
    b_k_per_kw: np.ndarray
    d_k: np.ndarray
    temp_init_c: np.ndarray
    p_max_kw: np.ndarray
    temp_min_c: np.ndarray
    temp_max_c: np.ndarray
    discomfort_cost_cny_per_kh: np.ndarray

    def __post_init__(self):
        _check(
            self,
            {k: getattr(self, k) for k in ("p_max_kw", "temp_min_c", "temp_max_c")},
            {"temp_init_c": self.temp_init_c, "discomfort_cost_cny_per_kh": self.discomfort_cost_cny_per_kh},
        )
        n, h = np.shape(self.p_max_kw)
        a = np.asarray(self.a, dtype=float)
        if a.ndim == 2:                                   # first order, without state axes
            object.__setattr__(self, "a", a[:, :, None, None])
            object.__setattr__(self, "b_k_per_kw", np.asarray(self.b_k_per_kw, float)[:, :, None])
            object.__setattr__(self, "d_k", np.asarray(self.d_k, float)[:, :, None])
            object.__setattr__(self, "temp_init_c", np.asarray(self.temp_init_c, float)[:, None])
        s = self.n_states
        want = {"a": (n, h, s, s), "b_k_per_kw": (n, h, s), "d_k": (n, h, s), "temp_init_c": (n, s)}
        for k, shape in want.items():
            if np.shape(getattr(self, k)) != shape:
                raise ValueError(f"Thermal of fleet {self.fleet!r}: {k} has shape {np.shape(getattr(self, k))}, "
                                 f"expected {shape}")

    @property
    def n_assets(self) -> int:
        return int(self.temp_init_c.shape[0])

    @property
    def n_states(self) -> int:
        return int(np.shape(self.a)[-1])


@dataclass(frozen=True, eq=False)
class FixedProfile:
    """Uncontrollable net power at a node, summed over the fleet.

    Parameters
    ----------
    p_kw : ndarray, shape (H,)
        Forecast mean power per block, generator sign (loads negative). [kW]
    """

    fleet: str
    node: str
    p_kw: np.ndarray


@dataclass(frozen=True, eq=False)
class SharedLimit:
    """Groups of one fleet's storage-like assets whose summed power has a limit.

    The assets are the rows of the fleet's :class:`StorageLike` form.  Per
    group ``g`` and block ``t``, the summed charging power ``sum_{i in g} pc[i,t] <= charge_limit_kw[g,t]`` and the
    summed discharging power ``sum_{i in g} pd[i,t] <= discharge_limit_kw[g,t]``
    (block means; ``inf``: no limit).  The limit is hard: the physics never
    exceeds it (a breaker), so neither may a plan.  The rows' own bounds stay
    each asset's own, so the optimizer can give the room to the assets that
    need it; a fleet keeps its forms' lower energy bounds jointly reachable
    within the limit (e.g. each asset's share of it).

    Parameters
    ----------
    fleet, node : str
        The fleet whose StorageLike rows are grouped, and its node.
    group : ndarray of int, shape (N,)
        Group of each row, ``0..G-1``; ``-1``: in no group.
    charge_limit_kw, discharge_limit_kw : ndarray, shape (G, H)
        Limits on the group's summed charging and discharging power (>= 0). [kW]
    """

    fleet: str
    node: str
    group: np.ndarray
    charge_limit_kw: np.ndarray
    discharge_limit_kw: np.ndarray

    def __post_init__(self):
        group = np.asarray(self.group, dtype=np.int64)
        object.__setattr__(self, "group", group)
        g = int(group.max(initial=-1)) + 1
        for k in ("charge_limit_kw", "discharge_limit_kw"):
            x = np.asarray(getattr(self, k), dtype=float)
            if x.ndim != 2 or x.shape[0] != g:
                raise ValueError(f"SharedLimit of fleet {self.fleet!r}: {k} has shape {x.shape}, expected ({g}, H)")
            if np.isnan(x).any() or (x < 0).any():
                raise ValueError(f"SharedLimit of fleet {self.fleet!r}: {k} must be >= 0")
        if group.ndim != 1 or (group < -1).any():
            raise ValueError(f"SharedLimit of fleet {self.fleet!r}: group must be a 1-d array of ints >= -1")

    @property
    def n_assets(self) -> int:
        return int(self.group.shape[0])

    @property
    def n_groups(self) -> int:
        return int(self.charge_limit_kw.shape[0])

    def fit(self, p_max_kw: np.ndarray, side: str = "charge") -> np.ndarray:
        """Per-asset power bounds (N, H) scaled down pro rata within each group whose
        summed bound exceeds its limit, so that any powers within them keep the
        limit (a static split, for strategies that plan assets one by one).

        *side*: ``"charge"`` or ``"discharge"``, the limit to fit. [kW]
        """
        p = np.asarray(p_max_kw, dtype=float)
        limit = self.charge_limit_kw if side == "charge" else self.discharge_limit_kw
        total = self.group_sum(p)
        scale = np.minimum(1.0, np.divide(limit, total, out=np.ones_like(limit), where=total > 0))
        inside = self.group >= 0
        out = p.copy()
        out[inside] *= scale[self.group[inside]]
        return out

    def group_sum(self, x: np.ndarray) -> np.ndarray:
        """Each group's sum of its members' rows of *x* (N, ...), shape (G, ...)."""
        x = np.asarray(x, dtype=float)
        out = np.zeros((self.n_groups,) + x.shape[1:])
        inside = self.group >= 0
        np.add.at(out, self.group[inside], x[inside])
        return out


Form = CurtailableSource | StorageLike | Thermal | FixedProfile | SharedLimit
