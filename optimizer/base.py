"""Strategies: pure decision functions from a dispatch problem to setpoints.

A strategy never sees the engine, SimPy or the assets: it gets a
:class:`~vpp.dispatch.DispatchProblem` (flexibility forms and forecasts over
a horizon) and returns a :class:`~vpp.dispatch.Decision`.  Add your own by
subclassing :class:`Strategy` and decorating it with :func:`register`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from vpp.dispatch import Decision, DispatchProblem
from vpp.dr import DREvent
from vpp.params import InputModel

__all__ = ["Strategy", "StrategyOptions", "STRATEGIES", "register", "strategy_class"]


class StrategyOptions(InputModel):
    """Base of every strategy's options (``[strategy.options]``): no unknown keys,
    no NaN or infinity, no boolean for a number (:class:`vpp.params.InputModel`)."""


class Strategy(ABC):
    """Base class of dispatch strategies.

    Class attributes
    ----------------
    name : str
        Name used in scenarios and on the command line.
    Options : type of StrategyOptions
        Model validating ``[strategy.options]``.
    uses_forecasts : bool
        False for strategies that decide without a dispatch problem (the
        engine then skips building forecasts and flexibility forms).
    """

    name: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions
    uses_forecasts: ClassVar[bool] = True

    def __init__(self, options: StrategyOptions | None = None):
        self.options = options if options is not None else self.Options()

    @abstractmethod
    def decide(self, problem: DispatchProblem | None) -> Decision:
        """Setpoints for the next dispatch interval (see :class:`Decision`)."""

    def bid_kw(self, problem: DispatchProblem, event: DREvent) -> float | None:
        """The capacity to offer for demand-response *event* at its notice
        (``problem`` is the window at the notice, *event* among its calls with
        the requested capacity, the most that may be offered); ``None`` takes
        the requested capacity (the default: no bidding). [kW]"""
        return None

    def commit_kw(self, problem: DispatchProblem, d0: int, d1: int) -> np.ndarray | None:
        """In a two-settlement market, the day-ahead net import to commit for steps
        ``d0 .. d1 - 1`` at gate closure (``problem`` is the window at the gate,
        reaching ``d1``); ``None`` leaves it to the engine's persistence forecast. [kW]"""
        return None


STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make *cls* runnable as ``--strategy cls.name``."""
    STRATEGIES[cls.name] = cls
    return cls


def strategy_class(name: str) -> type[Strategy]:
    """The strategy registered as *name* (``KeyError`` if unknown)."""
    return STRATEGIES[name]
