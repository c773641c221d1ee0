"""SimPy helpers shared by the engine's processes: phases at one instant.

At one simulated instant, events run in this order: discrete *events* (EV
arrivals and departures), then the *dispatcher*, then the *clock* that steps
the fleets -- by SimPy event priority (SimPy's own URGENT/NORMAL are 0/1, so
a resource granted at an instant is handed over before any phase below).
"""

from __future__ import annotations

import simpy

__all__ = ["EVENTS", "DISPATCH", "CLOCK", "At", "at_step"]

EVENTS, DISPATCH, CLOCK = 10, 11, 12


class At(simpy.events.Event):
    """A timeout that fires at ``env.now + delay`` in a given phase."""

    def __init__(self, env: simpy.Environment, delay: float, phase: int):
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, phase, delay)


def at_step(env: simpy.Environment, k: int, step_s: float, phase: int) -> At:
    """An event at the start of step *k* (engine time ``k * step_s``) in *phase*."""
    return At(env, max(k * step_s - env.now, 0.0), phase)
