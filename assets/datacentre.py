"""Data centres: interactive and deferrable batch IT work, a weather-dependent
cooling plant (PUE), and an optional UPS battery.

One asset is one data centre (docs/SOURCES.md: 20 MW IT; new large centres
PUE < 1.3, Yangtze River Delta hub <= 1.25, official).

IT load
-------
*Interactive* work (web, storage, online services) is not controllable.  Its
IT power follows a diurnal cosine with its maximum at ``interactive_peak_hour``
(21 h local: the evening peak of China's internet traffic; assumption), a
weekend factor, and AR(1) noise drawn once per run from the fleet's stream.
The swing is +/-15 % of the mean by default: server power is linear in
utilisation with a large idle share, so power swings much less than traffic
(Fan, Weber & Barroso, "Power provisioning for a warehouse-sized computer",
ISCA 2007, doi:10.1145/1250662.1250665; Barroso, Hoelzle & Ranganathan, *The
Datacenter as a Computer*, 3rd ed., 2018).  Levels and shape are assumptions.

*Batch* work (analytics, ML training, backups) is deferrable within deadlines,
as in carbon-aware scheduling of flexible compute (Radovanovic et al.,
"Carbon-Aware Computing for Datacenters", IEEE TPWRS 38(2), 2023,
doi:10.1109/TPWRS.2022.3173250).  Every hour of the run, each site receives
one *job* (the batch work submitted in that hour): its IT energy is the
site's mean batch power times a diurnal submission shape (maximum at 14 h;
assumption, after the daytime submission peaks of public cluster traces) times
a log-normal factor of mean 1; its deadline follows after ``deadline_h`` hours,
drawn per job.  Jobs are drawn at creation for the whole run.

Jobs are served **first in, first out** (the order of Slurm's ``sched/builtin``
plugin; priorities and backfill are not modelled), so the site's pending work
is one storage-like quantity: ``W``, the cumulative IT energy done.  Job ``j``
is complete once ``W >= C_j``, the total energy of the jobs queued up to and
including it.  Every deadline is then a lower bound on ``W`` -- ``W(d_j) >=
C_j`` -- and availability an upper bound -- ``W(t) <= A(t)``, the work arrived
by ``t`` -- so the LP holds this representation **exactly** (earliest-deadline-
first service would meet more deadlines, but its feasible set is not a single
storage).  The batch IT power is at most the spare IT capacity, ``P_IT,rated -
P_interactive``.

Physics of the batch work, per step: ``x = clip(request, x_must, x_avail)``
[IT-kWh], where ``x_avail = min(A - W, spare capacity)`` and the *deadline
override* ``x_must`` is the least work that still lets every released job meet
its deadline at full spare capacity afterwards::

    x_must = min(x_avail, max(0, max_j [C_j - W - sum_{k < s < d_j} cap_s]))

(the laxity rule of the EV fleet, applied to the queue).  Uncontrolled
("source follows load"), batch work runs as soon as it arrives, up to the
spare capacity.  A deadline is missed only when no schedule could meet it.

Cooling and PUE
---------------
PUE = total facility power / IT power (The Green Grid, "PUE: A Comprehensive
Examination of the Metric", White Paper #49, 2012; ISO/IEC 30134-2:2016).
Facility power is decomposed as in Pelley, Meisner, Wenisch & VanGilder,
"Understanding and Abstracting Total Data Center Power", WEED 2009: IT;
power-distribution losses (UPS, transformers, PDUs) and fans/pumps as shares of
IT power; a fixed overhead (lighting, offices); and a chiller plant removing
all of that heat ``Q``::

    Q      = P_IT (1 + f_dist + f_fan) + P_fixed                       [kW]
    P_fac  = Q (1 + c(T)),     c(T) = phi(T) / COP(T)

with outdoor dry-bulb temperature ``T``.  A water-side economiser in series
pre-cools the return water to ``T + approach``, so the chiller carries the
fraction ``phi(T) = clip((T + approach - T_supply) / (T_return - T_supply), 0,
1)`` of the load (full free cooling in cool weather); the chiller's COP is a
constant fraction of the Carnot COP, ``COP = eta_II (T_evap + 273.15) / lift``
with ``lift = max(T + condensing approach - T_evap, lift_min)`` (J.M. Gordon &
K.C. Ng, *Cool Thermodynamics*, 2000).  High chilled-water temperatures (18/24
degC) follow the ASHRAE TC 9.9 recommended inlet range of 18-27 degC (Thermal
Guidelines for Data Processing Environments).  ``eta_II`` is **calibrated** so
that PUE = ``pue_design`` (1.25) at the design condition: rated IT load and
``temp_design_c`` = 35 degC (Shanghai's summer air-conditioning design
dry-bulb is about 34-35 degC; GB 50736-2012 lists 34.4 degC, unverified).
With the defaults: PUE 1.25 at 35 degC, 1.1875 at 25 degC, 1.125 at 15 degC,
1.10 at or below 13 degC (full load); all shares and temperatures are
assumptions.  The condensing temperature is tied to the dry bulb because the
weather has no humidity (an effective approach for a water-cooled plant in
Shanghai's humid summer; assumption).

Facility power is linear in IT power: ``P_fac = m(T) P_IT + P_fixed (1 + c)``
with marginal factor ``m(T) = (1 + f_dist + f_fan)(1 + c(T))``.

UPS
---
An optional lithium-ion UPS battery per site (``ups_kwh``, ``ups_kw``), with
the storage bookkeeping of the battery fleet.  A reserve ``ups_reserve_frac``
of its capacity must always remain for backup: the physics never discharges
below it, and charges (up to the rating) when self-discharge alone would take
it below.  The UPS only feeds the IT load, so it discharges at most the IT
power and the site never exports.  Uncontrolled, it floats at full charge.

Outages
-------
A site that is down (``[outages.NAME]``, :mod:`vpp.outages`) has its batch
cluster out of service (its servers, network or scheduler; a Tier III site's
power and cooling are redundant and are not taken out): no batch work runs,
the queue waits, and jobs miss their deadlines if the repair comes too late
(``batch_overdue_kwh``, the ``datacentre_jobs`` table); the deadline override
cannot help while the capacity is gone.  Interactive work, cooling and the
UPS go on.  The strategy sees no batch capacity over its horizon.

Flexibility and setpoints
-------------------------
``flexible_part`` chooses what a site offers the optimizer:

* ``"batch"`` (default): a :class:`~vpp.flex.StorageLike` whose energy is the
  batch IT energy done in the horizon and whose charge power is the grid-side
  power of the batch work, ``eta_charge = 1 / m(T)`` per block from the
  forecast temperature; ``e_max`` is the work available, ``e_min`` the
  deadline envelope ``min(L, U)`` -- ``L`` the latest-start envelope of the
  queue's deadlines, ``U`` the as-soon-as-possible path -- which the override
  guarantees.  The UPS floats at full charge.
* ``"ups"``: a StorageLike of the UPS (``e_min`` = reserve); batch work runs
  as soon as possible.
* ``"both"``: one StorageLike with two rows per site, every site's batch
  work and then every site's UPS (the UPS's discharge bounded by the
  interactive IT load alone, which batch work the plan adds only raises);
  the fleet then takes ``2 N`` setpoint rows (:attr:`Fleet.n_setpoints`).

The rest (interactive IT and its cooling, fixed overhead, the uncontrolled
part) is a :class:`~vpp.flex.FixedProfile`.  Forecasts apply the forecast's
``load_error_frac`` to the site's interactive load and to the energy of jobs
arriving in the horizon (``forecast = actual * (1 + e)``), and use the forecast
temperature; with a perfect forecast, one-step blocks are exact (a schedule
inside the form is what the physics delivers).  Coarse blocks bound the energy
at their ends and the power by the smallest step value in the block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator
from scipy.signal import lfilter

from vpp.assets import register
from vpp.assets.base import Fleet, FleetContext, FleetParams
from vpp.assets.battery import power_window, step_energy
from vpp.errors import FieldError
from vpp.exogenous.series import Exogenous
from vpp.flex import FixedProfile, HorizonGrid, StorageLike
from vpp.params import Uniform, ranged, sample, support
from vpp.timeline import Timeline

__all__ = [
    "DataCentreParams",
    "DataCentreFleet",
    "CoolingPlant",
    "BatchJobs",
    "economiser_fraction",
    "chiller_lift_k",
    "interactive_shape",
    "draw_batch_jobs",
    "latest_envelope",
    "asap_path",
]

KELVIN = 273.15
COMPLETE_TOL = 1e-9  # a job counts as done when less than this share of the queue's work remains
MAX_DEADLINE_H = 168.0


# -- parameters -------------------------------------------------------------


class DataCentreParams(FleetParams):
    """Parameters of a data-centre fleet (``type = "datacentre"``); one asset per site.

    Per-site values may be distributions (``vpp.params``).  Shares are of the
    IT power; temperatures in degC.  Sources in the module docstring; every
    value not marked official is an assumption.
    """

    # -- IT load
    it_rated_kw: ranged(gt=0, le=1e6) = 20_000.0              # docs/SOURCES.md: 20 MW IT
    interactive_mean_frac: ranged(ge=0, le=1) = 0.45    # mean interactive IT power / rated (assumption)
    interactive_amplitude: float = Field(0.15, ge=0, lt=1)   # diurnal swing of power (Fan et al. 2007)
    interactive_peak_hour: float = Field(21.0, ge=0, lt=24)  # evening internet peak (assumption)
    interactive_weekend_factor: float = Field(0.95, gt=0)    # weekend level (assumption)
    interactive_noise_frac: float = Field(0.02, ge=0, lt=1)  # AR(1) deviation (assumption)
    interactive_noise_h: float = Field(1.0, gt=0)            # its correlation time
    batch_mean_frac: ranged(ge=0, le=1) = 0.20          # mean batch IT power / rated (assumption)
    batch_amplitude: float = Field(0.3, ge=0, le=1)     # diurnal swing of submissions (assumption)
    batch_peak_hour: float = Field(14.0, ge=0, lt=24)   # daytime submission peak (assumption)
    batch_size_cv: float = Field(0.5, ge=0)             # log-normal factor on each hour's job (assumption)
    # Hours from a job's arrival to its deadline, drawn per job (assumption:
    # flexible compute shifted within the day, Radovanovic et al. 2023).
    deadline_h: ranged(gt=0, le=MAX_DEADLINE_H) = Uniform(dist="uniform", low=4.0, high=24.0)
    # Optimizer penalty on batch work short of the horizon's terminal target (assumption).
    deadline_cost_cny_per_kwh: float = Field(5.0, ge=0)
    # -- cooling plant and PUE (all assumptions except pue_design)
    pue_design: ranged(gt=1, le=4) = 1.25                  # official: YRD hub <= 1.25 (docs/SOURCES.md)
    temp_design_c: float = Field(35.0, ge=-60, le=60)   # Shanghai summer design dry-bulb ~34.4 (GB 50736)
    distribution_loss_frac: float = Field(0.04, ge=0, lt=1)  # UPS, transformers, PDUs
    fan_pump_frac: float = Field(0.05, ge=0, lt=1)      # CRAH fans, pumps, cooling towers
    fixed_overhead_frac: float = Field(0.01, ge=0, lt=1)  # lighting, offices: kW per rated IT kW
    chw_supply_c: float = Field(18.0, ge=4, le=35)      # chilled water supply (ASHRAE TC 9.9 inlet 18-27)
    chw_return_c: float = Field(24.0, ge=4, le=45)
    """Chilled-water return temperature, above ``chw_supply_c``.  The chillers carry none of the heat
    while dry bulb + ``economiser_approach_k`` is at most the supply temperature, all of it once that
    reaches this one, a linear share between (defaults: full free cooling at or below 13 degC, none from
    19 degC).  18/24 degC after the ASHRAE TC 9.9 recommended inlet range 18-27 degC (assumption)."""
    evaporator_approach_k: float = Field(2.0, ge=0, le=20)    # T_evap = supply - approach
    condensing_approach_k: float = Field(5.0, ge=0, le=30)  # T_cond = dry bulb + approach (effective)
    economiser_approach_k: float = Field(5.0, ge=0, le=30)  # free-cooled water reaches dry bulb + approach
    lift_min_k: float = Field(12.0, gt=0, le=60)             # head-pressure control
    # -- UPS battery (optional): none by default
    ups_kwh: ranged(ge=0) = 0.0                         # e.g. 15 min at rated IT load (assumption)
    ups_kw: ranged(ge=0) = 0.0
    """UPS charge and discharge power rating per site; it discharges at most the site's IT power (the
    UPS only feeds the IT load).  0, the default: no UPS; ``flexible_part = "ups"`` or ``"both"`` needs
    it above 0."""
    ups_reserve_frac: float = Field(0.6, ge=0, le=1)    # must always remain for backup (assumption)
    ups_soc_max: float = Field(1.0, gt=0, le=1)
    """Highest UPS state of charge, as a share of ``ups_kwh``: where an uncontrolled UPS floats and the
    optimizer's terminal target; at least ``ups_reserve_frac`` (default full: assumption). [-]"""
    ups_soc_init: float | None = Field(None, ge=0, le=1)  # default: ups_soc_max (floating full)
    ups_eta_charge: float = Field(0.95, gt=0, le=1)     # Li-ion, per direction (assumption)
    ups_eta_discharge: float = Field(0.95, gt=0, le=1)
    """UPS discharge efficiency: energy delivered per kWh taken from storage (Li-ion, per direction, as
    ``ups_eta_charge``; assumption). [-]"""
    ups_self_discharge_per_h: float = Field(1e-4, ge=0, lt=1)
    """Exponential self-discharge rate of the UPS, as the battery fleet's (~2 %/month; assumption)."""
    ups_throughput_cost_cny_per_kwh: float = Field(0.08, ge=0)   # as the battery fleet (assumption)
    ups_shortfall_cost_cny_per_kwh: float = Field(1.5, ge=0)     # value of ending below full
    # -- which part the optimizer controls
    flexible_part: Literal["batch", "ups", "both"] = "batch"
    """What each site offers the optimizer: its deferrable batch work (``"batch"``, one setpoint
    row per site), its UPS battery above the backup reserve (``"ups"``, needs ``ups_kw`` and
    ``ups_kwh`` above 0), or both (two rows per site).  See the module notes."""

    @model_validator(mode="after")
    def _consistent(self):
        overhead = 1.0 + self.distribution_loss_frac + self.fan_pump_frac + self.fixed_overhead_frac
        lo, _ = support(self.pue_design)
        if not lo > overhead:
            raise ValueError(f"pue_design ({lo}) must exceed 1 + distribution, fan/pump and fixed shares "
                             f"({overhead:.4g}): nothing would be left for the chillers")
        if not self.chw_return_c > self.chw_supply_c:
            raise FieldError(("chw_return_c",), f"must exceed chw_supply_c ({self.chw_supply_c:g} degC)")
        if economiser_fraction(self.temp_design_c, self.chw_supply_c, self.chw_return_c,
                               self.economiser_approach_k) <= 0:
            raise ValueError("temp_design_c lies in the full free-cooling range: the chillers cannot be calibrated")
        soc_init = self.ups_soc_max if self.ups_soc_init is None else self.ups_soc_init
        if not self.ups_reserve_frac <= self.ups_soc_max:
            raise FieldError(("ups_reserve_frac",), f"{self.ups_reserve_frac:g} is above ups_soc_max "
                             f"({self.ups_soc_max:g}): the UPS window is reversed")
        if not self.ups_reserve_frac <= soc_init <= self.ups_soc_max:
            raise FieldError(("ups_soc_init",), f"{soc_init:g} is outside the UPS window: need ups_reserve_frac "
                             f"<= ups_soc_init <= ups_soc_max ({self.ups_reserve_frac:g}..{self.ups_soc_max:g})")
        if self.flexible_part != "batch" and not (support(self.ups_kwh)[0] > 0 and support(self.ups_kw)[0] > 0):
            raise ValueError(f'flexible_part = "{self.flexible_part}" needs ups_kwh > 0 and ups_kw > 0')
        return self


# -- cooling plant ----------------------------------------------------------


def economiser_fraction(temp_air_c, chw_supply_c, chw_return_c, approach_k):
    """Share of the heat load left to the chillers by a series water-side economiser.

    The economiser cools the return water to ``T + approach``; the chiller
    takes it from there to the supply temperature.

    Parameters
    ----------
    temp_air_c : array_like
        Outdoor dry-bulb temperature. [degC]
    chw_supply_c, chw_return_c : float
        Chilled-water supply and return temperatures. [degC]
    approach_k : float
        Economiser water temperature above the dry bulb. [K]

    Returns
    -------
    ndarray
        ``clip((T + approach - T_supply) / (T_return - T_supply), 0, 1)``. [-]
    """
    t = np.asarray(temp_air_c, dtype=float)
    return np.clip((t + approach_k - chw_supply_c) / (chw_return_c - chw_supply_c), 0.0, 1.0)


def chiller_lift_k(temp_air_c, t_evap_c, condensing_approach_k, lift_min_k):
    """Chiller temperature lift ``max(T + approach - T_evap, lift_min)``. [K]

    Parameters
    ----------
    temp_air_c : array_like
        Outdoor dry-bulb temperature. [degC]
    t_evap_c : float
        Evaporating temperature. [degC]
    condensing_approach_k : float
        Condensing temperature above the dry bulb. [K]
    lift_min_k : float
        Smallest lift (head-pressure control). [K]
    """
    t = np.asarray(temp_air_c, dtype=float)
    return np.maximum(t + condensing_approach_k - t_evap_c, lift_min_k)


@dataclass(frozen=True, eq=False)
class CoolingPlant:
    """The facility-power model of N sites (module docstring), calibrated per site.

    Parameters
    ----------
    dist_frac, fan_frac : float
        Power-distribution losses and fans/pumps as shares of IT power. [-]
    fixed_kw : ndarray, shape (N,)
        Fixed overhead (lighting, offices). [kW]
    c_design : ndarray, shape (N,)
        Chiller electric power per kW of heat at the design condition. [-]
    design_phi_lift_k : float
        ``phi * lift`` at the design temperature. [K]
    chw_supply_c, chw_return_c, economiser_approach_k, t_evap_c,
    condensing_approach_k, lift_min_k : float
        See :class:`DataCentreParams`.
    """

    dist_frac: float
    fan_frac: float
    fixed_kw: np.ndarray
    c_design: np.ndarray
    design_phi_lift_k: float
    chw_supply_c: float
    chw_return_c: float
    economiser_approach_k: float
    t_evap_c: float
    condensing_approach_k: float
    lift_min_k: float

    @classmethod
    def calibrated(cls, p: DataCentreParams, it_rated_kw: np.ndarray, pue_design: np.ndarray) -> CoolingPlant:
        """A plant whose PUE at rated IT load and ``p.temp_design_c`` is *pue_design*.

        ``PUE_d = (1 + f_dist + f_fan + f_fixed)(1 + c_d)`` gives ``c_d``, the
        chiller power per unit heat at design; the COP at any other
        temperature follows from the constant second-law efficiency.
        """
        t_evap = p.chw_supply_c - p.evaporator_approach_k
        phi_d = float(economiser_fraction(p.temp_design_c, p.chw_supply_c, p.chw_return_c, p.economiser_approach_k))
        lift_d = float(chiller_lift_k(p.temp_design_c, t_evap, p.condensing_approach_k, p.lift_min_k))
        share = 1.0 + p.distribution_loss_frac + p.fan_pump_frac + p.fixed_overhead_frac
        return cls(dist_frac=p.distribution_loss_frac, fan_frac=p.fan_pump_frac,
                   fixed_kw=p.fixed_overhead_frac * np.asarray(it_rated_kw, dtype=float),
                   c_design=np.asarray(pue_design, dtype=float) / share - 1.0,
                   design_phi_lift_k=phi_d * lift_d, chw_supply_c=p.chw_supply_c, chw_return_c=p.chw_return_c,
                   economiser_approach_k=p.economiser_approach_k, t_evap_c=t_evap,
                   condensing_approach_k=p.condensing_approach_k, lift_min_k=p.lift_min_k)

    def _phi_lift(self, temp_air_c):
        phi = economiser_fraction(temp_air_c, self.chw_supply_c, self.chw_return_c, self.economiser_approach_k)
        return phi, chiller_lift_k(temp_air_c, self.t_evap_c, self.condensing_approach_k, self.lift_min_k)

    def cooling_per_heat(self, temp_air_c) -> np.ndarray:
        """Chiller electric power per kW of heat, ``c = phi / COP``; shape ``(N,) + shape(T)``. [-]"""
        phi, lift = self._phi_lift(temp_air_c)
        return np.multiply.outer(self.c_design, phi * lift / self.design_phi_lift_k)

    def chiller_cop(self, temp_air_c) -> np.ndarray:
        """Chiller COP (Carnot COP times the calibrated second-law efficiency). [-]"""
        _, lift = self._phi_lift(temp_air_c)
        return np.multiply.outer(self.design_phi_lift_k / self.c_design, 1.0 / lift)

    def marginal(self, c) -> np.ndarray:
        """Facility kW per IT kW, ``m = (1 + f_dist + f_fan)(1 + c)``, from :meth:`cooling_per_heat`. [-]"""
        return (1.0 + self.dist_frac + self.fan_frac) * (1.0 + np.asarray(c))

    def fixed_facility_kw(self, c) -> np.ndarray:
        """Fixed overhead with its cooling, ``P_fixed (1 + c)``; broadcast like *c*. [kW]"""
        c = np.asarray(c)
        return self.fixed_kw.reshape((-1,) + (1,) * (c.ndim - 1)) * (1.0 + c)

    def facility_kw(self, p_it_kw, temp_air_c) -> np.ndarray:
        """Total facility power for IT power *p_it_kw* (per site) at *temp_air_c*. [kW]"""
        c = self.cooling_per_heat(temp_air_c)
        return self.marginal(c) * p_it_kw + self.fixed_facility_kw(c)

    def pue(self, p_it_kw, temp_air_c) -> np.ndarray:
        """Power usage effectiveness ``P_fac / P_IT`` (Green Grid WP #49). [-]"""
        return self.facility_kw(p_it_kw, temp_air_c) / p_it_kw

    def cooling_kw(self, p_it_kw, c) -> np.ndarray:
        """Fans/pumps plus chillers for IT power *p_it_kw* (N,) and chiller factor *c* (N,). [kW]"""
        heat = p_it_kw * (1.0 + self.dist_frac + self.fan_frac) + self.fixed_kw
        return self.fan_frac * p_it_kw + c * heat


# -- IT load ----------------------------------------------------------------


def interactive_shape(index: pd.DatetimeIndex, step_h: float, amplitude: float, peak_hour: float,
                      weekend_factor: float) -> np.ndarray:
    """Interactive IT power relative to its weekday mean, per step.

    ``(1 + amplitude cos(2 pi (h - peak_hour) / 24))`` at the step's local
    mid-time ``h`` [h], times *weekend_factor* on Saturdays and Sundays. [-]
    """
    mid = index + pd.Timedelta(hours=step_h / 2)
    h = mid.hour.to_numpy() + mid.minute.to_numpy() / 60.0 + mid.second.to_numpy() / 3600.0
    weekend = mid.day_of_week.to_numpy() >= 5
    return (1.0 + amplitude * np.cos(2 * np.pi * (h - peak_hour) / 24.0)) * np.where(weekend, weekend_factor, 1.0)


@dataclass(frozen=True, eq=False)
class BatchJobs:
    """One batch job per site and hour, in queue (arrival) order.

    Parameters
    ----------
    arrival_step : ndarray of int, shape (J,)
        Step at whose start the jobs of hour ``j`` arrive (the same for every site).
    deadline_step : ndarray of int, shape (N, J)
        Step at whose start the job must be done (``> arrival_step``).
    energy_kwh : ndarray, shape (N, J)
        IT energy of each job. [kWh]
    """

    arrival_step: np.ndarray
    deadline_step: np.ndarray
    energy_kwh: np.ndarray


def draw_batch_jobs(p: DataCentreParams, batch_mean_kw: np.ndarray, timeline: Timeline,
                    rng: np.random.Generator) -> BatchJobs:
    """Draw every batch job of the simulated period (module docstring).

    Parameters
    ----------
    p : DataCentreParams
    batch_mean_kw : ndarray, shape (N,)
        Mean batch IT power per site. [kW]
    timeline : Timeline
    rng : numpy.random.Generator
        The fleet's stream.
    """
    n = batch_mean_kw.size
    n_hours = int(np.ceil(timeline.n_steps * timeline.dt_h - 1e-9))
    hours = np.arange(n_hours)
    arrival = np.floor(hours / timeline.dt_h + 1e-9).astype(np.int64)
    local = timeline.start + pd.to_timedelta(hours, unit="h")
    hod = local.hour.to_numpy() + 0.5
    shape = 1.0 + p.batch_amplitude * np.cos(2 * np.pi * (hod - p.batch_peak_hour) / 24.0)
    if p.batch_size_cv > 0:
        s2 = np.log1p(p.batch_size_cv ** 2)
        factor = rng.lognormal(-s2 / 2, np.sqrt(s2), (n, n_hours))
    else:
        factor = np.ones((n, n_hours))
    energy = batch_mean_kw[:, None] * shape[None, :] * factor            # one hour of work each
    slack_h = sample(p.deadline_h, rng, n * n_hours).reshape(n, n_hours)
    deadline = arrival[None, :] + np.maximum(1, np.round(slack_h / timeline.dt_h)).astype(np.int64)
    return BatchJobs(arrival, deadline, energy)


def latest_envelope(required_kwh: np.ndarray, cap_kwh: np.ndarray) -> np.ndarray:
    """Least cumulative work at each boundary that keeps every deadline reachable.

    ``L(s) = max_{s' >= s} [R(s') - sum_{s <= i < s'} cap_i]``.

    Parameters
    ----------
    required_kwh : ndarray, shape (N, S + 1)
        ``R(s)``: work due by boundary ``s`` (non-decreasing). [kWh]
    cap_kwh : ndarray, shape (N, S)
        Most work per step. [kWh]

    Returns
    -------
    ndarray, shape (N, S + 1)
        ``L(s)``, non-decreasing, ``>= R(s)``. [kWh]
    """
    ccum = np.concatenate([np.zeros((cap_kwh.shape[0], 1)), np.cumsum(cap_kwh, axis=1)], axis=1)
    return ccum + np.maximum.accumulate((required_kwh - ccum)[:, ::-1], axis=1)[:, ::-1]


def asap_path(available_kwh: np.ndarray, cap_kwh: np.ndarray) -> np.ndarray:
    """Cumulative work when every step does as much as it can.

    ``U(0) = 0``, ``U(s+1) = min(A(s), U(s) + cap_s)``, in closed form
    ``U(s) = Ccum(s) + min_{r <= s} (A(r - 1) - Ccum(r))`` with ``A(-1) = 0``.

    Parameters
    ----------
    available_kwh : ndarray, shape (N, S)
        ``A(s)``: work available during step ``s`` (non-decreasing, >= 0). [kWh]
    cap_kwh : ndarray, shape (N, S)
        Most work per step. [kWh]

    Returns
    -------
    ndarray, shape (N, S + 1)
        ``U(s)`` at each boundary. [kWh]
    """
    n = cap_kwh.shape[0]
    ccum = np.concatenate([np.zeros((n, 1)), np.cumsum(cap_kwh, axis=1)], axis=1)
    a_prev = np.concatenate([np.zeros((n, 1)), available_kwh], axis=1)
    return ccum + np.minimum.accumulate(a_prev - ccum, axis=1)


# -- the fleet --------------------------------------------------------------


@register
class DataCentreFleet(Fleet):
    """N data centres; see the module docstring.

    Sign: generator convention; the site's grid power is returned negative.
    The setpoint is the grid-side power of the part named by
    ``flexible_part`` (batch work: ``-P_batch,grid``; UPS: discharge
    positive); with ``"both"`` it has ``2 N`` rows, every site's batch work
    then every site's UPS.  NaN asks for the uncontrolled behaviour.
    """

    type_name = "datacentre"
    Params = DataCentreParams
    role = "load"
    state_columns = ("p_it_kw", "p_it_batch_kw", "p_cooling_kw", "pue", "batch_backlog_kwh",
                     "batch_overdue_kwh", "ups_e_kwh")

    def __init__(self, ctx: FleetContext, params: DataCentreParams):
        super().__init__(ctx, params)
        n, p, rng, tl = self.n_assets, params, self.rng, ctx.timeline
        self.it_rated_kw = sample(p.it_rated_kw, rng, n)
        self.pue_design = sample(p.pue_design, rng, n)
        interactive_mean_kw = sample(p.interactive_mean_frac, rng, n) * self.it_rated_kw
        self.batch_mean_kw = sample(p.batch_mean_frac, rng, n) * self.it_rated_kw
        ups_kwh = sample(p.ups_kwh, rng, n)
        self.ups_kw = sample(p.ups_kw, rng, n)
        self.plant = CoolingPlant.calibrated(p, self.it_rated_kw, self.pue_design)
        # Interactive IT power on an extended timeline (deadlines may lie beyond the padding).
        self._slack_steps = int(np.ceil(support(p.deadline_h)[1] / self.dt_h)) + 1
        n_ext = tl.n_total + self._slack_steps + 1
        index = pd.date_range(tl.start, periods=n_ext, freq=pd.Timedelta(seconds=tl.step_s))
        shape = interactive_shape(index, self.dt_h, p.interactive_amplitude, p.interactive_peak_hour,
                                  p.interactive_weekend_factor)
        phi = np.exp(-self.dt_h / p.interactive_noise_h)
        white = rng.normal(0.0, p.interactive_noise_frac, (n, n_ext))
        white[:, 1:] *= np.sqrt(1.0 - phi ** 2)
        noise = lfilter([1.0], [1.0, -phi], white, axis=1)
        self._p_int = np.clip(interactive_mean_kw[:, None] * shape[None, :] * (1.0 + noise),
                              0.0, self.it_rated_kw[:, None])
        cap = (self.it_rated_kw[:, None] - self._p_int) * self.dt_h
        self._cap_cum = np.concatenate([np.zeros((n, 1)), np.cumsum(cap, axis=1)], axis=1)
        # Batch jobs, FIFO per site.
        self.jobs = draw_batch_jobs(p, self.batch_mean_kw, tl, rng)
        self._queue_kwh = np.cumsum(self.jobs.energy_kwh, axis=1)          # C_j
        self._done_step = np.full(self.jobs.energy_kwh.shape, -1, dtype=np.int64)
        self.batch_done_kwh = np.zeros(n)                                  # W, cumulative
        self._first = np.zeros(n, dtype=np.int64)                          # first incomplete job
        # UPS
        self.ups_e_max_kwh = p.ups_soc_max * ups_kwh
        self.ups_reserve_kwh = p.ups_reserve_frac * ups_kwh
        soc0 = p.ups_soc_max if p.ups_soc_init is None else p.ups_soc_init
        self.ups_e_kwh = soc0 * ups_kwh
        self._sigma = np.full(n, p.ups_self_discharge_per_h)
        self._eta_c = np.full(n, p.ups_eta_charge)
        self._eta_d = np.full(n, p.ups_eta_discharge)
        self._last = {c: 0.0 for c in self.state_columns}
        self._controllable_kw = np.zeros(n)
        self._k_next = 0
        self._down = np.zeros(n, dtype=bool)           # batch clusters out of service (vpp.outages)

    def set_outage(self, down: np.ndarray) -> None:
        """A site that is down has its batch cluster out of service: no batch work runs, the
        jobs wait (and miss their deadlines if the repair comes too late), and the forms offer
        no batch power.  Interactive work, cooling and the UPS go on."""
        self._down = np.asarray(down, dtype=bool).copy()

    # -- queue helpers ---------------------------------------------------
    def _released(self, k: int) -> int:
        """Number of jobs (per site) that have arrived by the start of step *k*."""
        return int(np.searchsorted(self.jobs.arrival_step, k, side="right"))

    def _arrived_kwh(self, r: int) -> np.ndarray:
        return self._queue_kwh[:, r - 1] if r > 0 else np.zeros(self.n_assets)

    def _pending(self, r: int):
        """Window over each site's incomplete released jobs: (index, valid mask)."""
        width = max(r - int(self._first.min(initial=r)), 0)
        idx = self._first[:, None] + np.arange(width)[None, :]
        valid = idx < r
        return np.minimum(idx, max(self.jobs.energy_kwh.shape[1] - 1, 0)), valid

    def _cap_kwh(self, k: int) -> np.ndarray:
        """Spare IT capacity for batch work in step *k* (none at a site that is down). [kWh]"""
        return (self._cap_cum[:, k + 1] - self._cap_cum[:, k]) * ~self._down

    def _must_kwh(self, k: int, r: int, avail: np.ndarray) -> np.ndarray:
        """The deadline override: least IT work in step *k*. [kWh]"""
        idx, valid = self._pending(r)
        if idx.shape[1] == 0:
            return np.zeros(self.n_assets)
        q = np.take_along_axis(self._queue_kwh, idx, axis=1)
        d = np.maximum(np.take_along_axis(self.jobs.deadline_step, idx, axis=1), k + 1)
        later = np.take_along_axis(self._cap_cum, d, axis=1) - self._cap_cum[:, k + 1:k + 2]
        need = np.where(valid, q - self.batch_done_kwh[:, None] - later, -np.inf)
        return np.minimum(np.maximum(need.max(axis=1), 0.0), avail)

    def _complete(self, k: int, r: int) -> float:
        """Mark jobs finished during step *k*; returns the overdue work left. [kWh]"""
        idx, valid = self._pending(r)
        if idx.shape[1] == 0:
            return 0.0
        q = np.take_along_axis(self._queue_kwh, idx, axis=1)
        w = self.batch_done_kwh[:, None]
        done = valid & (q <= w + COMPLETE_TOL * np.maximum(w, 1.0))
        rows = np.broadcast_to(np.arange(self.n_assets)[:, None], idx.shape)
        self._done_step[rows[done], idx[done]] = k + 1
        self._first += done.sum(axis=1)
        e = np.take_along_axis(self.jobs.energy_kwh, idx, axis=1)
        d = np.take_along_axis(self.jobs.deadline_step, idx, axis=1)
        left = np.clip(q - w, 0.0, e)
        return float(np.where(valid & ~done & (d <= k + 1), left, 0.0).sum())

    # -- UPS -------------------------------------------------------------
    def _ups_window(self, e_kwh: np.ndarray, p_it_kw: np.ndarray):
        """Feasible UPS power (generator sign) for one step: reserve, full charge,
        rating, discharge <= IT power; a forced charge holds the reserve."""
        p_lo, p_hi = power_window(e_kwh, self.ups_reserve_kwh, self.ups_e_max_kwh, self.ups_kw, self.dt_h,
                                  self._eta_c, self._eta_d, self._sigma)
        decayed = e_kwh * np.exp(-self._sigma * self.dt_h)
        hold = np.minimum((self.ups_reserve_kwh - decayed) / (self._eta_c * self.dt_h), self.ups_kw)
        p_hi = np.where(hold > 0, -hold, np.minimum(p_hi, p_it_kw))
        return np.minimum(p_lo, p_hi), p_hi

    def _ups_step(self, request_kw: np.ndarray, p_it_kw: np.ndarray) -> np.ndarray:
        p_lo, p_hi = self._ups_window(self.ups_e_kwh, p_it_kw)
        request = np.where(np.isnan(request_kw), -self.ups_kw, request_kw)
        p = np.clip(request, p_lo, p_hi)
        self.ups_e_kwh = step_energy(self.ups_e_kwh, p, self.dt_h, self._eta_c, self._eta_d, self._sigma)
        return p

    @property
    def n_setpoints(self) -> int:
        return 2 * self.n_assets if self.params.flexible_part == "both" else self.n_assets

    # -- physics ---------------------------------------------------------
    def baseline_setpoint(self, k: int) -> np.ndarray:
        """Uncontrolled: batch work at the full spare capacity (the physics
        clips to the work available), and the UPS floating at full charge; the
        rows of the controlled part(s). [kW]"""
        rows = []
        for part in self._parts():
            if part == "batch":
                m = self.plant.marginal(self.plant.cooling_per_heat(self.exo.temp_air_c[k]))
                rows.append(-m * self._cap_kwh(k) / self.dt_h)
            else:
                rows.append(-self.ups_kw.copy())
        return np.concatenate(rows)

    def _parts(self) -> tuple[str, ...]:
        """The controlled parts, in the order of their setpoint rows."""
        part = self.params.flexible_part
        return ("batch", "ups") if part == "both" else (part,)

    def _split(self, setpoint_kw: np.ndarray) -> dict[str, np.ndarray]:
        """Setpoint rows of each part; NaN (uncontrolled) for a part not controlled."""
        n = self.n_assets
        sp = np.broadcast_to(np.asarray(setpoint_kw, dtype=float), (self.n_setpoints,))
        out = {"batch": np.full(n, np.nan), "ups": np.full(n, np.nan)}
        for j, part in enumerate(self._parts()):
            out[part] = sp[j * n:(j + 1) * n].copy()
        return out

    def _step(self, k: int, setpoint_kw: np.ndarray) -> np.ndarray:
        """Advance step *k*; returns the sites' grid power, generator sign (<= 0). [kW]"""
        dt = self.dt_h
        sp = self._split(setpoint_kw)
        c = self.plant.cooling_per_heat(self.exo.temp_air_c[k])
        m = self.plant.marginal(c)
        r = self._released(k)
        avail = np.maximum(np.minimum(self._arrived_kwh(r) - self.batch_done_kwh, self._cap_kwh(k)), 0.0)
        must = self._must_kwh(k, r, avail)
        x = np.clip(np.where(np.isnan(sp["batch"]), avail, -sp["batch"] * dt / m), must, avail)
        self._start = (k, r, c, self.batch_done_kwh, self._first.copy(), self.ups_e_kwh)
        p_ups = self._ups_step(sp["ups"], self._p_int[:, k] + x / dt)
        return self._commit(x, p_ups, np.ones(self.n_assets))

    def _commit(self, x: np.ndarray, p_ups: np.ndarray, served: np.ndarray) -> np.ndarray:
        """Finish the step from its start (``self._start``) with batch work *x*
        [IT-kWh], UPS power *p_ups* [kW] and the *served* share of the interactive
        IT load with its cooling and the fixed overhead [-]; returns grid power. [kW]"""
        k, r, c, done_kwh, _, _ = self._start
        dt, m = self.dt_h, self.plant.marginal(c)
        self.batch_done_kwh = done_kwh + x
        overdue = self._complete(k, r)
        p_int = self._p_int[:, k] * served
        p_it = p_int + x / dt
        p_fac = m * p_it + self.plant.fixed_facility_kw(c) * served
        parts = {"batch": -m * x / dt, "ups": p_ups}
        self._controllable_kw = np.concatenate([parts[p] for p in self._parts()])
        self._batch_x, self._p_ups, self._p_fac = x, p_ups, p_fac
        self._k_next = k + 1
        self._last = {
            "p_it_kw": float(p_it.sum()), "p_it_batch_kw": float(x.sum() / dt),
            "p_cooling_kw": float(self.plant.cooling_kw(p_it, c).sum()),
            "pue": float(p_fac.sum() / p_it.sum()) if p_it.sum() > 0 else float("nan"),
            "batch_backlog_kwh": float(np.maximum(self._arrived_kwh(r) - self.batch_done_kwh, 0.0).sum()),
            "batch_overdue_kwh": overdue, "ups_e_kwh": float(self.ups_e_kwh.sum()),
        }
        return p_ups - p_fac

    def _draws(self) -> tuple[np.ndarray, np.ndarray]:
        """Per site: flexible draw (batch work's facility power, UPS charging) and
        fixed draw (the rest, net of UPS discharge). [kW]"""
        batch = self.plant.marginal(self._start[2]) * self._batch_x / self.dt_h
        flexible = batch + np.maximum(-self._p_ups, 0.0)
        return flexible, self._p_fac - batch - np.maximum(self._p_ups, 0.0)

    def draw_kw(self) -> tuple[float, float]:
        """Batch work and UPS charging are flexible; interactive IT with its
        cooling and the fixed overhead (net of UPS discharge) are fixed. [kW]"""
        flexible, fixed = self._draws()
        return float(flexible.sum()), float(fixed.sum())

    def trip(self, k: int, flexible_frac: float, fixed_frac: float) -> np.ndarray:
        """Step *k* again from its start with the batch work and UPS charging cut
        by *flexible_frac* (jobs finish later) and the fixed draw by *fixed_frac*
        (interactive IT not served, with its cooling and overhead)."""
        _, _, _, _, first, ups_e = self._start
        flexible, fixed = self._draws()
        self._done_step[self._done_step == k + 1] = -1           # completions of step k, undone
        self._first = first.copy()
        x = self._batch_x * (1.0 - flexible_frac)
        p_ups = np.where(self._p_ups < 0, self._p_ups * (1.0 - flexible_frac), self._p_ups)
        self.ups_e_kwh = step_energy(ups_e, p_ups, self.dt_h, self._eta_c, self._eta_d, self._sigma)
        gross = fixed + np.maximum(p_ups, 0.0)                    # interactive load with overhead, before the UPS
        with np.errstate(divide="ignore", invalid="ignore"):
            served = np.where(gross > 0, 1.0 - fixed_frac * fixed / gross, 1.0)
        self.last_p_kw = self._commit(x, p_ups, served)
        return self.last_p_kw

    def controllable_kw(self) -> np.ndarray:
        """Last step's power of the part(s) the setpoint addresses, generator sign:
        the batch work's grid-side power (``-m x / dt``) and/or the UPS power. [kW]"""
        return self._controllable_kw.copy()

    # -- flexibility -----------------------------------------------------
    def flexibility(self, grid: HorizonGrid, forecast: Exogenous) -> list:
        """The controllable part(s) (``flexible_part``) as one StorageLike, the rest as a FixedProfile.

        With ``"both"``, the form's rows are every site's batch work, then every
        site's UPS, whose discharge is bounded by the interactive IT load alone
        (batch work the plan adds only raises what the UPS may feed).

        See the module docstring; forecasts apply ``forecast.load_error_frac``
        to interactive power and to the jobs arriving in the horizon.
        """
        k0, s_n, dt = grid.k0, grid.n_steps, grid.step_h
        err = np.zeros(s_n) if forecast.load_error_frac is None else np.asarray(forecast.load_error_frac, float)
        c = self.plant.cooling_per_heat(np.asarray(forecast.temp_air_c, dtype=float))        # (N, S)
        m = self.plant.marginal(c)
        fixed = self.plant.fixed_facility_kw(c)
        in_run = (k0 + np.arange(s_n) < self.timeline.n_steps)[None, :]
        p_int = self._p_int[:, k0:k0 + s_n] * (1.0 + err[None, :])
        cap = np.maximum(self.it_rated_kw[:, None] - p_int, 0.0) * dt * ~self._down[:, None]
        cap_run = np.where(in_run, cap, 0.0)
        avail, env, asap = self._batch_envelope(k0, s_n, err, cap, cap_run)
        parts = self._parts()
        # the uncontrolled part runs its baseline inside the fixed profile: batch work
        # as soon as possible, the UPS floating at full charge
        p_it = p_int if "batch" in parts else p_int + np.diff(asap, axis=1) / dt
        profile = -(m * p_it + fixed)
        if "ups" not in parts:
            profile = profile + self._ups_baseline_path(p_int)
        forms = []                                  # in the order of the setpoint rows
        if "batch" in parts:
            forms.append(self._batch_form(grid, m, cap_run, avail, env, asap))
        if "ups" in parts:
            forms.append(self._ups_form(grid, p_it, in_run))
        rest = FixedProfile(fleet=self.name, node=self.node, p_kw=grid.mean(profile.sum(axis=0)))
        return [StorageLike.stack(*forms), rest]

    def _batch_form(self, grid: HorizonGrid, m, cap_run, avail, env, asap) -> StorageLike:
        """Batch work as a StorageLike: energy = IT work done in the horizon (module docstring)."""
        n, k0, s_n, dt = self.n_assets, grid.k0, grid.n_steps, grid.step_h
        ends = grid.starts + grid.steps_per_block
        # A horizon reaching the run's end asks for the work the baseline
        # would have done by then, so deferral cannot leave work undone at the end.
        last_in_run = self.timeline.n_steps - k0
        target = asap[:, last_in_run] if last_in_run < s_n else env[:, s_n]
        return StorageLike(
            fleet=self.name, node=self.node,
            p_charge_max_kw=np.minimum.reduceat(cap_run * m / dt, grid.starts, axis=1),
            p_discharge_max_kw=np.zeros((n, grid.n_blocks)),
            e_min_kwh=env[:, ends], e_max_kwh=avail[:, ends - 1],
            e_init_kwh=np.zeros(n), e_target_kwh=target,
            eta_charge=grid.mean(1.0 / m), eta_discharge=np.ones(n),
            self_discharge_per_h=np.zeros(n),
            shortfall_cost_cny_per_kwh=np.full(n, self.params.deadline_cost_cny_per_kwh),
            throughput_cost_cny_per_kwh=np.zeros(n))

    def _batch_envelope(self, k0: int, s_n: int, err: np.ndarray, cap: np.ndarray, cap_run: np.ndarray):
        """Work available during each step (N, S), the deadline envelope
        ``min(L, U)`` and the as-soon-as-possible path ``U`` at each boundary
        (N, S + 1), all relative to the work done before step *k0*. [kWh]"""
        n = self.n_assets
        w0 = self.batch_done_kwh
        r0 = int(np.searchsorted(self.jobs.arrival_step, k0, side="left"))   # arrived before step k0
        r1 = int(np.searchsorted(self.jobs.arrival_step, k0 + s_n, side="left"))
        arr = self.jobs.arrival_step[r0:r1] - k0                 # future jobs, relative arrival
        e_future = self.jobs.energy_kwh[:, r0:r1] * (1.0 + err[arr])[None, :]
        q_future = (self._arrived_kwh(r0) - w0)[:, None] + np.cumsum(e_future, axis=1)
        cum = np.concatenate([np.zeros((n, 1)), np.cumsum(e_future, axis=1)], axis=1)
        counts = np.searchsorted(arr, np.arange(s_n), side="right")
        avail = np.maximum((self._arrived_kwh(r0) - w0)[:, None] + cum[:, counts], 0.0)     # (N, S)
        # deadlines: pending (actual queue positions) and future (forecast) jobs
        idx, valid = self._pending(r0)
        q = np.concatenate([np.take_along_axis(self._queue_kwh, idx, axis=1) - w0[:, None], q_future], axis=1)
        d = np.concatenate([np.take_along_axis(self.jobs.deadline_step, idx, axis=1),
                            self.jobs.deadline_step[:, r0:r1]], axis=1) - k0
        valid = np.concatenate([valid, np.ones(q_future.shape, dtype=bool)], axis=1)
        s_ext = int(min(max(s_n, int(d[valid].max(initial=0))), self._p_int.shape[1] - k0))
        required = np.full((n, s_ext + 1), -np.inf)
        rows = np.broadcast_to(np.arange(n)[:, None], d.shape)
        np.maximum.at(required, (rows[valid], np.clip(d[valid], 1, s_ext)), q[valid])
        required = np.maximum(np.maximum.accumulate(required, axis=1), 0.0)
        beyond = self._p_int[:, k0 + s_n:k0 + s_ext] * (1.0 + err[-1])
        cap_ext = np.concatenate([cap, np.maximum(self.it_rated_kw[:, None] - beyond, 0.0) * self.dt_h], axis=1)
        latest = latest_envelope(required, cap_ext)[:, :s_n + 1]
        asap = asap_path(avail, cap_run)
        return avail, np.minimum(latest, asap), asap

    def _ups_baseline_path(self, p_it_kw: np.ndarray) -> np.ndarray:
        """UPS power when floating at full charge over the horizon (N, S). [kW]"""
        e = self.ups_e_kwh.copy()
        out = np.zeros_like(p_it_kw)
        if not self.ups_kw.any():
            return out
        for s in range(p_it_kw.shape[1]):
            p_lo, p_hi = self._ups_window(e, p_it_kw[:, s])
            out[:, s] = np.clip(-self.ups_kw, p_lo, p_hi)
            e = step_energy(e, out[:, s], self.dt_h, self._eta_c, self._eta_d, self._sigma)
        return out

    def _ups_form(self, grid: HorizonGrid, p_it_kw: np.ndarray, in_run: np.ndarray) -> StorageLike:
        n, h, p = self.n_assets, grid.n_blocks, self.params
        block_in_run = (grid.k0 + grid.starts < self.timeline.n_steps)[None, :]
        dis = np.minimum.reduceat(np.where(in_run, np.minimum(self.ups_kw[:, None], p_it_kw), 0.0),
                                  grid.starts, axis=1)
        full = np.ones((n, h))
        return StorageLike(
            fleet=self.name, node=self.node,
            p_charge_max_kw=full * block_in_run * self.ups_kw[:, None], p_discharge_max_kw=dis,
            e_min_kwh=full * self.ups_reserve_kwh[:, None], e_max_kwh=full * self.ups_e_max_kwh[:, None],
            e_init_kwh=self.ups_e_kwh.copy(), e_target_kwh=self.ups_e_max_kwh.copy(),
            eta_charge=self._eta_c.copy(), eta_discharge=self._eta_d.copy(),
            self_discharge_per_h=self._sigma[:, None] * block_in_run,      # the target binds at the run's end
            shortfall_cost_cny_per_kwh=np.full(n, p.ups_shortfall_cost_cny_per_kwh),
            throughput_cost_cny_per_kwh=np.full(n, p.ups_throughput_cost_cny_per_kwh))

    # -- records ---------------------------------------------------------
    def state(self) -> dict[str, float]:
        """After the last step: IT power (total and batch), cooling power [kW],
        PUE of the fleet, batch work arrived but not done and of it the part
        past its deadline [IT-kWh], UPS energy [kWh]."""
        return dict(self._last)

    def info(self) -> dict[str, float]:
        """Rated facility power (rated IT x PUE at design) [kW], rated IT power
        [kW], UPS capacity [kWh], batch jobs and their IT energy [kWh]."""
        return {"p_rated_kw": float((self.it_rated_kw * self.pue_design).sum()),
                "it_rated_kw": float(self.it_rated_kw.sum()),
                "ups_capacity_kwh": float(self.ups_e_max_kwh.sum()),
                "batch_jobs": float(self.jobs.energy_kwh.size),
                "batch_energy_kwh": float(self.jobs.energy_kwh.sum())}

    def tables(self) -> dict[str, pd.DataFrame]:
        """``datacentre_jobs``: one row per batch job.

        Columns: ``site``; ``arrival``, ``deadline`` and ``completed``
        (tz-aware step boundaries; NaT while incomplete); ``energy_kwh`` and
        ``done_kwh`` [IT-kWh]; ``on_time`` (nullable: NA while incomplete and
        not yet due).
        """
        n, n_jobs = self.jobs.energy_kwh.shape
        step_s, start = self.timeline.step_s, self.timeline.start

        def at(steps):
            return start + pd.to_timedelta(np.asarray(steps) * step_s, unit="s")

        done = self._done_step.ravel()
        deadline = self.jobs.deadline_step.ravel()
        finished = done >= 0
        on_time = pd.array(np.where(finished, done <= deadline, False), dtype="boolean")
        on_time[~finished & (deadline > self._k_next)] = pd.NA
        q = self._queue_kwh
        done_kwh = np.clip(self.batch_done_kwh[:, None] - (q - self.jobs.energy_kwh), 0.0, self.jobs.energy_kwh)
        return {"datacentre_jobs": pd.DataFrame({
            "site": np.repeat(np.arange(n), n_jobs),
            "arrival": at(np.tile(self.jobs.arrival_step, n)),
            "deadline": at(deadline),
            "completed": at(np.where(finished, done, 0)).where(finished),
            "energy_kwh": self.jobs.energy_kwh.ravel(),
            "done_kwh": np.where(finished, self.jobs.energy_kwh.ravel(), done_kwh.ravel()),
            "on_time": on_time,
        })}
