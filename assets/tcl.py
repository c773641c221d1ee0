"""Aggregated thermostatically controlled loads: residential air conditioners as a generalised battery.

Each asset of the fleet is one *population* of ``units_per_population`` air
conditioners (ACs); the optimizer sees one storage-like virtual battery per
population, and the physics simulates every AC of it.

Unit model (Callaway, "Tapping the energy storage potential in electric loads
to deliver load following and regulation", Energy Convers. Manage. 50(5),
2009; Mathieu, Koch & Callaway, "State estimation and control of electric
loads to manage real-time energy imbalance", IEEE TPWRS 28(1), 2013): a
first-order RC room cooled by an on/off compressor under a hysteresis
thermostat,

.. math::

    C \\frac{d\\theta}{dt} = \\frac{\\theta_e - \\theta}{R} - m\\,\\eta P,
    \\qquad \\theta_e = \\theta_{out} + R\\,q,

with room temperature :math:`\\theta`, outdoor air :math:`\\theta_{out}`, a
constant internal + solar heat gain :math:`q`, compressor state
:math:`m \\in \\{0, 1\\}`, electric rating :math:`P` and COP :math:`\\eta`.
The thermostat keeps :math:`\\theta` in the deadband
:math:`[\\theta_r - \\delta/2, \\theta_r + \\delta/2]` around the setpoint.

Simulation.  Each simulation step is split into sub-steps of at most
``substep_s`` (1 min by default, refined so that no room moves more than half
its deadband in one sub-step).  The compressor state is decided at the start
of each sub-step (a sampled, digital thermostat or controller) and held over
it; between decisions the room follows the exact exponential solution of the
ODE with the step's mean outdoor temperature (zero-order hold).  A unit is
*forced on* if, left off, it would end the sub-step above its deadband, and
*forced off* if, left on, it would end below it; so no unit ever leaves its
deadband by control, only when the weather exceeds what it can do (an
undersized AC, or outdoor air below the deadband).  Everything is vectorised
over the (populations, units) array; Python loops only over sub-steps.

* **Uncontrolled** (setpoint NaN, the baseline): every unit runs its own
  thermostat (on at the top of the band, off at the bottom).
* **Controlled** (finite setpoint): the population's consumption follows the
  request by a *priority stack* (Hao, Sanandaji, Poolla & Vincent, IEEE TPWRS
  30(1), 2015, doi:10.1109/TPWRS.2014.2328865; cf. the state-bin control of
  Mathieu et al. 2013): after the forced units, the free units are
  switched on hottest first (by position in their own deadband) until the
  sub-step's target power is met, the last (*marginal*) unit for just the
  fraction of the sub-step that meets it exactly -- its switching instant is
  resolved exactly, so a feasible request is delivered to rounding error.
  Units already on rank ahead by ``stack_hysteresis_frac`` of the deadband,
  which limits short cycling.  Sub-step targets catch up within the step, so
  the step's mean power matches the request whenever the forced units allow.

Generalised battery (Hao et al. 2015).  With the unit's *baseline power*
:math:`p^0 = \\mathrm{clip}((\\theta_e - \\theta_r) / (\\eta R), 0, P)` (the
continuous power that holds :math:`\\theta_r`) and its stored "coolth"
:math:`e = C(\\theta_r - \\theta)/\\eta` [kWh electric], the unit obeys exactly

.. math::

    \\dot e = -a\\,e + (p - p^0), \\qquad a = 1/(RC), \\qquad |e| \\le c = \\frac{C\\delta}{2\\eta}

while :math:`p^0` is not clipped.  Hao's :math:`x = -e` gives his
:math:`\\dot x = -a x - u` with :math:`u = p - p^0`.  Summed over a population
(:func:`nominal_battery`): energy capacity :math:`E = \\sum c_i` (so
:math:`e \\in [-E, E]`), dissipation :math:`a = \\sum a_i c_i / \\sum c_i`,
power bounds :math:`P^- = \\sum p^0_i` (consume less, down to zero) and
:math:`P^+ = \\sum (P_i - p^0_i)` (consume more, up to every unit on).  These
are *outer* (necessary) bounds for a heterogeneous population.
:func:`sufficient_battery` derives *inner* bounds in the manner of Hao's
sufficient battery: if every unit keeps the same relative position in its
deadband (:math:`e_i = (c_i/E)\\,e`, what the priority stack maintains), unit
*i* must draw :math:`v_i = (c_i/E)(v + (a_i - a) e)`, which its rating allows
for every :math:`|e| \\le E_s` whenever

.. math::

    -\\min_i \\Big(\\frac{E p^0_i}{c_i} - |a_i - a| E_s\\Big) \\le v \\le
    \\min_i \\Big(\\frac{E (P_i - p^0_i)}{c_i} - |a_i - a| E_s\\Big),

with the energy window narrowed where the outdoor air keeps a unit from the
top of its band and :math:`E_s = (1 - \\mathrm{margin}) E`.  The fleet offers
the **sufficient** battery (the margin covers a population that is still
spread over its bands when control starts, where relative positions are not
yet equal); the nominal one is available for comparison
(:meth:`TCLFleet.battery`).

Mapping onto :class:`vpp.flex.StorageLike`: charging = consuming more than the
baseline, discharging = consuming less; ``self_discharge_per_h = a``; unit
efficiencies; the stored energy is :math:`e` (centred: zero at the setpoint
state, where the dissipation vanishes).  The baseline, computed from the
forecast outdoor temperature, is a :class:`~vpp.flex.FixedProfile`.  The
optimizer's setpoint (``pd - pc``, generator sign) is thus the requested
*deviation* from the baseline: positive consumes less.

Outages (``[outages.NAME]``, :mod:`vpp.outages`): a population that is down
has lost its supply (a feeder or residential-compound fault, not one AC
breaking): every compressor of it stays off, whatever the deadband, and the
rooms follow the off-state ODE towards the outdoor air; ``units_out_of_band``
counts the rooms that leave their band, and ``band_excess_kh`` their degrees
beyond it, integrated over time (the ``ac_band_excess_kh`` KPI).  When the supply returns, the hot
rooms force their compressors on.

Default unit parameters: the typical residential AC of Callaway (2009), as
reused by Mathieu et al. (2013) -- R = 2 degC/kW, C = 10 kWh/degC, thermal
capacity 14 kW at COP 2.5 (5.6 kW electric), deadband 0.5 degC -- with +-10 %
uniform heterogeneity (assumption); setpoints 24-27 degC
(assumption for Shanghai homes; 26 degC is the official recommendation for
public buildings) and a 1 kW internal + solar gain (assumption).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from vpp.assets import register
from vpp.assets.base import Fleet, FleetContext, FleetParams
from vpp.errors import FieldError
from vpp.flex import FixedProfile, HorizonGrid, StorageLike
from vpp.params import Uniform, ranged, sample

__all__ = [
    "TCLParams",
    "TCLUnits",
    "TCLFleet",
    "GeneralisedBattery",
    "unit_baseline_kw",
    "nominal_battery",
    "sufficient_battery",
    "substep",
    "Drift",
]


MIN_SUBSTEP_S = 1.0  # shortest switching sub-step a population may need [s]


def _uniform(low: float, high: float) -> Uniform:
    return Uniform(dist="uniform", low=low, high=high)


class TCLParams(FleetParams):
    """Parameters of a fleet of AC populations (per unit; distributions allowed)."""

    units_per_population: int = Field(1000, ge=1, le=1_000_000)   # ACs in each asset (population)
    r_k_per_kw: ranged(gt=0) = _uniform(1.8, 2.2)       # thermal resistance, Callaway 2009: 2 degC/kW, +-10 %
    c_kwh_per_k: ranged(gt=0) = _uniform(9.0, 11.0)     # thermal capacitance, Callaway 2009: 10 kWh/degC
    p_rated_kw: ranged(gt=0, le=100) = _uniform(5.04, 6.16)  # electric rating: 14 kW thermal / COP 2.5 (Callaway 2009)
    cop: ranged(gt=0, le=10) = 2.5                      # Callaway 2009
    setpoint_c: ranged(ge=10, le=35) = _uniform(24.0, 27.0)   # assumption (Shanghai homes)
    deadband_k: ranged(gt=0, le=5) = _uniform(0.45, 0.55)     # Callaway 2009: 0.5 degC
    gain_kw: ranged(ge=0) = 1.0                         # internal + mean solar heat gain, thermal (assumption)
    # Longest sub-step of the switching simulation [s]; refined automatically so
    # that no room moves more than half its deadband in one sub-step.
    substep_s: float = Field(60.0, ge=1, le=3600)
    # Priority of units already on, as a fraction of the deadband: 0.25 gives
    # about 2 compressor starts per unit and hour under control (0.1: ~4; the
    # free-running thermostats ~0.5); no compressor lockout is modelled.
    stack_hysteresis_frac: float = Field(0.25, ge=0, le=1)
    # Share of the energy capacity the offered battery keeps in reserve, for a
    # population still spread over its bands when control starts (20 % was not
    # enough at 36 degC; see HONESTY_TOL in tests/test_tcl.py).
    energy_margin_frac: float = Field(0.3, ge=0, lt=1)
    # Value of virtual-battery energy below zero (the setpoint state) at the
    # horizon's end, above the peak tariff so that a run does not end warmer
    # than the baseline for profit (assumption).
    terminal_shortfall_cost_cny_per_kwh: float = Field(1.5, ge=0)
    # Cost per kWh shifted: compressor wear from extra cycling (assumption).
    throughput_cost_cny_per_kwh: float = Field(0.01, ge=0)


@dataclass(frozen=True)
class TCLUnits:
    """Unit parameters, arrays of shape (populations N, units M).

    Parameters
    ----------
    r_k_per_kw : ndarray
        Thermal resistance R. [degC/kW]
    c_kwh_per_k : ndarray
        Thermal capacitance C. [kWh/degC]
    p_rated_kw : ndarray
        Electric power when on, P. [kW]
    cop : ndarray
        Coefficient of performance eta. [-]
    setpoint_c : ndarray
        Thermostat setpoint theta_r. [degC]
    deadband_k : ndarray
        Deadband width delta (the band is setpoint +- delta/2). [K]
    gain_kw : ndarray
        Internal + solar heat gain q. [kW thermal]
    """

    r_k_per_kw: np.ndarray
    c_kwh_per_k: np.ndarray
    p_rated_kw: np.ndarray
    cop: np.ndarray
    setpoint_c: np.ndarray
    deadband_k: np.ndarray
    gain_kw: np.ndarray

    @property
    def a_per_h(self) -> np.ndarray:
        """Dissipation rate 1/(RC). [1/h]"""
        return 1.0 / (self.r_k_per_kw * self.c_kwh_per_k)

    @property
    def k_per_kw(self) -> np.ndarray:
        """Steady temperature drop per electric kW, eta R. [K/kW]"""
        return self.cop * self.r_k_per_kw

    @property
    def half_capacity_kwh(self) -> np.ndarray:
        """Unit energy capacity c = C delta / (2 eta): e in [-c, c]. [kWh electric]"""
        return self.c_kwh_per_k * self.deadband_k / (2.0 * self.cop)

    @property
    def temp_lo_c(self) -> np.ndarray:
        return self.setpoint_c - self.deadband_k / 2.0

    @property
    def temp_hi_c(self) -> np.ndarray:
        return self.setpoint_c + self.deadband_k / 2.0

    def temp_eff_c(self, temp_out_c) -> np.ndarray:
        """Equilibrium room temperature with the compressor off, theta_out + R q. [degC]"""
        return np.asarray(temp_out_c)[..., None, None] + self.r_k_per_kw * self.gain_kw

    def energy_kwh(self, temp_c: np.ndarray) -> np.ndarray:
        """Stored coolth e = C (theta_r - theta) / eta per unit (not clipped). [kWh]"""
        return self.c_kwh_per_k * (self.setpoint_c - temp_c) / self.cop


def unit_baseline_kw(temp_eff_c, setpoint_c, k_per_kw, p_rated_kw):
    """Continuous electric power that holds a room at its setpoint.

    Parameters
    ----------
    temp_eff_c : array_like
        Room equilibrium temperature with the compressor off. [degC]
    setpoint_c : array_like
        Setpoint. [degC]
    k_per_kw : array_like
        eta R, steady temperature drop per electric kW. [K/kW]
    p_rated_kw : array_like
        Electric rating. [kW]

    Returns
    -------
    ndarray
        ``clip((temp_eff - setpoint) / k, 0, P)``, consumption (positive). [kW]
    """
    return _clip((np.asarray(temp_eff_c) - setpoint_c) / k_per_kw, 0.0, p_rated_kw)


BLOCK_CHUNK_UNITS = 2_000_000    # unit-blocks held at once by sufficient_battery (~16 MB per array)


def _clip(x, lo, hi):
    """``np.clip`` for ``lo <= hi`` without its wrapper's overhead (the same numbers)."""
    return np.minimum(np.maximum(x, lo), hi)


@dataclass(frozen=True)
class GeneralisedBattery:
    """Generalised battery per population: ``e' = -a e + v`` with
    ``-p_minus <= v <= p_plus`` and ``e_min <= e <= e_max``.

    ``v`` is the deviation of the population's consumption from its baseline
    (positive = consuming more = charging), ``e = -x`` of Hao et al. (2015).

    Parameters
    ----------
    dissipation_per_h : ndarray, shape (N,)
        a. [1/h]
    e_min_kwh, e_max_kwh : ndarray, shape (N, H)
        Energy bounds. [kWh]
    p_minus_kw, p_plus_kw : ndarray, shape (N, H)
        Largest decrease and increase of consumption (>= 0). [kW]
    """

    dissipation_per_h: np.ndarray
    e_min_kwh: np.ndarray
    e_max_kwh: np.ndarray
    p_minus_kw: np.ndarray
    p_plus_kw: np.ndarray


def _dissipation(units: TCLUnits) -> tuple[np.ndarray, np.ndarray]:
    c = units.half_capacity_kwh
    e = c.sum(axis=-1)
    return (units.a_per_h * c).sum(axis=-1) / e, e


def nominal_battery(units: TCLUnits, temp_out_c) -> GeneralisedBattery:
    """Hao et al. (2015) battery with summed unit parameters (outer bounds).

    Parameters
    ----------
    units : TCLUnits
        Shape (N, M).
    temp_out_c : array_like, shape (H,)
        Outdoor air temperature per block. [degC]
    """
    t = np.atleast_1d(np.asarray(temp_out_c, dtype=float))
    a, e = _dissipation(units)
    p0 = unit_baseline_kw(units.temp_eff_c(t), units.setpoint_c, units.k_per_kw, units.p_rated_kw)  # (H, N, M)
    p_minus = p0.sum(axis=-1).T
    p_plus = (units.p_rated_kw - p0).sum(axis=-1).T
    full = np.ones_like(p_minus)
    return GeneralisedBattery(a, -e[:, None] * full, e[:, None] * full, p_minus, p_plus)


def sufficient_battery(units: TCLUnits, temp_lo_c, temp_hi_c, energy_margin_frac: float) -> GeneralisedBattery:
    """Inner (sufficient) battery from the equal-position disaggregation (module docstring).

    Parameters
    ----------
    units : TCLUnits
        Shape (N, M).
    temp_lo_c, temp_hi_c : array_like, shape (H,)
        Lowest and highest outdoor temperature within each block (the bounds
        hold for any temperature between them). [degC]
    energy_margin_frac : float
        Share of the capacity kept in reserve. [-]
    """
    t_lo = np.atleast_1d(np.asarray(temp_lo_c, dtype=float))
    t_hi = np.atleast_1d(np.asarray(temp_hi_c, dtype=float))
    a, e_full = _dissipation(units)
    c = units.half_capacity_kwh
    e_s = (1.0 - energy_margin_frac) * e_full
    n, h = e_full.size, t_lo.size
    out = {k: np.zeros((n, h)) for k in ("p_minus", "p_plus", "e_min", "e_max")}
    scale = e_full[:, None] / c                                       # 1 / w_i
    drift = np.abs(units.a_per_h - a[:, None]) * e_s[:, None]         # |a_i - a| E_s
    half = units.deadband_k / 2.0
    chunk = max(1, BLOCK_CHUNK_UNITS // max(units.p_rated_kw.size, 1))
    for j0 in range(0, h, chunk):                                     # blocks x units at once, in chunks
        j = slice(j0, min(j0 + chunk, h))
        eff_lo = units.temp_eff_c(t_lo[j])                            # (blocks, N, M)
        eff_hi = units.temp_eff_c(t_hi[j])
        p0_lo = unit_baseline_kw(eff_lo, units.setpoint_c, units.k_per_kw, units.p_rated_kw)
        p0_hi = unit_baseline_kw(eff_hi, units.setpoint_c, units.k_per_kw, units.p_rated_kw)
        # a unit whose off-equilibrium lies below its band cannot absorb (it is forced off)
        can_absorb = eff_lo >= units.temp_lo_c
        down = p0_lo * scale - drift
        up = np.where(can_absorb, (units.p_rated_kw - p0_hi) * scale - drift, 0.0)
        out["p_minus"][:, j] = np.maximum(down.min(axis=-1), 0.0).T
        out["p_plus"][:, j] = np.maximum(up.min(axis=-1), 0.0).T
        # relative positions s = (theta_r - theta) / (delta/2) every unit can reach
        s_top = _clip((units.setpoint_c - np.minimum(units.temp_hi_c, eff_lo)) / half, -1.0, 1.0)
        s_bottom = _clip((units.setpoint_c - np.maximum(units.temp_lo_c,
                                                        eff_hi - units.k_per_kw * units.p_rated_kw)) / half,
                         -1.0, 1.0)
        out["e_min"][:, j] = (e_s * np.minimum(s_top.max(axis=-1), 0.0)).T
        out["e_max"][:, j] = (e_s * np.maximum(s_bottom.min(axis=-1), 0.0)).T
    return GeneralisedBattery(a, out["e_min"], out["e_max"], out["p_minus"], out["p_plus"])


@dataclass(frozen=True)
class Drift:
    """What every sub-step of one step needs, computed once per step: the exact
    decay over a sub-step and the room equilibria with the compressor off and on."""

    a_per_h: np.ndarray       # 1/(RC) [1/h]
    alpha: np.ndarray         # exp(-dt a) [-]
    eff_c: np.ndarray         # equilibrium, compressor off [degC]
    on_eq_c: np.ndarray       # equilibrium, compressor on [degC]
    off_pull_c: np.ndarray    # (1 - alpha) eff [degC]
    on_pull_c: np.ndarray     # (1 - alpha) on_eq [degC]
    temp_lo_c: np.ndarray
    temp_hi_c: np.ndarray

    @classmethod
    def of(cls, units: TCLUnits, temp_out_c: float, dt_h: float) -> Drift:
        a = units.a_per_h
        alpha = np.exp(-dt_h * a)
        eff = units.temp_eff_c(temp_out_c)
        on_eq = eff - units.k_per_kw * units.p_rated_kw
        return cls(a, alpha, eff, on_eq, (1.0 - alpha) * eff, (1.0 - alpha) * on_eq, units.temp_lo_c, units.temp_hi_c)


def substep(units: TCLUnits, temp_c, on, temp_out_c, dt_h, target_kw, hysteresis_frac, keep_band: bool = True,
            drift: Drift | None = None):
    """One sub-step of every unit: decide the compressors, then integrate exactly.

    Controlled populations switch whole units on by priority (hottest first,
    units already on ahead by *hysteresis_frac*) and one *marginal* unit for
    the fraction of the sub-step that makes the population draw exactly the
    target: it keeps its state for that fraction and switches at that instant
    (a unit that was on runs, then stops; one that was off starts at the end).
    Both legs are integrated exactly, and neither can leave the band, since
    the unit is free to stay on or off for the whole sub-step.

    Parameters
    ----------
    units : TCLUnits
        Shape (N, M).
    temp_c : ndarray, shape (N, M)
        Room temperatures at the start of the sub-step. [degC]
    on : ndarray of bool, shape (N, M)
        Compressor states at the start of the sub-step.
    temp_out_c : float
        Outdoor air temperature. [degC]
    dt_h : float
        Sub-step length. [h]
    target_kw : ndarray, shape (N,)
        Power each population should draw over the sub-step (consumption,
        >= 0); NaN: the units run their own thermostats. [kW]
    hysteresis_frac : float
        Priority of units already on, as a fraction of the deadband. [-]
    keep_band : bool or ndarray of bool, shape (N,)
        Start every unit that would otherwise warm beyond its deadband, whatever
        the target (the thermostats' override); ``False`` when a breaker holds
        the population to its target, or its supply is out (per population).
    drift : Drift, optional
        ``Drift.of(units, temp_out_c, dt_h)``, when the caller steps several
        sub-steps at one outdoor temperature.

    Returns
    -------
    temp_c, on : ndarray, shape (N, M)
        Temperatures and compressor states at the end of the sub-step.
    p_kw : ndarray, shape (N,)
        Mean power drawn by each population over the sub-step (positive). [kW]
    """
    d = drift if drift is not None else Drift.of(units, temp_out_c, dt_h)
    decayed = d.alpha * temp_c
    end_off, end_on = decayed + d.off_pull_c, decayed + d.on_pull_c
    must_on = (end_off > d.temp_hi_c) & np.reshape(keep_band, (-1, 1))
    must_off = (end_on < d.temp_lo_c) & ~must_on
    new_on = must_on | (on & ~must_off)                                   # the thermostats
    controlled = np.isfinite(target_kw)
    if controlled.any():
        free = ~(must_on | must_off)
        position = (units.setpoint_c - temp_c) / units.deadband_k          # -1/2 hottest .. +1/2 coldest
        order = np.argsort(np.where(free, position - hysteresis_frac * on, np.inf), axis=-1, kind="stable")
        flat = (order + np.arange(0, on.size, on.shape[-1])[:, None]).ravel()   # flat indices, row by row
        p_sorted = np.where(free, units.p_rated_kw, 0.0).ravel()[flat].reshape(on.shape)
        cum = np.cumsum(p_sorted, axis=-1)
        need = np.where(controlled, target_kw, 0.0) - np.where(must_on, units.p_rated_kw, 0.0).sum(axis=-1)
        full = (cum <= need[:, None]) & (p_sorted > 0)
        stacked = np.empty(on.size, dtype=bool)
        stacked[flat] = full.ravel()
        new_on = np.where(controlled[:, None], must_on | stacked.reshape(on.shape), new_on)
        # the marginal unit: the first free unit in the stack not fully on (if any)
        n_full = full.sum(axis=-1)
        rows = np.flatnonzero(controlled & (n_full < free.sum(axis=-1)))
        j = n_full[rows]
        p_j = p_sorted[rows, j]
        below = np.where(j > 0, cum[rows, np.maximum(j - 1, 0)], 0.0)     # power of the full units
        frac = (need[rows] - below) / p_j
        partial = (frac > 0) & (frac < 1)
        rows, cols, frac = rows[partial], order[rows[partial], j[partial]], frac[partial]
    else:
        rows = cols = np.empty(0, dtype=int)
        frac = np.empty(0)
    temp_new = np.where(new_on, end_on, end_off)
    power = np.where(new_on, units.p_rated_kw, 0.0).sum(axis=-1)
    if rows.size:
        idx = (rows, cols)
        a = d.a_per_h[idx] * dt_h
        a_on, a_off = np.exp(-frac * a), np.exp(-(1.0 - frac) * a)
        t0, hot, cold = temp_c[idx], d.eff_c[idx], d.on_eq_c[idx]
        was_on = on[idx]
        first = np.where(was_on, a_on * t0 + (1 - a_on) * cold, a_off * t0 + (1 - a_off) * hot)
        temp_new[idx] = np.where(was_on, a_off * first + (1 - a_off) * hot, a_on * first + (1 - a_on) * cold)
        new_on[idx] = ~was_on
        power[rows] += frac * units.p_rated_kw[idx]
    return temp_new, new_on, power


@register
class TCLFleet(Fleet):
    """Populations of residential air conditioners, each offered as one virtual battery.

    Each asset is one population; its power is the population's mean
    consumption over the step (generator sign, so negative).  The setpoint is
    the requested deviation from the population's baseline consumption,
    generator sign (positive = consume less); NaN runs the thermostats
    (the uncontrolled baseline), +-inf asks for the least / most consumption
    the deadbands allow.
    """

    type_name = "tcl"
    Params = TCLParams
    role = "load"
    state_columns = ("p_baseline_kw", "temp_mean_c", "e_kwh", "soc_frac", "units_on", "switch_ons",
                     "units_out_of_band", "band_excess_kh")

    def __init__(self, ctx: FleetContext, params: TCLParams):
        super().__init__(ctx, params)
        n, m, p = self.n_assets, params.units_per_population, params

        def draw(spec):
            return sample(spec, self.rng, n * m).reshape(n, m)

        self.units = TCLUnits(r_k_per_kw=draw(p.r_k_per_kw), c_kwh_per_k=draw(p.c_kwh_per_k),
                              p_rated_kw=draw(p.p_rated_kw), cop=draw(p.cop), setpoint_c=draw(p.setpoint_c),
                              deadband_k=draw(p.deadband_k), gain_kw=draw(p.gain_kw))
        u = self.units
        self.dissipation_per_h, self.e_full_kwh = _dissipation(u)
        self._p_total_kw = u.p_rated_kw.sum(axis=-1)
        self.n_sub = self._substeps(p.substep_s)
        if self.dt_h * 3600.0 / self.n_sub < MIN_SUBSTEP_S:
            raise FieldError(("deadband_k",), f"too narrow for the rooms' thermal dynamics: switching would need "
                             f"sub-steps of {self.dt_h * 3600.0 / self.n_sub:.2g} s (at least {MIN_SUBSTEP_S:g} s); "
                             "widen the deadband or raise c_kwh_per_k")
        # Initial state: the stationary distribution of free-running thermostats
        # (uniform over the band; on with the probability of the duty cycle).
        t0 = float(self.exo.temp_air_c[0])
        duty = unit_baseline_kw(u.temp_eff_c(t0), u.setpoint_c, u.k_per_kw, u.p_rated_kw) / u.p_rated_kw
        self.temp_c = u.temp_lo_c + self.rng.random((n, m)) * u.deadband_k
        self.on = self.rng.random((n, m)) < duty
        self.e_init_kwh = self._energy().sum()
        self._last = {"p_baseline_kw": 0.0, "units_on": float(self.on.sum()), "switch_ons": 0.0,
                      "band_excess_kh": 0.0}
        self._deviation_kw = np.zeros(n)
        self._down = np.zeros(n, dtype=bool)            # populations whose supply is out (vpp.outages)

    def set_outage(self, down: np.ndarray) -> None:
        """A population that is down has its supply cut (a feeder or compound fault): every
        AC of it stays off and the rooms warm towards the outdoor air; its baseline and the
        battery it offers are zero."""
        self._down = np.asarray(down, dtype=bool).copy()

    def _substeps(self, substep_s: float) -> int:
        """Sub-steps per step: at most *substep_s* long, and short enough that no
        room moves more than half its deadband in one (so no unit can be forced
        both on and off) at the run's hottest and coldest outdoor temperature."""
        u, step_s = self.units, self.dt_h * 3600.0
        t = self.exo.temp_air_c
        eff_hi, eff_lo = u.temp_eff_c(np.max(t)), u.temp_eff_c(np.min(t))
        drop = u.k_per_kw * u.p_rated_kw
        swing = np.max([np.abs(eff_hi - u.temp_lo_c), np.abs(eff_lo - u.temp_hi_c),
                        np.abs(u.temp_hi_c - (eff_lo - drop)), np.abs(u.temp_lo_c - (eff_hi - drop))], axis=0)
        # |d theta| <= (1 - alpha) swing <= dt a swing < delta / 2
        dt_max_h = float(np.min(u.deadband_k / 2.0 / (u.a_per_h * swing)))
        return max(int(np.ceil(step_s / substep_s)), int(np.floor(self.dt_h / dt_max_h)) + 1)

    # -- physics ---------------------------------------------------------
    def baseline_kw(self, temp_out_c) -> np.ndarray:
        """Baseline consumption of each population at outdoor *temp_out_c* (positive),
        shape (N,), or (H, N) for temperatures of shape (H,). [kW]"""
        u = self.units
        return unit_baseline_kw(u.temp_eff_c(temp_out_c), u.setpoint_c, u.k_per_kw, u.p_rated_kw).sum(axis=-1)

    def baseline_setpoint(self, k: int) -> np.ndarray:
        """NaN for every population: the units run their thermostats."""
        return np.full(self.n_assets, np.nan)

    def _step(self, k: int, setpoint_kw: np.ndarray) -> np.ndarray:
        t_out = float(self.exo.temp_air_c[k])
        base = np.where(self._down, 0.0, self.baseline_kw(t_out))
        sp = np.broadcast_to(np.asarray(setpoint_kw, dtype=float), (self.n_assets,))
        request = np.clip(base - sp, 0.0, self._p_total_kw)      # NaN stays NaN: thermostats
        request[self._down] = 0.0
        self._start = (self.temp_c, self.on, base)
        return self._run(t_out, request)

    def _run(self, t_out: float, request: np.ndarray, keep_band: bool = True) -> np.ndarray:
        """The sub-steps of one step from ``self._start`` with *request* per
        population (NaN: thermostats); returns generator-sign power. [kW]
        ``keep_band=False``: no unit starts beyond the request (a breaker)."""
        u = self.units
        self.temp_c, self.on, base = self._start
        drawn = np.zeros(self.n_assets)
        units_on = switch_ons = 0.0
        excess_start = self._band_excess_k()
        drift = Drift.of(u, t_out, self.dt_h / self.n_sub)
        for j in range(self.n_sub):
            target = request * (j + 1) - drawn                 # catch up within the step
            before = self.on
            self.temp_c, self.on, p_kw = substep(u, self.temp_c, self.on, t_out, self.dt_h / self.n_sub,
                                                 np.maximum(target, 0.0), self.params.stack_hysteresis_frac,
                                                 keep_band & ~self._down, drift)
            drawn += p_kw
            units_on += self.on.sum()
            switch_ons += (self.on & ~before).sum()
        excess_kh = (excess_start + self._band_excess_k()) / 2.0 * self.dt_h       # the trapezoid rule
        self._last = {"p_baseline_kw": -float(base.sum()), "units_on": float(units_on) / self.n_sub,
                      "switch_ons": float(switch_ons), "band_excess_kh": excess_kh}
        self._deviation_kw = base - drawn / self.n_sub
        return -drawn / self.n_sub

    def _band_excess_k(self) -> float:
        """The rooms' degrees beyond their deadbands now, summed over rooms. [K]"""
        u = self.units
        return float(np.maximum(np.abs(self.temp_c - u.setpoint_c) - u.deadband_k / 2.0, 0.0).sum())

    def draw_kw(self) -> tuple[float, float]:
        """Every compressor is flexible (it may stay off for a step); nothing is fixed. [kW]"""
        return float(-self.last_p_kw.sum()), 0.0

    def trip(self, k: int, flexible_frac: float, fixed_frac: float) -> np.ndarray:
        """Step *k* again from its start with each population held to its drawn
        power cut by *flexible_frac*, the deadband override included (the rooms
        warm, and may leave the band).  A population whose units the deadband
        holds off may draw a little less than asked (whole compressors)."""
        if flexible_frac <= 0.0:
            return self.last_p_kw
        request = -self.last_p_kw * (1.0 - flexible_frac)
        self.last_p_kw = self._run(float(self.exo.temp_air_c[k]), request, keep_band=False)
        return self.last_p_kw

    def controllable_kw(self) -> np.ndarray:
        """Deviation of the last step's power from the baseline, generator sign
        (positive: consumed less), per population: what the setpoint asks for. [kW]"""
        return self._deviation_kw.copy()

    def _energy(self) -> np.ndarray:
        """Virtual-battery energy per population, e = sum C (theta_r - theta) / eta. [kWh]"""
        return self.units.energy_kwh(self.temp_c).sum(axis=-1)

    # -- flexibility -----------------------------------------------------
    def battery(self, grid: HorizonGrid, forecast, kind: str = "sufficient") -> GeneralisedBattery:
        """The generalised battery per population over *grid* ("sufficient" or "nominal")."""
        temp = np.asarray(forecast.temp_air_c, dtype=float)[: grid.n_steps]
        if kind == "nominal":
            return nominal_battery(self.units, grid.mean(temp))
        if kind != "sufficient":
            raise ValueError(f"unknown battery kind {kind!r}")
        return sufficient_battery(self.units, np.minimum.reduceat(temp, grid.starts),
                                  np.maximum.reduceat(temp, grid.starts), self.params.energy_margin_frac)

    def flexibility(self, grid: HorizonGrid, forecast) -> list:
        """The sufficient battery as a StorageLike per population, plus the baseline.

        Blocks after the end of the run offer no power, so the terminal target
        (zero: every population back at its setpoint state) binds at the run's end.
        A population that is down (:meth:`set_outage`) offers none over the
        horizon, and its baseline is zero.
        """
        n, p = self.n_assets, self.params
        temp = np.asarray(forecast.temp_air_c, dtype=float)[: grid.n_steps]
        up = ~self._down
        base = (self.baseline_kw(temp) * up).sum(axis=-1)              # (steps,)
        gb = self.battery(grid, forecast)
        offer = (grid.k0 + grid.starts < self.timeline.n_steps)[None, :] & up[:, None]
        return [
            StorageLike(
                fleet=self.name, node=self.node,
                p_charge_max_kw=gb.p_plus_kw * offer,
                p_discharge_max_kw=gb.p_minus_kw * offer,
                e_min_kwh=gb.e_min_kwh, e_max_kwh=gb.e_max_kwh,
                e_init_kwh=self._energy(),
                e_target_kwh=np.zeros(n),
                eta_charge=np.ones(n), eta_discharge=np.ones(n),
                self_discharge_per_h=gb.dissipation_per_h.copy(),
                shortfall_cost_cny_per_kwh=np.full(n, p.terminal_shortfall_cost_cny_per_kwh),
                throughput_cost_cny_per_kwh=np.full(n, p.throughput_cost_cny_per_kwh),
            ),
            FixedProfile(fleet=self.name, node=self.node, p_kw=-grid.mean(base)),
        ]

    # -- reporting -------------------------------------------------------
    def state(self) -> dict[str, float]:
        """Fleet totals after the last step.  ``e_kwh`` is the energy above empty
        (every unit at the top of its band), ``soc_frac`` its share of the
        capacity; both leave [0, capacity] only when the weather, a breaker or
        an outage pushes units out of their bands.  ``band_excess_kh``: the
        rooms' degrees beyond their deadbands over the step, summed over rooms
        (the trapezoid rule over the step). [K h]"""
        u = self.units
        e = float(self._energy().sum() + self.e_full_kwh.sum())
        out = (self.temp_c > u.temp_hi_c + 1e-9) | (self.temp_c < u.temp_lo_c - 1e-9)
        return {**self._last, "temp_mean_c": float(self.temp_c.mean()), "e_kwh": e,
                "soc_frac": e / float(2.0 * self.e_full_kwh.sum()), "units_out_of_band": float(out.sum())}

    def info(self) -> dict[str, float]:
        """Rated power, the nominal capacity (full deadbands), the initial energy above
        empty, and the fleet's generalised battery (Hao et al. 2015) at the run's mean
        outdoor temperature ``gb_temp_out_c``: the most it can consume less
        (``gb_p_minus_kw``: the baseline) and more (``gb_p_plus_kw``) than the baseline,
        its energy bound ``gb_energy_kwh`` (``e`` in ``[-E, E]``) and its dissipation
        ``gb_dissipation_per_h`` (capacity-weighted ``1/(RC)``)."""
        t = float(np.mean(self.exo.temp_air_c[: self.timeline.n_steps]))
        gb = nominal_battery(self.units, t)
        e = self.e_full_kwh
        return {"p_rated_kw": float(self.units.p_rated_kw.sum()),
                "capacity_kwh": float(2.0 * e.sum()),
                "e_init_kwh": float(self.e_init_kwh + e.sum()),
                "units": float(self.units.p_rated_kw.size),
                "gb_temp_out_c": t,
                "gb_p_minus_kw": float(gb.p_minus_kw.sum()),
                "gb_p_plus_kw": float(gb.p_plus_kw.sum()),
                "gb_energy_kwh": float(e.sum()),
                "gb_dissipation_per_h": float((gb.dissipation_per_h * e).sum() / e.sum()) if e.sum() > 0 else 0.0}
