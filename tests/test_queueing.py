"""The engine's queue for discrete arrivals: first come, first served, patience, release."""

import numpy as np
import simpy

from vpp.arrivals import ArrivalRequests
from vpp.queueing import start_queue


class Desk:
    """A fake fleet: servers 0 (station 0), 1 and 2 (station 1); dwell per request."""

    def __init__(self, dwell):
        self.dwell, self.log = dwell, []

    def server_station(self):
        return np.array([0, 1, 1])

    def plug(self, k, rids, servers):
        self.log += [("plug", k, int(r), int(s)) for r, s in zip(rids, servers, strict=True)]
        return np.array([k + self.dwell[int(r)] for r in rids])

    def unplug(self, k, servers):
        self.log += [("unplug", k, int(s)) for s in servers]

    def balk(self, k, rid):
        self.log.append(("balk", k, rid))


def run(requests, dwell, n_steps=20):
    env = simpy.Environment()
    desk = Desk(dwell)
    start_queue(env, desk, requests, 1.0, n_steps)
    env.run(until=n_steps)
    return desk.log


def req(ids, steps, stations, waits):
    return ArrivalRequests(np.array(ids), np.array(steps), np.array(stations), np.array(waits))


def test_single_server_queue_by_hand():
    # station 0 has one server.  r0 arrives at 1 (dwell 3), r1 at 2 (waits up to 5),
    # r2 at 2 (patience 1: gives up at 3), r3 at 4 (waits up to 10).
    # r0 plugs 1..4; r1 plugs at 4 (dwell 2) .. 6; r3 plugs at 6 (dwell 1) .. 7.
    log = run(req([0, 1, 2, 3], [1, 2, 2, 4], [0, 0, 0, 0], [0, 5, 1, 10]), dwell={0: 3, 1: 2, 2: 5, 3: 1})
    assert log == [("plug", 1, 0, 0), ("balk", 3, 2), ("unplug", 4, 0), ("plug", 4, 1, 0),
                   ("unplug", 6, 0), ("plug", 6, 3, 0), ("unplug", 7, 0)]


def test_two_servers_and_zero_patience():
    # station 1 has servers 1 and 2: two cars at step 0 both plug; a third at 0 with no
    # patience leaves at once; a fourth at 1 waits for the first release at 2.
    log = run(req([0, 1, 2, 3], [0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 5]), dwell={0: 2, 1: 4, 2: 1, 3: 1})
    assert log[:3] == [("plug", 0, 0, 1), ("plug", 0, 1, 2), ("balk", 0, 2)]
    assert ("plug", 2, 3, 1) in log and ("unplug", 2, 1) in log
    assert log.index(("unplug", 2, 1)) < log.index(("plug", 2, 3, 1))


def test_a_station_without_servers_turns_everyone_away():
    log = run(req([0], [3], [7], [4]), dwell={0: 1})
    assert log == [("balk", 3, 0)]


def test_last_arrival_waiting_is_still_served():
    # the only future event is a waiting customer: the queue must not stop before serving it
    log = run(req([0, 1], [0, 0], [0, 0], [0, 5]), dwell={0: 2, 1: 1})
    assert log == [("plug", 0, 0, 0), ("unplug", 2, 0), ("plug", 2, 1, 0), ("unplug", 3, 0)]
