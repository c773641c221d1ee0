"""Charging physics of EV chargers: the battery's taper, the energy a step can
deliver, and the sharing of a station's connection limit.

Used by :class:`vpp.assets.ev.EVFleet` (the model as a whole is described in
:mod:`vpp.assets.ev`).

Charging physics
----------------
The battery's state of charge ``s`` rises at most at the rate
``ds/dt = min(k, c f(s))`` where ``k = eta P / C`` is the charger's limit
(``P`` the grid-side power of the charger, or less if the car's own limit is
lower; ``eta`` the charger efficiency; ``C`` the capacity), ``c`` the
battery's maximum C-rate and ``f`` the constant-current/constant-voltage
taper of ACN-Sim's two-stage battery: ``f = 1`` up to ``taper_soc_frac`` (0.8)
and then linear down to ``taper_end_frac`` at full (ACN-Sim goes to zero; a
small positive end, the CV phase's termination current, lets a car reach
100 % in finite time).  The rate is integrated exactly over each step
(:func:`soc_after_max_charge`: linear, then exponential in the taper).  A step's
energy is a *mean-power* request: any energy up to the exact maximum over the
step is delivered (the charger can shape power within the step).

The setpoint is a request; per step the physics delivers
``clip(request, lo, hi)`` (:func:`energy_window_kwh`):

* ``hi``: the exact maximum over the step, and no more than still requested;
* ``lo``, the *laxity override*: the least energy that still lets the car get
  its request by departure charging at the maximum afterwards
  (:func:`soc_before_max_charge` inverts the taper); with V2G, ``lo`` is
  negative when the car may discharge, down to its floor (V2G in :mod:`vpp.assets.ev`).

Station connection limit
------------------------
Per station, the chargers' grid-side charging power (and, separately, their
discharging power) sum to at most ``station_limit_kw``.  When they would
exceed it, the physics first serves every car's override power, then what
each car asks beyond it, then any room still left to *urgent* cars, those
that cannot get their request at their share; the fleet's
``station_policy`` says how each of these is shared among the cars
(:mod:`vpp.assets.ev_station`; pro rata by default).  A charger's *share* of
the limit is ``limit * P_i / sum_station P`` when the station's rated power
exceeds the limit, else its rating.  The override is computed with the share
as the charger's maximum, so overrides alone never exceed the limit; the
flexibility form offers each charger its own maximum within the station's
:class:`~vpp.flex.SharedLimit` and keeps the override's share as the lower
bounds (the urgent cars' extra room keeps dispatched cars from doing worse
than uncontrolled ones).
"""

from __future__ import annotations

import numpy as np

__all__ = ["soc_after_max_charge", "soc_before_max_charge", "energy_window_kwh"]


def _taper_slope(taper_soc_frac: float, taper_end_frac: float) -> float:
    return (1.0 - taper_end_frac) / (1.0 - taper_soc_frac)


def soc_after_max_charge(soc_frac, duration_h, k_per_h, c_rate_per_h, taper_soc_frac=0.8, taper_end_frac=0.05):
    """State of charge after charging at the maximum rate for *duration_h*.

    Solves ``ds/dt = min(k, c f(s))`` exactly, with the taper
    ``f(s) = 1`` for ``s <= s_t`` and ``f(s) = 1 - a (s - s_t)``,
    ``a = (1 - f_end) / (1 - s_t)``, above it.  With ``k0 = min(k, c)`` the
    rate is constant, ``k0``, up to the knee ``s_x = s_t + (1 - k0/c) / a``
    where the taper meets it; beyond it ``u = f(s)`` decays as
    ``u(t) = u(0) exp(-a c t)``, so ``s(t) = s(0) + u(0) (1 - exp(-a c t)) / a``.
    The result is capped at 1.

    Parameters
    ----------
    soc_frac : array_like
        State of charge at the start (<= 1). [-]
    duration_h : array_like
        Charging time (>= 0). [h]
    k_per_h : array_like
        The charger's limit as a rate, ``eta P / C`` (> 0). [1/h]
    c_rate_per_h : array_like
        The battery's maximum rate below the taper (>= 0; 0, a charger out of order:
        the state stays). [1/h]
    taper_soc_frac, taper_end_frac : float
        ``s_t`` and ``f_end = f(1)`` (``f_end = 1``: no taper). [-]

    Returns
    -------
    ndarray
        State of charge at the end. [-]

    References
    ----------
    Two-stage (CC-CV) battery of ACN-Sim (Lee, Sharma, Johansson & Low, IEEE
    Trans. Smart Grid 12(6), 2021): linear taper above ``s_t = 0.8``.
    """
    s0, tau, k, c = (np.asarray(x, dtype=float) for x in (soc_frac, duration_h, k_per_h, c_rate_per_h))
    k0 = np.minimum(k, c)
    a = _taper_slope(taper_soc_frac, taper_end_frac)
    if a <= 0.0:
        return np.minimum(s0 + k0 * tau, 1.0)
    s_knee = taper_soc_frac + (1.0 - k0 / c) / a
    gap = np.maximum(s_knee - s0, 0.0) * np.ones_like(k0)
    t_lin = np.divide(gap, k0, out=np.full_like(gap, np.inf), where=k0 > 0)   # a rate of 0 never gets there
    s_lin = s0 + k0 * np.minimum(tau, t_lin)
    u = 1.0 - a * (s_lin - taper_soc_frac)  # f at the end of the linear part
    t_taper = np.maximum(tau - t_lin, 0.0)
    return np.minimum(s_lin - u * np.expm1(-a * c * t_taper) / a, 1.0)


def soc_before_max_charge(soc_frac, duration_h, k_per_h, c_rate_per_h, taper_soc_frac=0.8, taper_end_frac=0.05):
    """The state of charge from which charging at the maximum for *duration_h*
    reaches *soc_frac* (the inverse of :func:`soc_after_max_charge`).

    Backwards in the taper ``u = f(s)`` grows as ``u1 exp(a c t)`` until it
    reaches ``k0/c`` at the knee, after ``ln(k0 / (c u1)) / (a c)``; before the
    knee the state falls at the constant rate ``k0``.  May return values
    below 0 (a target out of reach from an empty battery).

    Parameters
    ----------
    soc_frac : array_like
        State of charge to be reached (<= 1). [-]
    duration_h : array_like
        Charging time before it (>= 0). [h]
    k_per_h, c_rate_per_h, taper_soc_frac, taper_end_frac
        As in :func:`soc_after_max_charge` (``taper_end_frac > 0``).

    Returns
    -------
    ndarray
        State of charge at the start. [-]
    """
    s1, tau, k, c = (np.asarray(x, dtype=float) for x in (soc_frac, duration_h, k_per_h, c_rate_per_h))
    k0 = np.minimum(k, c)
    a = _taper_slope(taper_soc_frac, taper_end_frac)
    if a <= 0.0:
        return s1 - k0 * tau
    s_knee = taper_soc_frac + (1.0 - k0 / c) / a
    in_taper = s1 > s_knee
    u1 = np.maximum(1.0 - a * (s1 - taper_soc_frac), taper_end_frac)
    t_taper = np.where(in_taper, np.log(np.maximum(k0 / (c * u1), 1.0)) / (a * c), 0.0)
    back = np.minimum(tau, t_taper)
    s_top = np.where(in_taper, s1 - u1 * np.expm1(a * c * back) / a, s1)
    return s_top - k0 * np.maximum(tau - t_taper, 0.0)


_URGENT_KWH = 1e-9  # a car is urgent when short by more than this [kWh]


def energy_window_kwh(
    e_kwh,
    requested_kwh,
    soc_arrival_frac,
    capacity_kwh,
    steps_left,
    dt_h: float,
    *,
    k_max_per_h,
    k_share_per_h,
    c_rate_per_h,
    taper_soc_frac: float = 0.8,
    taper_end_frac: float = 0.05,
    discharge_max_kwh=0.0,
    floor_kwh=0.0,
):
    """Battery-side energy a plugged car may take over one step, ``[lo, hi]``.

    ``e`` is the energy delivered since plug-in (the state of charge is
    ``s = s_a + e / C``), ``R`` the request, ``s_R = s_a + R / C``:

    * ``hi = min(C (S_max(s, dt) - s), R - e)`` with :func:`soc_after_max_charge`
      at the charger's limit ``k_max``;
    * ``L = C (S_back(s_R, (n - 1) dt) - s_a)``: the energy the car must hold
      at the end of this step to reach ``R`` by departure at the maximum
      afterwards (``n`` steps left, this one included), using the station
      share's limit ``k_share``;
    * ``must = clip(L - e, 0, C (S_share(s, dt) - s))``: the laxity override;
    * ``lo = must``; with V2G (``discharge_max_kwh > 0``), where
      ``e >= F = max(floor, L)``: ``lo = -min(discharge_max, e - F)``;
    * ``urgent``: the car cannot reach ``R`` at the share's limit
      (``L - e`` exceeds what the share delivers this step); the station
      gives such cars any room left (:func:`vpp.assets.ev_station.allocate_station_kw`).

    Parameters
    ----------
    e_kwh, requested_kwh : array_like
        Energy delivered since plug-in and energy requested. [kWh]
    soc_arrival_frac, capacity_kwh : array_like
        State of charge at plug-in [-] and capacity [kWh].
    steps_left : array_like of int
        Steps until departure, this one included (>= 1). [-]
    dt_h : float
        Step length. [h]
    k_max_per_h, k_share_per_h, c_rate_per_h : array_like
        Charger limit and station share as rates ``eta P / C``, the battery's
        maximum rate. [1/h]
    taper_soc_frac, taper_end_frac : float
        The taper (:func:`soc_after_max_charge`). [-]
    discharge_max_kwh : array_like
        Battery energy V2G may take out over the step (0: no V2G). [kWh]
    floor_kwh : array_like
        Lowest ``e`` V2G may leave. [kWh]

    Returns
    -------
    lo, hi, must : ndarray
        Battery-side energy bounds over the step and the override part. [kWh]
    urgent : ndarray of bool
        Cars short of their request even at the share's limit.
    """
    e = np.asarray(e_kwh, dtype=float)
    cap = np.asarray(capacity_kwh, dtype=float)
    s_a = np.asarray(soc_arrival_frac, dtype=float)
    req = np.asarray(requested_kwh, dtype=float)
    taper = (taper_soc_frac, taper_end_frac)
    s = s_a + e / cap
    full = cap * (soc_after_max_charge(s, dt_h, k_max_per_h, c_rate_per_h, *taper) - s)
    hi = np.maximum(np.minimum(full, req - e), 0.0)
    later_h = np.maximum(np.asarray(steps_left) - 1, 0) * dt_h
    need = cap * (soc_before_max_charge(s_a + req / cap, later_h, k_share_per_h, c_rate_per_h, *taper) - s_a)
    share = cap * (soc_after_max_charge(s, dt_h, k_share_per_h, c_rate_per_h, *taper) - s)
    must = np.clip(need - e, 0.0, np.minimum(share, hi))
    dis = np.asarray(discharge_max_kwh, dtype=float)
    floor = np.maximum(np.asarray(floor_kwh, dtype=float), need)
    lo = np.where((dis > 0) & (e >= floor), -np.minimum(dis, e - floor), must)
    urgent = need - e > share + _URGENT_KWH
    return lo, hi, must, urgent
