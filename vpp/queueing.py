"""Queueing of discrete arrivals for a fleet's servers, as SimPy processes.

Each station is a :class:`simpy.Resource` with as many units as it has
servers (chargers); a customer requests one at its arrival step, waits at
most its patience, and releases it at the departure step the fleet returns.
Arrivals are spawned one step at a time (a batch per step, not a process per
customer kept alive for the whole run), so a city's worth of sessions stays
cheap.  First come, first served.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import simpy

from vpp.arrivals import ArrivalRequests
from vpp.sim import EVENTS, at_step

__all__ = ["start_queue"]


def start_queue(env: simpy.Environment, fleet, requests: ArrivalRequests, step_s: float, n_steps: int) -> None:
    """Start the arrival process of *fleet* in *env*.

    *fleet* provides ``server_station() -> ndarray`` (station of each server),
    ``plug(k, request_id, server) -> departure step``, ``unplug(k, server)``
    and ``balk(k, request_id)``.
    """
    stations = np.asarray(fleet.server_station())
    free: dict[int, list[int]] = defaultdict(list)
    for server in np.argsort(stations, kind="stable")[::-1].tolist():   # pop() gives the lowest index
        free[int(stations[server])].append(server)
    resources = {s: simpy.Resource(env, capacity=len(servers)) for s, servers in free.items()}

    def customer(rid: int, k0: int, station: int, patience: int):
        resource = resources.get(station)
        if resource is None:                 # a station without servers: nobody is served
            fleet.balk(k0, rid)
            return
        with resource.request() as req:
            got = yield req | at_step(env, k0 + patience, step_s, EVENTS)
            k = int(round(env.now / step_s))
            if req not in got:
                fleet.balk(k, rid)
                return
            server = free[station].pop()
            departure = int(fleet.plug(k, rid, server))
            if departure < n_steps:
                yield at_step(env, max(departure, k + 1), step_s, EVENTS)
                fleet.unplug(departure, server)
                free[station].append(server)
            else:
                yield env.event()           # stays plugged past the end of the run

    def arrivals():
        steps = requests.arrival_step
        bounds = np.flatnonzero(np.diff(steps)) + 1
        for group in np.split(np.arange(len(steps)), bounds):
            if not len(group):
                continue
            k = int(steps[group[0]])
            if k >= n_steps:
                return
            yield at_step(env, k, step_s, EVENTS)
            for i in group:
                env.process(customer(int(requests.request_id[i]), k, int(requests.station[i]),
                                     int(requests.max_wait_steps[i])))

    env.process(arrivals())
