"""Adjustable industrial loads: a scheduled process load with one flexible process per site.

Each asset is one industrial site.  Its demand at full production is
``p_site_kw``; a share ``flexible_share`` of it is flexible (``docs/SOURCES.md``
default: 20 sites x 5 MW, 15 % shiftable).  The flexible part is one of two
kinds, fixed per site when the fleet is created (``curtailable_site_share`` of
the sites, drawn at random, are *curtailable*; the others are *batch* sites):

Base process load (every site)
------------------------------
``p_base = (1 - phi) P f(t) (1 + n_t)``, with ``f`` the shift schedule
(:data:`SHIFT_SCHEDULES`: three- or two-shift operation on weekdays, reduced at
weekends; assumption-grade shapes) and ``n_t`` a small AR(1) deviation drawn
from the fleet's own random stream.  It is not controllable and is offered as
a :class:`~vpp.flex.FixedProfile`: forecast by its conditional mean, or, with a
perfect forecast, by the deviations still to be drawn (drawn ahead, in step
order, so the run is the same either way).

Shiftable process batches (batch sites)
---------------------------------------
One batch per site and local day.  Its earliest start, window length and
duration are drawn per site and day (``earliest_start_h``, ``window_h``,
``duration_h``; assumptions); its energy is the flexible share of the day's
scheduled energy, ``E = phi P sum_h f(h) x factor`` (``batch_energy_factor``),
so a full-production site spends ``phi`` of its energy in batches.  On the step
grid the batch may run during ``a .. d-1`` (earliest start rounded up, latest
finish rounded down and never past the next day's release), needs ``m``
steps at its rated power ``R = E / (m dt)``, and is *interruptible and
modulating*: any mean power in ``[0, R]`` per step inside the window, until
``E`` is processed.  That is the preemptive, rate-limited job of the
deferrable-load literature (e.g. Subramanian et al., "Real-time scheduling of
distributed resources", IEEE Trans. Smart Grid 4(4), 2013,
pp. 2122-2130, doi:10.1109/TSG.2013.2262508); furnaces that must not be interrupted once
started are not modelled.  The physics overrides a request that would miss the
latest finish (the laxity rule, :func:`batch_power_kw`), so a batch always
gets its energy: its window holds at least ``m`` steps.
Uncontrolled, a batch starts at its earliest start at rated power.

Curtailable share with rebound (curtailable sites)
--------------------------------------------------
A continuous process of nominal power ``c(t) = phi P f(t)`` (no noise: the
site knows its own process rate) may be curtailed by up to ``c(t)``; what is
curtailed must be made up later with more energy, ``rebound_factor`` ``r >= 1``
grid kWh per kWh curtailed (the "payback" or load recovery after demand
response, e.g. Zerrahn & Schill, "On the representation of demand-side
management in power system models", Energy 84, pp. 840-845, 2015, on DSM
recovery; the factor itself is an assumption).  The
energy owed (in curtailed kWh) is at most ``curtail_max_h`` hours of full
curtailment (a limited curtailment duration, expressed as energy), the
make-up power is at most ``rebound_p_max_frac`` of ``phi P``, and everything
owed must be made up by the next *rebound deadline* (local clock times,
default the shift changes 06, 14 and 22 h: production lost in a shift is made
up within that shift; assumption).  Fixed clock deadlines are what a
storage-like form can represent exactly -- a periodic balancing constraint, as
in PowerSystems.jl's ``ShiftablePowerLoad`` (``load_balance_time_horizon``);
a rolling recovery time per curtailed kWh (Zerrahn & Schill's delay
formulation) is not storage-like.

This is a virtual store of energy ``e = e_max - owed``: curtailing is a
discharge (``e -= pd dt``, consumption drops, generator-sign power rises),
making up is a charge with efficiency ``1 / r`` (``e += pc dt / r``).  The
physics keeps ``e`` above the rebound envelope
``env(t) = max(0, e_max - (R_r / r) dt (D(t) - t))`` (``D(t)``: the next
deadline step, ``R_r`` the make-up power limit): it refuses curtailment below
the envelope and forces make-up when the energy would fall below it, so the
owed energy is zero at every deadline.  (While anything is owed, make-up may
overshoot it by 1e-6 of the store, which is lost: solver noise in a plan that
ends exactly at "nothing owed".)  Uncontrolled sites do not curtail.

Flexibility
-----------
One :class:`~vpp.flex.StorageLike` form with one row per site, whose meaning
depends on the site's kind: a batch site's row is the energy processed for its
current batch (or, if none is active, the next one released within the
horizon), with the power limit ``R`` inside the window, the laxity envelope as
lower bound and the batch energy as target; a curtailable site's row is the
virtual store above, with the rebound envelope as lower bound and "nothing
owed" as target.  Both are exact: a schedule inside the form is what the
physics delivers (with one-step blocks; coarse blocks bound block means).
Blocks after the end of the run still offer power, as the batches and shifts
go on.  *Why one kind per site*: the optimizer returns one setpoint
row per asset, and a site with both a batch store and a curtailment store
would need two controllable rows (two forms for one fleet), whose setpoints
the current strategies cannot route to one fleet.  The setpoint of a site is
its flexible power, generator sign: ``-p_batch`` at batch sites,
``p_curtailed - p_rebound`` at curtailable sites.

Outages
-------
A site that is down (``[outages.NAME]``, :mod:`vpp.outages`) has stopped
production, a breakdown or a process trip: it draws nothing (auxiliary loads
are neglected), its batch makes no progress and misses its latest finish if
the repair comes too late (``batch_energy_unserved_kwh``), and a curtailable
site neither curtails nor makes up, so what it owes waits for the repair.
Production lost while down is not owed: it is lost, not deferred; the base
load not drawn is recorded (``p_lost_kw``, the ``production_lost_kwh`` KPI).  The
strategy sees the site with no power and no base load over its horizon.

Sign: generator convention; a site's power is returned negative (consumption).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator
from scipy.signal import lfilter

from vpp.assets import register
from vpp.assets.base import Fleet, FleetContext, FleetParams
from vpp.exogenous.series import Exogenous
from vpp.flex import FixedProfile, HorizonGrid, StorageLike
from vpp.params import Normal, Uniform, ranged, sample
from vpp.timeline import Timeline

__all__ = [
    "SHIFT_SCHEDULES",
    "IndustryParams",
    "IndustryFleet",
    "Batches",
    "draw_batches",
    "batch_power_kw",
    "rebound_envelope_kwh",
    "curtail_power_window",
]

#: Process load as a fraction of full production, by local hour (weekday,
#: weekend).  Three shifts: continuous, small dips at the shift changes (06, 14,
#: 22 h), weekends at 60 %.  Two shifts: 06-22 h, auxiliaries at night and at
#: weekends.  Assumption-grade shapes of continuous and two-shift industrial
#: operation, to be calibrated to metered Shanghai sites.
SHIFT_SCHEDULES: dict[str, dict[str, tuple[float, ...]]] = {
    "three_shift": {
        "weekday": (0.90, 0.90, 0.90, 0.90, 0.90, 0.90, 0.85, 1.00, 1.00, 1.00, 1.00, 1.00,
                    1.00, 1.00, 0.90, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 0.85, 0.90),
        "weekend": (0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.50, 0.60, 0.60, 0.60, 0.60, 0.60,
                    0.60, 0.60, 0.55, 0.60, 0.60, 0.60, 0.60, 0.60, 0.60, 0.60, 0.50, 0.55),
    },
    "two_shift": {
        "weekday": (0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.80, 1.00, 1.00, 1.00, 1.00, 1.00,
                    1.00, 1.00, 0.90, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 0.80, 0.35, 0.35),
        "weekend": (0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30,
                    0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30),
    },
}

_NO_DEADLINE = 10**9  # steps: "no rebound deadline ahead"
_DONE_TOL_KWH = 1e-9  # a batch with less left than this is finished
# Make-up may exceed what is owed by this fraction of the store (and the excess
# is lost): an interior-point plan nets small simultaneous curtailment and
# make-up, which a lossy store (r > 1) books slightly differently from their
# net, so a plan that ends exactly at "nothing owed" would otherwise be clipped
# by ~1e-7 of the store in its last step.
_MAKEUP_TOL_FRAC = 1e-6


class IndustryParams(FleetParams):
    """Parameters of an industrial-site fleet (``type = "industry"``; per site, distributions allowed).

    Parameters
    ----------
    p_site_kw : float or distribution
        Site demand at full production (schedule factor 1), base and flexible
        process together. [kW]
    shift_pattern : {"three_shift", "two_shift"}
        Base schedule (:data:`SHIFT_SCHEDULES`).
    flexible_share : float or distribution
        Share ``phi`` of the site's scheduled energy that is flexible: in
        batches (batch sites) or curtailable (curtailable sites). [-]
    curtailable_site_share : float
        Share of the sites whose flexible process is curtailable rather than
        batch (rounded to whole sites). [-]
    base_noise_frac, base_noise_h : float
        Standard deviation [-] and correlation time [h] of the AR(1) deviation
        of the base load from its schedule.
    earliest_start_h, window_h, duration_h : float or distribution
        Batch release (local hour), window from release to latest finish, and
        time needed at rated power, drawn per site and day. [h]
    batch_energy_factor : float or distribution
        Day-to-day variation of the batch energy around its share. [-]
    batch_unserved_cost_cny_per_kwh : float
        Penalty the optimizer puts on batch energy not processed by the
        horizon's end (or the batch's latest finish). [CNY/kWh]
    curtail_max_h : float or distribution
        Energy that may be owed, in hours of curtailing the whole flexible
        share. [h]
    rebound_factor : float or distribution
        Grid energy needed to make up one kWh curtailed (>= 1). [-]
    rebound_p_max_frac : float or distribution
        Make-up power limit as a fraction of ``phi P``. [-]
    rebound_deadlines_h : tuple of float
        Local times by which everything owed is made up. [h]
    curtail_cost_cny_per_kwh : float
        Production-disruption cost per kWh curtailed or made up. [CNY/kWh]
    owed_shortfall_cost_cny_per_kwh : float
        Penalty on energy still owed at the horizon's end. [CNY/kWh]
    """

    p_site_kw: ranged(gt=0, le=1e6) = 5_000.0         # docs/SOURCES.md: 20 sites x 5 MW
    shift_pattern: Literal["three_shift", "two_shift"] = "three_shift"   # assumption
    flexible_share: ranged(ge=0, le=0.95) = 0.15      # docs/SOURCES.md: 15 % shiftable
    curtailable_site_share: float = Field(0.25, ge=0, le=1)             # assumption
    base_noise_frac: float = Field(0.03, ge=0, le=0.3)                  # assumption
    base_noise_h: float = Field(1.0, gt=0)                              # assumption
    # Batch windows: released at the morning shift start, due by the early
    # morning after (so a batch can reach the night valley), 6-10 h of work.
    earliest_start_h: ranged(ge=0, le=24) = Uniform(dist="uniform", low=6.0, high=9.0)   # assumption
    window_h: ranged(gt=0, le=48) = Uniform(dist="uniform", low=14.0, high=20.0)         # assumption
    duration_h: ranged(gt=0, le=48) = Uniform(dist="uniform", low=6.0, high=10.0)        # assumption
    batch_energy_factor: ranged(ge=0) = Normal(dist="normal", mean=1.0, std=0.1, low=0.7, high=1.3)
    batch_unserved_cost_cny_per_kwh: float = Field(5.0, ge=0)          # assumption (as EVs)
    curtail_max_h: ranged(ge=0) = 2.0                                   # assumption
    rebound_factor: ranged(ge=1, le=3) = 1.1                           # assumption
    rebound_p_max_frac: ranged(ge=0) = 0.5                              # assumption
    rebound_deadlines_h: tuple[float, ...] = (6.0, 14.0, 22.0)         # three-shift changes (assumption)
    curtail_cost_cny_per_kwh: float = Field(0.05, ge=0)                # assumption
    owed_shortfall_cost_cny_per_kwh: float = Field(5.0, ge=0)          # assumption

    @field_validator("rebound_deadlines_h")
    @classmethod
    def _local_hours(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 <= h < 24.0 for h in v):
            raise ValueError("every deadline must be a local time in [0, 24) hours")
        return tuple(sorted(set(v)))


# -- pure physics -------------------------------------------------------------------


def batch_power_kw(request_kw, left_kwh, steps_left, rated_kw, dt_h):
    """Processing power of active batches over one step.

    ``p = clip(request, p_must, p_max_now)`` with ``p_max_now = min(R, L / dt)``
    (rating ``R``, energy left ``L``) and the laxity override
    ``p_must = min(max(0, L - R dt (s - 1)) / dt, p_max_now)``: the least power
    that still lets full power in the ``s - 1`` remaining steps finish the batch.

    Parameters
    ----------
    request_kw : ndarray
        Requested processing power (>= 0; NaN is read as 0). [kW]
    left_kwh : ndarray
        Batch energy still to process (0 where no batch is active). [kWh]
    steps_left : ndarray of int
        Steps until the latest finish, this one included. [-]
    rated_kw : ndarray
        Rated power ``R``. [kW]
    dt_h : float
        Step length. [h]

    Returns
    -------
    ndarray
        Processing power, >= 0 (consumption). [kW]

    References
    ----------
    Laxity as in Y. Xu, F. Pan and L. Tong, "Dynamic Scheduling for Charging
    Electric Vehicles: A Priority Rule", IEEE Trans. Automatic Control 61(12),
    2016, pp. 4094-4099, doi:10.1109/TAC.2016.2541305.
    """
    left = np.maximum(np.asarray(left_kwh, dtype=float), 0.0)
    p_max_now = np.minimum(rated_kw, left / dt_h)
    later_kwh = rated_kw * dt_h * np.maximum(np.asarray(steps_left) - 1, 0)
    p_must = np.minimum(np.maximum(left - later_kwh, 0.0) / dt_h, p_max_now)
    request = np.nan_to_num(np.asarray(request_kw, dtype=float), nan=0.0)
    return np.clip(request, p_must, p_max_now)


def rebound_envelope_kwh(e_max_kwh, rebound_p_max_kw, rebound_factor, dt_h, steps_to_deadline):
    """Least store energy from which everything owed can still be made up by the deadline.

    ``env = max(0, e_max - (R_r / r) dt s)`` with ``s`` steps until the deadline:
    full make-up power ``R_r`` raises the store by ``R_r dt / r`` per step.

    Parameters
    ----------
    e_max_kwh : array_like
        Store capacity (largest energy that may be owed). [kWh]
    rebound_p_max_kw : array_like
        Make-up power limit ``R_r`` (grid side). [kW]
    rebound_factor : array_like
        Grid kWh per curtailed kWh made up, ``r >= 1``. [-]
    dt_h : float
        Step length. [h]
    steps_to_deadline : array_like of int
        Steps from this instant to the next deadline (0 at a deadline). [-]

    Returns
    -------
    ndarray
        Lower bound of the store energy at this instant. [kWh]
    """
    gain = np.asarray(rebound_p_max_kw) / np.asarray(rebound_factor) * dt_h
    return np.maximum(np.asarray(e_max_kwh) - gain * np.asarray(steps_to_deadline), 0.0)


def curtail_power_window(e_kwh, e_lo_next_kwh, e_max_kwh, c_nom_kw, rebound_p_max_kw,
                         rebound_factor, dt_h, makeup_tol_kwh=0.0):
    """Feasible flexible power of a curtailable site over one step, generator sign.

    Store ``e = e_max - owed``; curtailing ``q > 0`` gives ``e' = e - q dt``,
    making up ``q < 0`` gives ``e' = e + |q| dt / r``.  The window keeps
    ``e_lo_next <= e' <= e_max`` with ``q <= c_nom`` and ``-q <= R_r``; if ``e``
    is below ``e_lo_next`` the upper end is negative (a forced make-up).  While
    anything is owed, make-up may exceed it by ``makeup_tol_kwh`` (solver
    noise; the caller drops the excess from the books).

    Parameters
    ----------
    e_kwh : array_like
        Store energy at the start of the step. [kWh]
    e_lo_next_kwh : array_like
        Rebound envelope at the end of the step. [kWh]
    e_max_kwh : array_like
        Store capacity. [kWh]
    c_nom_kw : array_like
        Nominal power of the curtailable process this step (curtailment limit). [kW]
    rebound_p_max_kw : array_like
        Make-up power limit. [kW]
    rebound_factor : array_like
        ``r >= 1``. [-]
    dt_h : float
        Step length. [h]
    makeup_tol_kwh : array_like, optional
        Make-up allowed beyond what is owed, while something is owed. [kWh]

    Returns
    -------
    (q_lo, q_hi) : tuple of ndarray
        Most make-up (negative) and most curtailment the step allows. [kW]
    """
    e = np.asarray(e_kwh, dtype=float)
    r = np.asarray(rebound_factor, dtype=float)
    slack = e - np.asarray(e_lo_next_kwh)
    q_hi = np.where(slack >= 0.0, np.minimum(slack / dt_h, c_nom_kw), slack * r / dt_h)
    owed = np.maximum(np.asarray(e_max_kwh) - e, 0.0)
    room = np.where(owed > 0.0, owed + makeup_tol_kwh, 0.0)
    q_lo = -np.minimum(rebound_p_max_kw, room * r / dt_h)
    return q_lo, np.maximum(q_hi, q_lo)


# -- batches ------------------------------------------------------------------------


class Batches:
    """One batch per site and local day on the step grid, arrays of shape (N, D).

    Attributes
    ----------
    release, deadline : ndarray of int
        First step the batch may run and the step at whose start it must be
        done (``deadline > release``; consecutive batches of a site do not
        overlap).  Negative for days before the start.
    steps_needed : ndarray of int
        Steps at rated power, ``1 <= m <= deadline - release``.
    energy_kwh : ndarray
        Batch energy ``E`` (zero at curtailable sites). [kWh]
    rated_kw : ndarray
        ``R = E / (m dt)``. [kW]
    requested_kwh : ndarray
        Energy asked of the simulation: ``E``, or for a batch released before
        the start what uncontrolled running at ``R`` since its release left;
        zero for batches due by the start. [kWh]
    """

    def __init__(self, release, deadline, steps_needed, energy_kwh, rated_kw, requested_kwh):
        self.release, self.deadline, self.steps_needed = release, deadline, steps_needed
        self.energy_kwh, self.rated_kw, self.requested_kwh = energy_kwh, rated_kw, requested_kwh

    @property
    def carried_in(self) -> np.ndarray:
        """Batches released before the start and still due after it."""
        return (self.release < 0) & (self.deadline > 0)


def _local_midnights(timeline: Timeline, before: int, after: int) -> pd.DatetimeIndex:
    """Local midnights from *before* days before the start's date to *after* days
    after the last padded step's date."""
    tz = timeline.start.tz
    first = timeline.start.tz_localize(None).normalize() - pd.Timedelta(days=before)
    last_step = timeline.start + pd.Timedelta(seconds=(timeline.n_total - 1) * timeline.step_s)
    last = last_step.tz_localize(None).normalize() + pd.Timedelta(days=after)
    days = pd.date_range(first, last, freq="D")
    return days.tz_localize(tz, ambiguous=np.zeros(len(days), dtype=bool), nonexistent="shift_forward")


def draw_batches(params: IndustryParams, p_site_kw: np.ndarray, flexible_share: np.ndarray,
                 is_batch_site: np.ndarray, timeline: Timeline, rng: np.random.Generator) -> Batches:
    """Draw every site's daily batch from the day before the start to the padded end.

    Parameters
    ----------
    params : IndustryParams
        Batch distributions and shift schedule.
    p_site_kw, flexible_share : ndarray, shape (N,)
        Site full-production demand [kW] and flexible share [-].
    is_batch_site : ndarray of bool, shape (N,)
        Sites whose flexible process is batch (others get zero energy).
    timeline : Timeline
        Simulated and padding steps.
    rng : numpy.random.Generator
        The fleet's random stream.

    Returns
    -------
    Batches
    """
    days = _local_midnights(timeline, before=1, after=0)
    n, n_days = p_site_kw.size, len(days)
    step_s, dt_h = timeline.step_s, timeline.dt_h
    start_h = sample(params.earliest_start_h, rng, n * n_days).reshape(n, n_days)
    window_h = sample(params.window_h, rng, n * n_days).reshape(n, n_days)
    duration_h = sample(params.duration_h, rng, n * n_days).reshape(n, n_days)
    factor = sample(params.batch_energy_factor, rng, n * n_days).reshape(n, n_days)

    day_s = np.asarray((days - timeline.start) / pd.Timedelta(seconds=1), dtype=float)[None, :]
    release_s = day_s + 3600.0 * start_h
    release = np.ceil(release_s / step_s - 1e-9).astype(np.int64)
    deadline = np.floor((release_s + 3600.0 * window_h) / step_s + 1e-9).astype(np.int64)
    deadline[:, :-1] = np.minimum(deadline[:, :-1], release[:, 1:])     # never past the next release
    deadline = np.maximum(deadline, release + 1)
    needed = np.clip(np.ceil(3600.0 * duration_h / step_s - 1e-9).astype(np.int64), 1, deadline - release)

    sched = SHIFT_SCHEDULES[params.shift_pattern]
    weekend = np.asarray(days.day_of_week >= 5)
    day_energy_h = np.where(weekend, sum(sched["weekend"]), sum(sched["weekday"]))   # sum of f over 24 h
    energy = (flexible_share * p_site_kw * is_batch_site)[:, None] * day_energy_h[None, :] * factor
    rated = energy / (needed * dt_h)
    before_start = np.minimum(rated * dt_h * np.maximum(-release, 0), energy)
    requested = np.where(deadline > 0, energy - before_start, 0.0)
    return Batches(release, deadline, needed, energy, rated, requested)


# -- the fleet ----------------------------------------------------------------------


@register
class IndustryFleet(Fleet):
    """N industrial sites; see the module docstring.

    Sign: generator convention; site power is returned negative.
    """

    type_name = "industry"
    Params = IndustryParams
    role = "load"
    green = False
    curtailable = False
    state_columns = ("p_base_kw", "p_batch_kw", "p_curtailed_kw", "p_rebound_kw", "owed_kwh",
                     "batch_energy_unserved_kwh", "p_lost_kw")

    def __init__(self, ctx: FleetContext, params: IndustryParams):
        super().__init__(ctx, params)
        n, p, rng, tl = self.n_assets, params, self.rng, self.timeline
        self.p_site_kw = sample(p.p_site_kw, rng, n)
        self.flexible_share = sample(p.flexible_share, rng, n)
        self.is_curtailable = np.zeros(n, dtype=bool)
        self.is_curtailable[rng.permutation(n)[: int(round(p.curtailable_site_share * n))]] = True
        flex_kw = self.flexible_share * self.p_site_kw * self.is_curtailable   # phi P, curtailable sites
        self.rebound_factor = sample(p.rebound_factor, rng, n)
        self.rebound_p_max_kw = sample(p.rebound_p_max_frac, rng, n) * flex_kw
        self.owed_max_kwh = sample(p.curtail_max_h, rng, n) * flex_kw
        self.batches = draw_batches(p, self.p_site_kw, self.flexible_share, ~self.is_curtailable, tl, rng)

        index = tl.padded_index
        sched = SHIFT_SCHEDULES[p.shift_pattern]
        hour = index.hour.to_numpy()
        self._frac = np.where(index.day_of_week.to_numpy() >= 5, np.asarray(sched["weekend"])[hour],
                              np.asarray(sched["weekday"])[hour])           # f per padded step
        self._next_deadline = self._deadline_steps(p.rebound_deadlines_h)  # per boundary 0..n_total
        self._base_unc_kw = (1.0 - self.flexible_share) * self.p_site_kw    # uncontrollable at f = 1
        self._c_nom_kw = flex_kw                                             # curtailable at f = 1
        self._phi = np.exp(-self.dt_h / p.base_noise_h)
        self._noise = rng.normal(0.0, p.base_noise_frac, n)
        self._ahead = np.empty((0, n))               # innovations drawn for the coming steps

        self._rows = np.arange(n)
        self._ptr = np.zeros(n, dtype=np.int64)       # each site's current-or-next batch
        self._done_kwh = np.zeros_like(self.batches.energy_kwh)
        self.owed_kwh = np.zeros(n)
        self._unserved_pending_kwh = 0.0
        self.p_base_kw = np.zeros(n)
        self.p_batch_kw = np.zeros(n)
        self.p_curtailed_kw = np.zeros(n)
        self.p_rebound_kw = np.zeros(n)
        self.p_lost_kw = np.zeros(n)
        self._last_unserved_kwh = 0.0
        self._down = np.zeros(n, dtype=bool)          # sites out of production (vpp.outages)

    def set_outage(self, down: np.ndarray) -> None:
        """A site that is down has stopped production (a breakdown or a process trip): it
        draws nothing, its batch waits (and misses its latest finish if the repair comes
        too late: unserved batch energy), and what it owes waits for the repair; its forms
        offer no power and no base load."""
        self._down = np.asarray(down, dtype=bool).copy()

    def _deadline_steps(self, hours: tuple[float, ...]) -> np.ndarray:
        """Next rebound-deadline boundary at or after each boundary ``0 .. n_total``."""
        tl = self.timeline
        boundaries = np.arange(tl.n_total + 1)
        if not hours:
            return np.full(boundaries.size, _NO_DEADLINE, dtype=np.int64)
        days = _local_midnights(tl, before=1, after=2)
        day_s = np.asarray((days - tl.start) / pd.Timedelta(seconds=1), dtype=float)
        s = (day_s[:, None] + 3600.0 * np.asarray(hours)[None, :]).ravel()
        steps = np.unique(np.ceil(s / tl.step_s - 1e-9).astype(np.int64))
        i = np.searchsorted(steps, boundaries, side="left")
        out = np.full(boundaries.size, _NO_DEADLINE, dtype=np.int64)
        ok = i < steps.size
        out[ok] = steps[i[ok]]
        return out

    def _envelope(self, boundary) -> np.ndarray:
        """Rebound envelope [kWh] at boundaries (scalar -> (N,), (H,) -> (N, H))."""
        b = np.asarray(boundary)
        to_go = self._next_deadline[b] - b
        if b.ndim == 0:
            return rebound_envelope_kwh(self.owed_max_kwh, self.rebound_p_max_kw, self.rebound_factor,
                                        self.dt_h, to_go)
        return rebound_envelope_kwh(self.owed_max_kwh[:, None], self.rebound_p_max_kw[:, None],
                                    self.rebound_factor[:, None], self.dt_h, to_go[None, :])

    # -- physics ---------------------------------------------------------------
    def _advance_batches(self, k: int) -> None:
        """Move each site past batches due by step *k*, recording energy left unprocessed."""
        b, n_days = self.batches, self.batches.deadline.shape[1]
        while True:
            j = np.minimum(self._ptr, n_days - 1)
            due = (self._ptr < n_days) & (b.deadline[self._rows, j] <= k)
            if not due.any():
                return
            i = np.flatnonzero(due)
            left = b.requested_kwh[i, j[i]] - self._done_kwh[i, j[i]]
            self._unserved_pending_kwh += float(np.maximum(left, 0.0).sum())
            self._ptr[i] += 1

    def _step(self, k: int, setpoint_kw: np.ndarray) -> np.ndarray:
        """Physics of step *k*: base load, batch processing, curtailment and make-up.

        Returns generator-sign site power (<= 0). [kW]
        """
        q = np.nan_to_num(np.broadcast_to(np.asarray(setpoint_kw, dtype=float), (self.n_assets,)),
                          nan=0.0)
        b, rows = self.batches, self._rows
        self._advance_batches(k)
        j = np.minimum(self._ptr, b.deadline.shape[1] - 1)
        active = (self._ptr < b.deadline.shape[1]) & (b.release[rows, j] <= k) & (b.deadline[rows, j] > k)
        left = np.where(active, b.requested_kwh[rows, j] - self._done_kwh[rows, j], 0.0)
        p_batch = batch_power_kw(-q, left, np.where(active, b.deadline[rows, j] - k, 0),
                                 b.rated_kw[rows, j], self.dt_h) * ~self._down
        self._done_kwh[rows, j] += p_batch * self.dt_h
        self._batch_j = j

        f = self._frac[k]
        c_nom = self._c_nom_kw * f
        e = self.owed_max_kwh - self.owed_kwh
        q_lo, q_hi = curtail_power_window(e, self._envelope(k + 1), self.owed_max_kwh, c_nom,
                                          self.rebound_p_max_kw, self.rebound_factor, self.dt_h,
                                          _MAKEUP_TOL_FRAC * self.owed_max_kwh)
        q_c = np.where(self._down, 0.0, np.clip(q, q_lo, q_hi))
        p_curt, p_reb = np.maximum(q_c, 0.0), np.maximum(-q_c, 0.0)
        self._owed_start = self.owed_kwh
        self.owed_kwh = self._owed_after(p_curt, p_reb)

        scheduled = self._base_unc_kw * f * np.maximum(1.0 + self._noise, 0.0) + c_nom
        base = scheduled * ~self._down
        self.p_lost_kw = scheduled - base
        self.p_base_kw, self.p_batch_kw = base, p_batch
        self.p_curtailed_kw, self.p_rebound_kw = p_curt, p_reb
        self._last_unserved_kwh, self._unserved_pending_kwh = self._unserved_pending_kwh, 0.0
        self._advance_noise()
        return -(base + p_batch - p_curt + p_reb)

    def _owed_after(self, p_curt: np.ndarray, p_reb: np.ndarray) -> np.ndarray:
        """Curtailed energy still owed after this step. [kWh]"""
        owed = self._owed_start + (p_curt - p_reb / self.rebound_factor) * self.dt_h
        return np.clip(owed, 0.0, self.owed_max_kwh)   # excess make-up is lost

    def draw_kw(self) -> tuple[float, float]:
        """Batch and make-up (rebound) power are flexible; the base load left
        after curtailment is fixed. [kW]"""
        return (float((self.p_batch_kw + self.p_rebound_kw).sum()),
                float((self.p_base_kw - self.p_curtailed_kw).sum()))

    def trip(self, k: int, flexible_frac: float, fixed_frac: float) -> np.ndarray:
        """Cut batch and make-up power by *flexible_frac* (the batch has that much
        more left, the make-up that much more owed) and the base load drawn by
        *fixed_frac* (not served)."""
        f = flexible_frac
        self._done_kwh[self._rows, self._batch_j] -= f * self.p_batch_kw * self.dt_h
        self.p_batch_kw, self.p_rebound_kw = self.p_batch_kw * (1.0 - f), self.p_rebound_kw * (1.0 - f)
        self.owed_kwh = self._owed_after(self.p_curtailed_kw, self.p_rebound_kw)
        self.p_base_kw = self.p_base_kw - fixed_frac * (self.p_base_kw - self.p_curtailed_kw)
        self.last_p_kw = -(self.p_base_kw + self.p_batch_kw - self.p_curtailed_kw + self.p_rebound_kw)
        return self.last_p_kw

    def controllable_kw(self) -> np.ndarray:
        """Flexible power of the last step, generator sign: ``p_curtailed - p_rebound
        - p_batch`` (the base load is not controllable). [kW]"""
        return self.p_curtailed_kw - self.p_rebound_kw - self.p_batch_kw

    def _innovations(self, m: int) -> np.ndarray:
        """The AR(1) innovations of the next *m* steps, shape (m, N), drawn from the
        fleet's stream in step order whenever they are first needed (by the physics
        or by a perfect forecast), so looking ahead does not change the draws."""
        short = m - self._ahead.shape[0]
        if short > 0:
            sd = self.params.base_noise_frac * np.sqrt(1.0 - self._phi**2)
            self._ahead = np.concatenate([self._ahead, self.rng.normal(0.0, sd, (short, self.n_assets))])
        return self._ahead[:m]

    def _advance_noise(self) -> None:
        w = self._innovations(1)[0]
        self._ahead = self._ahead[1:]
        self._noise = self._phi * self._noise + w

    def _noise_path(self, n_steps: int, perfect: bool) -> np.ndarray:
        """Base-load deviation ``n_t`` over the next *n_steps* steps, shape (N, n_steps):
        the values the physics will use if *perfect*, else their conditional mean
        (the current deviation decayed, ``n_0 phi^s``)."""
        if not perfect:
            return self._noise[:, None] * self._phi ** np.arange(n_steps)[None, :]
        u = np.concatenate([self._noise[None, :], self._innovations(max(n_steps - 1, 0))])[:n_steps]
        return lfilter([1.0], [1.0, -self._phi], u, axis=0).T

    def baseline_setpoint(self, k: int) -> np.ndarray:
        """Uncontrolled: batches at full power from release (the physics clips to the
        current batch's rating), no curtailment. [kW]"""
        return np.where(self.is_curtailable, 0.0, -np.inf)

    # -- flexibility -----------------------------------------------------------
    def flexibility(self, grid: HorizonGrid, forecast: Exogenous) -> list:
        """One StorageLike row per site (its batch or its curtailment store) and
        the base load as a FixedProfile; see the module docstring.

        Batch row, for the batch ``(a, d, R, E)`` with ``e0`` processed at ``k0``
        (for a batch released later, ``e0 = 0``); ``s = max(a, k0)``:

        * ``p_charge_max = R n_b / m_b``, ``n_b`` of the block's ``m_b`` steps in ``[s, d)``;
        * ``e_min`` at block end ``t`` (clipped to ``[s, d]``) is the laxity envelope
          ``max(e0, min(e0 + R (t - s) dt, E - R (d - t) dt))`` that the physics'
          override guarantees; ``e_max = E``;
        * target ``E`` if ``d`` is inside the horizon, else ``max(e0, E - R (d - k_end) dt)``.

        Curtailment row: ``p_discharge_max`` = block mean of the nominal
        curtailable power, ``p_charge_max = R_r``, ``eta_charge = 1/r``,
        ``e_min`` the rebound envelope at each block end, ``e_max`` and the target
        the capacity (nothing owed).

        Base load forecast: the schedule with the current AR(1) deviation decayed
        (its conditional mean), times ``1 + forecast.load_error_frac``; with a
        perfect forecast (``forecast.perfect``), the deviations the physics will
        realise.
        """
        n, k0, dt = self.n_assets, grid.k0, grid.step_h
        k_end = k0 + grid.n_steps
        s_idx = np.arange(grid.n_steps)
        frac = self._frac[k0 + s_idx]
        err = 0.0 if forecast.load_error_frac is None else np.asarray(forecast.load_error_frac)
        dev = self._noise_path(grid.n_steps, forecast.perfect)
        up = ~self._down
        base = (self._base_unc_kw[:, None] * np.maximum(1.0 + dev, 0.0) + self._c_nom_kw[:, None]) * frac
        base = base * up[:, None]
        fixed = FixedProfile(fleet=self.name, node=self.node, p_kw=-grid.mean(base.sum(axis=0) * (1.0 + err)))

        block_start = k0 + grid.starts
        spb = grid.steps_per_block
        block_end = block_start + spb
        # batch rows
        b = self.batches
        cand = (b.deadline > k0) & (b.requested_kwh - self._done_kwh > _DONE_TOL_KWH) & (b.release < k_end)
        has = cand.any(axis=1)
        j = np.argmax(cand, axis=1)
        rows = self._rows
        a, d = b.release[rows, j][:, None], b.deadline[rows, j][:, None]
        R = np.where(has & up, b.rated_kw[rows, j], 0.0)[:, None]
        E = np.where(has, b.requested_kwh[rows, j], 0.0)
        e0_b = np.where(has, self._done_kwh[rows, j], 0.0)
        s = np.maximum(a, k0)
        n_in = np.clip(np.minimum(d, block_end) - np.maximum(s, block_start), 0, spb)
        t_end = np.clip(block_end, s, d)
        full = e0_b[:, None] + R * dt * (t_end - s)
        latest = E[:, None] - R * dt * (d - t_end)
        e_min_b = np.maximum(e0_b[:, None], np.minimum(full, latest))
        d1 = d[:, 0]
        target_b = np.where(d1 <= k_end, E, np.maximum(e0_b, E - R[:, 0] * dt * (d1 - k_end)))
        # curtailment rows
        e0_c = self.owed_max_kwh - self.owed_kwh
        env = self._envelope(block_end)
        c_nom = grid.mean(self._c_nom_kw[:, None] * frac[None, :]) * up[:, None]

        curt = self.is_curtailable
        c2 = curt[:, None]
        shape = (n, grid.n_blocks)
        return [
            StorageLike(
                fleet=self.name, node=self.node,
                p_charge_max_kw=np.where(c2, (self.rebound_p_max_kw * up)[:, None], R * n_in / spb),
                p_discharge_max_kw=np.where(c2, c_nom, 0.0),
                e_min_kwh=np.where(c2, env, e_min_b),
                e_max_kwh=np.where(c2, self.owed_max_kwh[:, None], np.broadcast_to(E[:, None], shape)),
                e_init_kwh=np.where(curt, e0_c, e0_b),
                e_target_kwh=np.where(curt, self.owed_max_kwh, target_b),
                eta_charge=np.where(curt, 1.0 / self.rebound_factor, 1.0),
                eta_discharge=np.ones(n),
                self_discharge_per_h=np.zeros(n),
                shortfall_cost_cny_per_kwh=np.where(curt, self.params.owed_shortfall_cost_cny_per_kwh,
                                                    self.params.batch_unserved_cost_cny_per_kwh),
                throughput_cost_cny_per_kwh=np.where(curt, self.params.curtail_cost_cny_per_kwh, 0.0),
            ),
            fixed,
        ]

    # -- records ---------------------------------------------------------------
    def state(self) -> dict[str, float]:
        """After the last step: base, batch, curtailed and make-up power [kW] summed
        over sites; energy owed [kWh, curtailed kWh]; batch energy left
        unprocessed [kWh] by batches due at the start of that step; the base
        load the sites that are down did not draw (``p_lost_kw``). [kW]"""
        return {
            "p_base_kw": float(self.p_base_kw.sum()),
            "p_batch_kw": float(self.p_batch_kw.sum()),
            "p_curtailed_kw": float(self.p_curtailed_kw.sum()),
            "p_rebound_kw": float(self.p_rebound_kw.sum()),
            "owed_kwh": float(self.owed_kwh.sum()),
            "batch_energy_unserved_kwh": self._last_unserved_kwh,
            "p_lost_kw": float(self.p_lost_kw.sum()),
        }

    def info(self) -> dict[str, float]:
        """Full-production demand [kW], site counts by kind, and the curtailment
        stores' capacity [kWh] (energy that may be owed)."""
        return {
            "p_rated_kw": float(self.p_site_kw.sum()),
            "batch_sites": float((~self.is_curtailable).sum()),
            "curtailable_sites": float(self.is_curtailable.sum()),
            "owed_max_kwh": float(self.owed_max_kwh.sum()),
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        """``industry_batches``: one row per batch of the simulated period.

        Columns: ``site``; ``earliest_start`` and ``latest_finish`` (tz-aware,
        on the step grid); ``rated_kw``; ``requested_kwh`` (for a batch
        released before the start: what was left at the start);
        ``delivered_kwh``; ``unserved_kwh`` (NaN while the batch is not yet
        due); ``due`` (latest finish within the run); ``carried_in``.
        """
        b, tl = self.batches, self.timeline
        keep = (b.deadline > 0) & (b.release < tl.n_steps) & (b.energy_kwh > 0)
        keep &= ~(b.carried_in & (b.requested_kwh <= 0))
        i, j = np.nonzero(keep)
        due = b.deadline[i, j] <= tl.n_steps
        requested, delivered = b.requested_kwh[i, j], self._done_kwh[i, j]
        to_time = lambda steps: tl.start + pd.to_timedelta(steps * tl.step_s, unit="s")  # noqa: E731
        df = pd.DataFrame({
            "site": i,
            "earliest_start": to_time(b.release[i, j]),
            "latest_finish": to_time(b.deadline[i, j]),
            "rated_kw": b.rated_kw[i, j],
            "requested_kwh": requested,
            "delivered_kwh": delivered,
            "unserved_kwh": np.where(due, np.maximum(requested - delivered, 0.0), np.nan),
            "due": due,
            "carried_in": b.carried_in[i, j],
        })
        return {"industry_batches": df.sort_values(["earliest_start", "site"], ignore_index=True)}
