"""Station allocation policies (vpp.assets.ev_station) on hand-made session sets.

Each case is small enough to solve by hand; the solution is written out in the
comments and the test.  A Hypothesis property holds every policy to the
contract: within the limit, never more than asked, the override first, and
work-conserving; and each policy to its own definition (priority order, equal
shares, equal fractions).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpp.assets.ev_station import STATION_POLICIES, allocate_station_kw, laxity_h, share_room_kw

ABS_KW = 1e-9  # exact arithmetic on a few numbers [kW]
SUM_REL = 1e-9  # sums of many allocations against a limit [-]

# Three cars at one station with a 10 kW limit, now = 09:00 (hours on the clock):
#
#   car  arrival  departure  asks   energy left  max rate (battery side)
#   A    08:00    12:00      6 kW   17.5 kWh     7 kW
#   B    08:30    11:00      6 kW   13.3 kWh     7 kW
#   C    09:00    10:00      3 kW    0.7 kWh     7 kW
#
# Laxity = time to departure - energy left / max rate:
#   A 3 - 2.5 = 0.5 h, B 2 - 1.9 = 0.1 h, C 1 - 0.1 = 0.9 h.
# Orders: FCFS A, B, C; EDF C, B, A; LLF B, A, C.
ASK = np.array([6.0, 6.0, 3.0])
ONE_STATION, LIMIT = np.zeros(3, dtype=int), np.array([10.0])
NOW_H = 9.0
ARRIVAL_H = np.array([8.0, 8.5, 9.0])
DEPARTURE_H = np.array([12.0, 11.0, 10.0])
LAXITY_H = laxity_h(DEPARTURE_H - NOW_H, [17.5, 13.3, 0.7], 7.0)
TIMES = dict(arrival_h=ARRIVAL_H, departure_h=DEPARTURE_H, laxity_h=LAXITY_H)

BY_HAND = {
    # greedy in queue order, each up to its ask: 6, then the 4 left, then nothing
    "fcfs": [6.0, 4.0, 0.0],
    "edf": [1.0, 6.0, 3.0],  # C 3, B 6, A the 1 left
    "llf": [4.0, 6.0, 0.0],  # B 6, A the 4 left, C nothing
    # equal shares of 10: 3.33 each; C asks 3 and releases 0.33, A and B get 3.5
    "round_robin": [3.5, 3.5, 3.0],
    "proportional": [4.0, 4.0, 2.0],  # 10 / 15 of each ask
}


def test_laxity_by_hand():
    np.testing.assert_allclose(LAXITY_H, [0.5, 0.1, 0.9], atol=1e-12)
    # a request out of reach has negative laxity; nothing left: the time to departure
    np.testing.assert_allclose(laxity_h([1.0, 2.0], [14.0, 0.0], [7.0, 7.0]), [-1.0, 2.0])


@pytest.mark.parametrize("policy", STATION_POLICIES)
def test_three_cars_by_hand(policy):
    p = share_room_kw(ASK, ONE_STATION, LIMIT, policy, **TIMES)
    np.testing.assert_allclose(p, BY_HAND[policy], atol=ABS_KW)


@pytest.mark.parametrize("policy", STATION_POLICIES)
def test_requests_within_the_limit_are_served_in_full(policy):
    ask = np.array([2.0, 5.0, 3.0])  # 10 kW: exactly the limit
    np.testing.assert_allclose(share_room_kw(ask, ONE_STATION, LIMIT, policy, **TIMES), ask, atol=ABS_KW)


def test_ties_by_departure_then_charger():
    # LLF with equal laxities: the earlier departure first; EDF with equal
    # departures (arrivals reversed here): the earlier arrival first; equal
    # everything: the lower charger.
    same = np.zeros(3)
    p = share_room_kw(ASK, ONE_STATION, LIMIT, "llf", laxity_h=same, departure_h=DEPARTURE_H)
    np.testing.assert_allclose(p, BY_HAND["edf"], atol=ABS_KW)
    p = share_room_kw(ASK, ONE_STATION, LIMIT, "edf", departure_h=same, arrival_h=-ARRIVAL_H)
    np.testing.assert_allclose(p, BY_HAND["edf"], atol=ABS_KW)
    p = share_room_kw(ASK[::-1], ONE_STATION, LIMIT, "fcfs", arrival_h=same)
    np.testing.assert_allclose(p, [3.0, 6.0, 1.0], atol=ABS_KW)


def test_stations_are_shared_independently():
    # The three cars at station 0 (10 kW) and the same three again at station 1
    # (4 kW, queue order reversed by arrival) and station 2 (no limit).
    station = np.repeat([0, 1, 2], 3)
    ask = np.tile(ASK, 3)
    arrival = np.concatenate([ARRIVAL_H, -ARRIVAL_H, ARRIVAL_H])
    p = share_room_kw(ask, station, np.array([10.0, 4.0, np.inf]), "fcfs", arrival_h=arrival)
    np.testing.assert_allclose(p, [6, 4, 0, 0, 1, 3, 6, 6, 3], atol=ABS_KW)
    p = share_room_kw(ask, station, np.array([10.0, 4.0, np.inf]), "round_robin")
    # station 1: 4 / 3 = 1.33 each, all ask more
    np.testing.assert_allclose(p, [3.5, 3.5, 3.0, *[4 / 3] * 3, 6, 6, 3], atol=ABS_KW)


def test_the_override_comes_first_under_every_policy():
    # A must have 2 kW (laxity override).  EDF: A's 2 first, then C 3, B 5 of the 8 left.
    must = np.array([2.0, 0.0, 0.0])
    p = allocate_station_kw(ASK, must, ONE_STATION, LIMIT, policy="edf", **TIMES)
    np.testing.assert_allclose(p, [2.0, 5.0, 3.0], atol=ABS_KW)
    # LLF: overrides of A and C (2 + 3), then B 5 of the 5 left
    p = allocate_station_kw(ASK, np.array([2.0, 0.0, 3.0]), ONE_STATION, LIMIT, policy="llf", **TIMES)
    np.testing.assert_allclose(p, [2.0, 5.0, 3.0], atol=ABS_KW)
    # Round robin: the override 2, then 8 kW in equal shares of 8/3 to the rest [4, 6, 3]
    p = allocate_station_kw(ASK, must, ONE_STATION, LIMIT, policy="round_robin", **TIMES)
    np.testing.assert_allclose(p, [2 + 8 / 3, 8 / 3, 8 / 3], atol=ABS_KW)


def test_urgent_cars_share_the_room_left_by_the_policy():
    # Requests [2, 3, 0] use 5 kW; A and C want 6 and 9 kW more.  FCFS: A takes
    # the 5 left; EDF: C does.
    ask, urgent = np.array([2.0, 3.0, 0.0]), np.array([6.0, 0.0, 9.0])
    p = allocate_station_kw(ask, np.zeros(3), ONE_STATION, LIMIT, urgent, "fcfs", **TIMES)
    np.testing.assert_allclose(p, [7.0, 3.0, 0.0], atol=ABS_KW)
    p = allocate_station_kw(ask, np.zeros(3), ONE_STATION, LIMIT, urgent, "edf", **TIMES)
    np.testing.assert_allclose(p, [2.0, 3.0, 5.0], atol=ABS_KW)


@pytest.mark.parametrize("policy", STATION_POLICIES)
def test_discharge_is_scaled_pro_rata(policy):
    # V2G [-8, -6, -3] on 10 kW: x 10 / 17; charging is not mixed in
    p = allocate_station_kw(np.array([-8.0, -6.0, -3.0]), np.zeros(3), ONE_STATION, LIMIT, policy=policy, **TIMES)
    np.testing.assert_allclose(p, np.array([-8.0, -6.0, -3.0]) * 10 / 17, atol=ABS_KW)


def test_a_policy_without_its_times_or_an_unknown_name_is_refused():
    with pytest.raises(ValueError, match="needs the sessions' times"):
        share_room_kw(ASK, ONE_STATION, LIMIT, "llf", departure_h=DEPARTURE_H)
    with pytest.raises(ValueError, match="unknown station policy 'lifo'"):
        share_room_kw(ASK, ONE_STATION, LIMIT, "lifo")


# -- the contract, for any session set -------------------------------------------

_KW = st.floats(0.0, 50.0, allow_nan=False, allow_subnormal=False)
_HOURS = st.floats(-24.0, 24.0, allow_nan=False)


@st.composite
def _sessions(draw):
    n = draw(st.integers(1, 12))
    n_st = draw(st.integers(1, 3))

    def arr(elements):
        return np.array(draw(st.lists(elements, min_size=n, max_size=n)))

    station = arr(st.integers(0, n_st - 1))
    limit = np.array(draw(st.lists(st.one_of(st.floats(0.5, 60.0), st.just(np.inf)), min_size=n_st,
                                   max_size=n_st)))
    ask = arr(_KW)
    must = ask * arr(st.sampled_from([0.0, 0.0, 0.3, 1.0]))
    urgent = arr(st.sampled_from([0.0, 0.0, 2.5, 10.0]))
    # coarse times so that ties occur
    times = dict(arrival_h=arr(st.integers(-4, 4)) * 0.5, departure_h=arr(st.integers(1, 8)) * 0.5,
                 laxity_h=arr(_HOURS))
    return ask, must, urgent, station, limit, times


def _per_station(x, station, n):
    return np.bincount(station, weights=x, minlength=n)


@settings(max_examples=300, deadline=None)
@given(case=_sessions(), policy=st.sampled_from(STATION_POLICIES))
def test_every_policy_keeps_the_contract(case, policy):
    ask, must, urgent, station, limit, times = case
    n = limit.size
    p = allocate_station_kw(ask, must, station, limit, urgent, policy, **times)
    used = _per_station(p, station, n)
    tol = SUM_REL * (1.0 + _per_station(ask + urgent, station, n))
    assert (p >= 0).all() and (p <= ask + urgent + ABS_KW).all(), "never more than asked"
    assert (used <= limit + tol).all(), "never above the limit"
    wanted = _per_station(ask + urgent, station, n)
    full = wanted >= limit
    np.testing.assert_allclose(used[full], limit[full], rtol=SUM_REL, err_msg="work-conserving")
    np.testing.assert_allclose(p[~full[station]], (ask + urgent)[~full[station]], rtol=SUM_REL,
                               err_msg="all served where the limit allows")
    fits = _per_station(must, station, n) <= limit
    assert (p[fits[station]] >= must[fits[station]] - ABS_KW).all(), "the override first"


_ORDER = {"fcfs": ("arrival_h",), "edf": ("departure_h", "arrival_h"), "llf": ("laxity_h", "departure_h")}


@settings(max_examples=300, deadline=None)
@given(case=_sessions(), policy=st.sampled_from(STATION_POLICIES))
def test_every_policy_follows_its_definition(case, policy):
    """Pairwise, within a station: a priority policy never serves a car while
    one ahead of it is short; round robin never gives more to one car while
    another is short of a larger amount; pro rata gives every car one fraction."""
    ask, _, _, station, limit, times = case
    p = share_room_kw(ask, station, limit, policy, **times)
    short = p < ask - 1e-7
    same = station[:, None] == station[None, :]
    if policy in _ORDER:
        key = np.stack([times[name] for name in _ORDER[policy]] + [np.arange(ask.size)], axis=1)
        # i ahead of j: the first differing key is smaller for i
        ahead = np.zeros((ask.size, ask.size), dtype=bool)
        for i in range(ask.size):
            for j in range(ask.size):
                diff = np.flatnonzero(key[i] != key[j])
                ahead[i, j] = diff.size > 0 and key[i, diff[0]] < key[j, diff[0]]
        assert not (same & ahead & short[:, None] & (p[None, :] > 1e-7)).any()
    elif policy == "round_robin":
        assert not (same & short[:, None] & (p[None, :] > p[:, None] + 1e-7)).any()
    else:
        frac = np.divide(p, ask, out=np.ones_like(p), where=ask > 0)
        pairs = same & (ask[:, None] > 0) & (ask[None, :] > 0)
        assert (np.abs(frac[:, None] - frac[None, :])[pairs] <= 1e-9).all()
