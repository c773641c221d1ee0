"""Sharing an EV station's connection limit among its plugged cars, by a named policy.

Used by :class:`vpp.assets.ev.EVFleet` every step in which the chargers'
requests (the strategy's setpoints, or the uncontrolled baseline's) add up to
more than a station's ``station_limit_kw``.  Pure functions, vectorised over
chargers: a policy sorts the chargers within each station once
(``numpy.lexsort``) and allocates with cumulative sums, never a Python loop
per car.

Policies (``station_policy``)
-----------------------------
The real-time policies of ACN-Sim (Lee, Sharma, Johansson & Low, "ACN-Sim:
An Open-Source Simulator for Data-Driven Electric Vehicle Charging
Research", IEEE Trans. Smart Grid 12(6), 5113-5123, 2021,
doi:10.1109/TSG.2021.3103156), with the continuous rates of their
sorted-queue greedy allocation (``SortedSchedulingAlgo``: in queue order,
each car gets the most the limit still allows, up to what it asks):

=================  ==============================================================
``proportional``   pro rata to the requests (every car gets the same fraction)
``fcfs``           greedy by arrival at the station, earliest first (ACN-Sim's
                   ``first_come_first_served``)
``edf``            greedy by departure, earliest first; ties by arrival
                   (``earliest_deadline_first``; Liu & Layland, J. ACM 20(1), 1973)
``llf``            greedy by laxity, least first; ties by departure
                   (``least_laxity_first``; Dertouzos & Mok, IEEE TSE 15(12), 1989)
``round_robin``    equal shares by water-filling: a car that asks less than its
                   share gets what it asks and leaves the rest to the others
                   (ACN-Sim's ``RoundRobin``, whose small equal increments
                   converge to this allocation)
=================  ==============================================================

Laxity (:func:`laxity_h`) is ACN-Sim's: time to departure minus the time the
energy still requested takes at the charger's maximum rate.  Remaining ties
go to the lower-numbered charger.

Tiers and the override
----------------------
Each charger's charging request is split into tiers that are served in turn,
each shared by the policy within the room the tiers before it left
(:func:`allocate_station_kw`): (1) the *override* (the laxity override of
:mod:`vpp.assets.ev_charging`, computed at the charger's share of the limit,
so the overrides alone fit the limit), (2) the rest of the request, (3) the
extra power that *urgent* cars (out of reach at their share) would take.  So
under every policy the override is served first, no car gets more than it
asks, a limit is never exceeded, and the allocation is work-conserving: when
the requests exceed a limit, the limit is used fully.  V2G discharge is scaled
pro rata under every policy (the policies order charging).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

__all__ = ["StationPolicy", "STATION_POLICIES", "laxity_h", "share_room_kw", "allocate_station_kw"]

StationPolicy = Literal["proportional", "fcfs", "edf", "llf", "round_robin"]
STATION_POLICIES: tuple[str, ...] = get_args(StationPolicy)


def laxity_h(time_to_departure_h, remaining_kwh, max_rate_kw):
    """Laxity of a charging session: slack before it must charge at full rate.

    ``laxity = (t_departure - t) - E_remaining / P_max`` (ACN-Sim's
    ``least_laxity_first``; Xu, Pan & Tong, IEEE TAC 61(12), 2016).

    Parameters
    ----------
    time_to_departure_h : array_like
        Time from now to departure. [h]
    remaining_kwh : array_like
        Energy still requested, battery side. [kWh]
    max_rate_kw : array_like
        The charger's maximum rate, battery side (> 0). [kW]

    Returns
    -------
    ndarray
        Laxity; negative when the request can no longer be met. [h]
    """
    t, e, p = (np.asarray(x, dtype=float) for x in (time_to_departure_h, remaining_kwh, max_rate_kw))
    return t - np.maximum(e, 0.0) / p


def _first_of_station(station_sorted: np.ndarray) -> np.ndarray:
    """Position of the first element of each element's station (stations sorted)."""
    return np.searchsorted(station_sorted, station_sorted, side="left")


def _before_in_station(w: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Sum of the wants ahead of each element in its station's queue (sorted order)."""
    ahead = np.cumsum(w) - w
    return ahead - ahead[first]


def _greedy_kw(want_kw, station, room_kw, keys) -> np.ndarray:
    """Sorted-queue greedy allocation: within each station in the order of
    *keys* (most significant first, smaller first), each gets
    ``clip(room - sum of wants ahead, 0, want)``."""
    order = np.lexsort((*reversed(keys), station))
    w, s = want_kw[order], station[order]
    out = np.empty_like(want_kw)
    out[order] = np.clip(room_kw[s] - _before_in_station(w, _first_of_station(s)), 0.0, w)
    return out


def _water_fill_kw(want_kw, station, room_kw) -> np.ndarray:
    """Equal shares with release: each gets ``min(want, level)``, the level per
    station such that the room is used (``inf`` when the wants fit).

    With the wants of a station sorted ascending, ``level_j = (room - sum of the
    j smaller wants) / (m - j)`` is the share if those j are served in full;
    the first ``j`` whose want reaches ``level_j`` fixes the level, and later
    ``level_j`` are no larger, so the level is the largest ``level_j`` over the
    wants that reach it.
    """
    n_st = room_kw.size
    order = np.lexsort((want_kw, station))
    w, s = want_kw[order], station[order]
    first = _first_of_station(s)
    left = np.bincount(station, minlength=n_st)[s] - (np.arange(w.size) - first)
    level = (room_kw[s] - _before_in_station(w, first)) / left
    short = w >= level
    top = np.full(n_st, -np.inf)
    np.maximum.at(top, s[short], level[short])
    top[top == -np.inf] = np.inf
    out = np.empty_like(want_kw)
    out[order] = np.minimum(w, top[s])
    return out


def _pro_rata_kw(want_kw, station, room_kw) -> np.ndarray:
    total = np.bincount(station, weights=want_kw, minlength=room_kw.size)
    over = total > room_kw
    factor = np.where(over, np.divide(room_kw, total, out=np.ones_like(room_kw), where=over), 1.0)
    return want_kw * factor[station]


def share_room_kw(want_kw, station, room_kw, policy: str = "proportional", *, arrival_h=None,
                  departure_h=None, laxity_h=None) -> np.ndarray:
    """Share each station's room among its chargers' wants by *policy*.

    Where a station's wants fit its room, each charger gets its want; else
    the room is used fully, each charger getting between 0 and its want.

    Parameters
    ----------
    want_kw : ndarray, shape (N,)
        Power each charger wants (>= 0, finite). [kW]
    station : ndarray of int, shape (N,)
        Station of each charger.
    room_kw : ndarray, shape (S,)
        Room per station (>= 0; ``inf``: none). [kW]
    policy : {"proportional", "fcfs", "edf", "llf", "round_robin"}
        The allocation policy (module docstring).
    arrival_h, departure_h, laxity_h : ndarray, shape (N,), optional
        Arrival and departure times on any common clock [h], and laxity [h]
        (:func:`laxity_h`); ``fcfs`` needs the arrivals, ``edf`` departures
        and arrivals, ``llf`` laxities and departures.

    Returns
    -------
    ndarray, shape (N,)
        Power allocated per charger. [kW]
    """
    want = np.asarray(want_kw, dtype=float)
    station = np.asarray(station)
    room = np.maximum(np.asarray(room_kw, dtype=float), 0.0)
    if policy == "proportional":
        return _pro_rata_kw(want, station, room)
    if policy == "round_robin":
        return _water_fill_kw(want, station, room)
    needs = {"fcfs": (arrival_h,), "edf": (departure_h, arrival_h), "llf": (laxity_h, departure_h)}
    if policy not in needs:
        raise ValueError(f"unknown station policy {policy!r} (one of {', '.join(STATION_POLICIES)})")
    keys = needs[policy]
    if any(key is None for key in keys):
        raise ValueError(f"station policy {policy!r} needs the sessions' times (arrival_h, departure_h, laxity_h)")
    return _greedy_kw(want, station, room, tuple(np.asarray(key, dtype=float) for key in keys))


def allocate_station_kw(p_kw, p_must_kw, station, limit_kw, p_urgent_kw=None, policy: str = "proportional",
                        **times) -> np.ndarray:
    """Chargers' grid-side power such that each station keeps its limit.

    Charging (``p > 0``) in three tiers, each shared by *policy*
    (:func:`share_room_kw`) in the room the tiers before it left: every
    charger's override ``m = min(p_must, p)``; then the rest ``p - m``; then
    ``p_urgent`` (extra power wanted by cars that cannot get their request at
    their share).  Discharging (``p < 0``) is scaled pro rata when its sum
    exceeds the limit.  ``policy = "proportional"`` is the pro rata sharing
    of every tier.

    Parameters
    ----------
    p_kw : ndarray, shape (N,)
        Requested grid-side power per charger, consumption positive. [kW]
    p_must_kw : ndarray, shape (N,)
        Override part of each charger's charging power (>= 0). [kW]
    station : ndarray of int, shape (N,)
        Station of each charger.
    limit_kw : ndarray, shape (S,)
        Limit per station (``inf``: none). [kW]
    p_urgent_kw : ndarray, shape (N,), optional
        Extra charging power wanted beyond ``p`` (>= 0). [kW]
    policy : {"proportional", "fcfs", "edf", "llf", "round_robin"}
        How each tier is shared (module docstring).
    **times
        ``arrival_h``, ``departure_h``, ``laxity_h`` as :func:`share_room_kw` needs them.

    Returns
    -------
    ndarray, shape (N,)
        Allocated power, consumption positive. [kW]
    """
    p = np.asarray(p_kw, dtype=float)
    limit = np.asarray(limit_kw, dtype=float)
    n = limit.size
    charge = np.maximum(p, 0.0)
    must = np.minimum(np.maximum(p_must_kw, 0.0), charge)
    tiers = [must, charge - must]
    if p_urgent_kw is not None:
        tiers.append(np.maximum(p_urgent_kw, 0.0))
    allocated = np.zeros_like(charge)
    for want in tiers:
        room = limit - np.bincount(station, weights=allocated, minlength=n)
        allocated = allocated + share_room_kw(want, station, room, policy, **times)
    discharge = np.maximum(-p, 0.0)
    return allocated - _pro_rata_kw(discharge, station, limit)
