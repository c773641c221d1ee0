"""Stationary battery storage: power and energy limits, efficiencies, self-discharge.

Energy bookkeeping (a standard linear storage model, e.g. the storage unit
of PyPSA, Brown et al., J. Open Res. Softw. 6(1), 2018, doi:10.5334/jors.188):

.. math::

    e_{k+1} = e_k \\, e^{-\\sigma \\Delta t} + \\eta_c p^c_k \\Delta t
              - p^d_k \\Delta t / \\eta_d

with charge power :math:`p^c \\ge 0` drawn from the bus and discharge power
:math:`p^d \\ge 0` delivered to it (generator sign: :math:`p = p^d - p^c`).
The state of charge stays in ``[soc_min, soc_max]`` of the capacity; the
physics clips any setpoint to what the power rating and that window allow.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from vpp.assets import register
from vpp.assets.base import Fleet, FleetContext, FleetParams
from vpp.errors import FieldError
from vpp.flex import HorizonGrid, StorageLike
from vpp.params import ranged, sample

__all__ = ["BatteryParams", "BatteryFleet", "step_energy", "power_window"]


class BatteryParams(FleetParams):
    """Parameters of a battery fleet (per asset; distributions allowed)."""

    p_max_kw: ranged(gt=0, le=1e6)  # charge and discharge power rating [kW] (at most 1 GW per asset)
    e_max_kwh: ranged(gt=0, le=1e7)  # usable energy capacity [kWh] (at most 10 GWh per asset)
    eta_charge: ranged(gt=0, le=1) = 0.95  # LFP, per direction (assumption)
    eta_discharge: ranged(gt=0, le=1) = 0.95
    """Discharge efficiency: energy delivered to the bus per kWh taken from storage (0.95: LFP,
    per direction, as ``eta_charge``: about 0.90 round trip; assumption). [-]"""
    soc_min: float = Field(0.10, ge=0, lt=1)
    """Lowest state of charge, as a share of ``e_max_kwh``: the physics never discharges below it,
    so only ``soc_max - soc_min`` of the capacity is used (default 10 %: assumption). [-]"""
    soc_max: float = Field(0.90, gt=0, le=1)
    """Highest state of charge, as a share of ``e_max_kwh``: the physics never charges above it;
    must be above ``soc_min`` (default 90 %: assumption). [-]"""
    soc_init: float = Field(0.50, ge=0, le=1)
    """State of charge at the start of the run, as a share of ``e_max_kwh``, within ``soc_min``..``soc_max``.
    It is also the optimizer's terminal target: plans end each horizon, and so the run, with this energy
    (a soft target priced by ``terminal_shortfall_cost_cny_per_kwh``). Default 50 %: assumption. [-]"""
    self_discharge_per_h: float = Field(1e-4, ge=0, lt=1)  # ~2 %/month (assumption)
    # Throughput (degradation) cost per kWh charged or discharged: capex
    # ~1,000 CNY/kWh over ~6,000 cycles x 2 kWh throughput/cycle (assumption).
    throughput_cost_cny_per_kwh: float = Field(0.08, ge=0)
    # Value of energy below the horizon's terminal target (the initial SOC),
    # so a rolling horizon does not empty the battery at its end.
    terminal_shortfall_cost_cny_per_kwh: float = Field(1.5, ge=0)

    @model_validator(mode="after")
    def _soc_window(self):
        if not self.soc_min < self.soc_max:
            raise FieldError(("soc_max",), f"must be above soc_min ({self.soc_min:g}): "
                             "the state-of-charge window is reversed or empty")
        if not self.soc_min <= self.soc_init <= self.soc_max:
            raise FieldError(("soc_init",), f"{self.soc_init:g} lies outside the state-of-charge window "
                             f"soc_min..soc_max ({self.soc_min:g}..{self.soc_max:g})")
        return self


def step_energy(e_kwh, p_kw, dt_h, eta_c, eta_d, sigma_per_h):
    """Energy after one step of constant power *p_kw* (generator sign).

    Parameters
    ----------
    e_kwh : array_like
        Stored energy at the start of the step. [kWh]
    p_kw : array_like
        Power delivered to the bus; negative charges. [kW]
    dt_h : float
        Step length. [h]
    eta_c, eta_d : array_like
        Charge and discharge efficiency. [-]
    sigma_per_h : array_like
        Self-discharge rate. [1/h]

    Returns
    -------
    ndarray
        Stored energy at the end of the step. [kWh]
    """
    p = np.asarray(p_kw, dtype=float)
    inflow = np.where(p < 0, -p * eta_c, -p / eta_d) * dt_h
    return np.asarray(e_kwh) * np.exp(-np.asarray(sigma_per_h) * dt_h) + inflow


def power_window(e_kwh, e_lo_kwh, e_hi_kwh, p_max_kw, dt_h, eta_c, eta_d, sigma_per_h):
    """Feasible power range for one step, generator sign.

    Returns ``(p_lo, p_hi)`` [kW]: the most charging (negative) and the most
    discharging power that keep the energy inside ``[e_lo, e_hi]`` at the end
    of the step and respect the rating.  If self-discharge alone would take
    the energy below ``e_lo``, ``p_hi`` is 0 (no discharge) rather than a
    forced charge.
    """
    decayed = np.asarray(e_kwh) * np.exp(-np.asarray(sigma_per_h) * dt_h)
    p_hi = np.clip((decayed - e_lo_kwh) * eta_d / dt_h, 0.0, p_max_kw)
    p_lo = -np.clip((e_hi_kwh - decayed) / (eta_c * dt_h), 0.0, p_max_kw)
    return p_lo, p_hi


@register
class BatteryFleet(Fleet):
    """A fleet of stationary batteries (vectorised).

    Uncontrolled ("source follows load") batteries stay idle.
    """

    type_name = "battery"
    Params = BatteryParams
    outage_ratings = ("p_max_kw",)            # a converter fault: no charge or discharge
    role = "storage"
    state_columns = ("e_kwh", "soc_frac")

    def __init__(self, ctx: FleetContext, params: BatteryParams):
        super().__init__(ctx, params)
        n = self.n_assets
        self.p_max_kw = sample(params.p_max_kw, self.rng, n)
        self.e_max_kwh = sample(params.e_max_kwh, self.rng, n)
        self.eta_c = sample(params.eta_charge, self.rng, n)
        self.eta_d = sample(params.eta_discharge, self.rng, n)
        self.sigma = np.full(n, params.self_discharge_per_h)
        self.e_lo = params.soc_min * self.e_max_kwh
        self.e_hi = params.soc_max * self.e_max_kwh
        self.e_kwh = np.clip(params.soc_init * self.e_max_kwh, self.e_lo, self.e_hi)
        self.e_target = self.e_kwh.copy()

    def baseline_setpoint(self, k: int) -> np.ndarray:
        return np.zeros(self.n_assets)

    def _step(self, k: int, setpoint_kw: np.ndarray) -> np.ndarray:
        p_lo, p_hi = power_window(self.e_kwh, self.e_lo, self.e_hi, self.p_max_kw,
                                  self.dt_h, self.eta_c, self.eta_d, self.sigma)
        p = np.clip(np.nan_to_num(setpoint_kw, nan=0.0), p_lo, p_hi)
        self.e_kwh = step_energy(self.e_kwh, p, self.dt_h, self.eta_c, self.eta_d, self.sigma)
        return p

    def flexibility(self, grid: HorizonGrid, forecast) -> list[StorageLike]:
        """Power and SOC limits over the horizon.  Blocks after the end of the
        run offer no power and lose nothing to self-discharge, so the terminal
        target (the initial energy) binds at the run's end: a run ends with the
        energy it started with, like the idle baseline, unless the target is
        not worth keeping."""
        n, h = self.n_assets, grid.n_blocks
        full = np.ones((n, h))
        in_run = (grid.k0 + grid.starts < self.timeline.n_steps).astype(float)[None, :]
        p = self.params
        return [StorageLike(
            fleet=self.name, node=self.node,
            p_charge_max_kw=full * in_run * self.p_max_kw[:, None],
            p_discharge_max_kw=full * in_run * self.p_max_kw[:, None],
            e_min_kwh=full * self.e_lo[:, None],
            e_max_kwh=full * self.e_hi[:, None],
            e_init_kwh=self.e_kwh.copy(),
            e_target_kwh=self.e_target.copy(),
            eta_charge=self.eta_c.copy(),
            eta_discharge=self.eta_d.copy(),
            self_discharge_per_h=self.sigma[:, None] * in_run,
            shortfall_cost_cny_per_kwh=np.full(n, p.terminal_shortfall_cost_cny_per_kwh),
            throughput_cost_cny_per_kwh=np.full(n, p.throughput_cost_cny_per_kwh),
        )]

    def state(self) -> dict[str, float]:
        total = float(self.e_kwh.sum())
        return {"e_kwh": total, "soc_frac": total / float(self.e_max_kwh.sum())}

    def info(self) -> dict[str, float]:
        return {"p_rated_kw": float(self.p_max_kw.sum()),
                "capacity_kwh": float((self.e_hi - self.e_lo).sum()),
                "e_init_kwh": float(self.e_target.sum())}
