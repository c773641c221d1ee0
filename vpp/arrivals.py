"""Discrete arrivals that queue for a station's servers (cars for chargers).

The contract between a fleet with queueing customers and the engine, which
runs the queue as a SimPy discrete-event process (:mod:`vpp.queueing`).  A
fleet states its customers' arrivals; the engine grants a free server of the
right station when there is one (first come, first served), or lets the
customer wait up to ``max_wait_steps`` and then leave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ArrivalRequests"]


@dataclass(frozen=True, eq=False)
class ArrivalRequests:
    """Arrivals of one fleet, sorted by arrival step.

    Parameters
    ----------
    request_id : ndarray of int, shape (R,)
        The fleet's own identifier of each request.
    arrival_step : ndarray of int, shape (R,)
        Simulation step at whose start the customer arrives (non-decreasing).
    station : ndarray of int, shape (R,)
        Station the customer goes to.
    max_wait_steps : ndarray of int, shape (R,)
        Steps the customer waits for a free server before leaving (0: leaves
        at once when every server is busy).
    """

    request_id: np.ndarray
    arrival_step: np.ndarray
    station: np.ndarray
    max_wait_steps: np.ndarray

    def __post_init__(self):
        n = len(self.request_id)
        for name in ("arrival_step", "station", "max_wait_steps"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ArrivalRequests.{name} must have one value per request ({n})")
        if n and np.any(np.diff(self.arrival_step) < 0):
            raise ValueError("ArrivalRequests must be sorted by arrival_step")
        if n and (np.min(self.max_wait_steps) < 0):
            raise ValueError("ArrivalRequests.max_wait_steps must be >= 0")
