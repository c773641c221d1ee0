"""Queueing of discrete arrivals for a fleet's servers, as a SimPy process.

Each station is a :class:`simpy.Store` holding its free servers (chargers).
One process per fleet walks the steps: at the start of each step it returns
the servers of departing customers to their stores, then serves the step's
arrivals as a batch -- a customer who finds a free server (and nobody
waiting) takes it at once; one who finds every server busy either leaves
(no patience) or becomes a SimPy process that waits on the store, first come
first served, until a server is put back or its patience runs out.  Only
waiting customers cost a process, so a city's worth of sessions stays cheap.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import simpy

from vpp.arrivals import ArrivalRequests
from vpp.sim import EVENTS, at_step

__all__ = ["start_queue"]


def start_queue(env: simpy.Environment, fleet, requests: ArrivalRequests, step_s: float, n_steps: int) -> None:
    """Start the queue of *fleet* in *env*.

    *fleet* provides ``server_station() -> ndarray`` (station of each server),
    ``plug(k, request_id, server) -> departure step``, ``unplug(k, server)``
    and ``balk(k, request_id)``.  Departures come before arrivals at a step, and
    a released server goes to the longest-waiting customer first.
    """
    stations = np.asarray(fleet.server_station())
    stores: dict[int, simpy.Store] = {}
    for station in np.unique(stations):
        store = simpy.Store(env)
        store.items = np.flatnonzero(stations == station).tolist()   # free servers, lowest index first
        stores[int(station)] = store
    departures: dict[int, list[tuple[int, int]]] = defaultdict(list)

    def plug(k: int, rid: int, station: int, server: int) -> None:
        departure = int(fleet.plug(k, rid, server))
        if departure < n_steps:
            departures[max(departure, k + 1)].append((station, server))

    waiting = [0]

    def waiter(rid: int, k0: int, station: int, patience: int):
        get = stores[station].get()
        got = yield get | at_step(env, k0 + patience, step_s, EVENTS)
        k = int(round(env.now / step_s))
        if get in got:
            plug(k, rid, station, got[get])
        else:
            get.cancel()
            fleet.balk(k, rid)
        waiting[0] -= 1

    steps = requests.arrival_step
    starts = np.searchsorted(steps, np.arange(n_steps + 1))

    def clock():
        for k in range(n_steps):
            if not departures and not waiting[0] and starts[k] == starts[-1]:
                return                                              # nothing left to do
            yield at_step(env, k, step_s, EVENTS)
            for station, server in departures.pop(k, []):
                fleet.unplug(k, server)
                stores[station].put(server)                         # a waiting customer gets it first
            for i in range(starts[k], starts[k + 1]):
                rid, station = int(requests.request_id[i]), int(requests.station[i])
                patience = int(requests.max_wait_steps[i])
                store = stores.get(station)
                if store is None:                                    # a station without servers
                    fleet.balk(k, rid)
                elif store.items and not store.get_queue:
                    plug(k, rid, station, store.items.pop(0))
                elif patience == 0:
                    fleet.balk(k, rid)
                else:
                    waiting[0] += 1                                  # counted now: the clock may look ahead
                    env.process(waiter(rid, k, station, patience))

    env.process(clock())
