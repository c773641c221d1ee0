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
    ``plug(k, request_ids, servers) -> departure steps`` (arrays: the customers
    who take a server at step *k*, in their order), ``unplug(k, servers)``
    (the servers whose customers leave at step *k*) and ``balk(k, request_id)``.
    Departures come before arrivals at a step, and a released server goes to
    the longest-waiting customer first.  The customers who find a free server
    at once are plugged in one call per step (a city's home chargers see tens
    of thousands a day).
    """
    free = _free_servers(np.asarray(fleet.server_station()))
    stores: dict[int, simpy.Store] = {}            # made when a customer first waits at a station
    departures: dict[int, list[tuple[int, int]]] = defaultdict(list)

    def plug(k: int, rids: list, stations: list, servers: list) -> None:
        leave = np.asarray(fleet.plug(k, np.asarray(rids, dtype=np.int64), np.asarray(servers, dtype=np.int64)))
        for departure, station, server in zip(leave.tolist(), stations, servers, strict=True):
            if departure < n_steps:
                departures[max(int(departure), k + 1)].append((station, server))

    def store(station: int) -> simpy.Store:
        if station not in stores:
            stores[station] = simpy.Store(env)
            stores[station].items = free[station]      # the same list: free servers, lowest index first
        return stores[station]

    waiting = [0]

    def waiter(rid: int, k0: int, station: int, patience: int):
        get = store(station).get()
        got = yield get | at_step(env, k0 + patience, step_s, EVENTS)
        k = int(round(env.now / step_s))
        if get in got:
            plug(k, [rid], [station], [got[get]])
        else:
            get.cancel()
            fleet.balk(k, rid)
        waiting[0] -= 1

    steps = requests.arrival_step
    starts = np.searchsorted(steps, np.arange(n_steps + 1)).tolist()
    # plain lists: the loop below visits every arrival of the run (millions in a city's year)
    req_ids, req_stations = requests.request_id.tolist(), requests.station.tolist()
    req_patience = requests.max_wait_steps.tolist()

    def arrivals(k: int) -> None:
        rids, at, taken = [], [], []

        def flush():                                   # keep the fleet's calls in arrival order
            if rids:
                plug(k, rids[:], at[:], taken[:])
                for batch in (rids, at, taken):
                    batch.clear()

        a, b = starts[k], starts[k + 1]
        for rid, station, patience in zip(req_ids[a:b], req_stations[a:b], req_patience[a:b], strict=True):
            servers = free.get(station)
            if servers is None:                                     # a station without servers
                flush()
                fleet.balk(k, rid)
            elif servers and not (station in stores and stores[station].get_queue):
                rids.append(rid)
                at.append(station)
                taken.append(servers.pop(0))
            elif patience == 0:
                flush()
                fleet.balk(k, rid)
            else:
                flush()
                waiting[0] += 1                                      # counted now: the clock may look ahead
                env.process(waiter(rid, k, station, patience))
        flush()

    def clock():
        for k in range(n_steps):
            if not departures and not waiting[0] and starts[k] == starts[-1]:
                return                                              # nothing left to do
            yield at_step(env, k, step_s, EVENTS)
            leaving = departures.pop(k, [])
            if leaving:
                fleet.unplug(k, np.array([server for _, server in leaving], dtype=np.int64))
            for station, server in leaving:
                if station in stores:
                    stores[station].put(server)                     # a waiting customer gets it first
                else:
                    free[station].append(server)
            arrivals(k)

    env.process(clock())


def _free_servers(stations: np.ndarray) -> dict[int, list[int]]:
    """Each station's servers, lowest index first."""
    order = np.argsort(stations, kind="stable")
    keys, first = np.unique(stations[order], return_index=True)
    servers, bounds = order.tolist(), [*first.tolist(), len(order)]
    return {s: servers[a:b] for s, a, b in zip(keys.tolist(), bounds[:-1], bounds[1:], strict=True)}
